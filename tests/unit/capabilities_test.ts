import assert from "node:assert/strict";
import { Capabilities } from "../../src/protocol/_capabilities.ts";
import { test } from "../_helpers/test.ts";

const ehlo = (...lines: string[]) => Capabilities.fromEhlo({ code: 250, lines });

test("Capabilities keywords are case-insensitive", () => {
  const caps = ehlo("mx.example.com Hello", "pipelining", "8BITMIME", "StartTLS");
  assert.equal(caps.serverName, "mx.example.com");
  assert.ok(caps.has("PIPELINING"));
  assert.ok(caps.has("starttls"));
  assert.ok(!caps.has("CHUNKING"));
  assert.deepEqual(caps.keywords, ["PIPELINING", "8BITMIME", "STARTTLS"]);
});

test("Capabilities parses SIZE", () => {
  assert.equal(ehlo("x", "SIZE 35882577").maxSize, 35882577);
  assert.equal(ehlo("x", "SIZE").maxSize, undefined);
  assert.equal(ehlo("x", "SIZE 0").maxSize, undefined);
  assert.equal(ehlo("x", "SIZE lots").maxSize, undefined);
  assert.ok(ehlo("x", "SIZE").has("SIZE"));
});

test("Capabilities merges AUTH lists, including the old AUTH= form", () => {
  const caps = ehlo("x", "AUTH LOGIN plain", "AUTH=LOGIN PLAIN XOAUTH2");
  assert.deepEqual(caps.authMechanisms, ["LOGIN", "PLAIN", "XOAUTH2"]);
});

test("Capabilities of a HELO-only server are empty", () => {
  const caps = Capabilities.none("old.example.com");
  assert.equal(caps.esmtp, false);
  assert.deepEqual(caps.keywords, []);
});
