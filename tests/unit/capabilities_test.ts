import assert from "node:assert/strict";
import { Capabilities } from "../../src/protocol/capabilities.ts";
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

test("Capabilities parses LIMITS (RFC 9422): MAILMAX, RCPTMAX, RCPTDOMAINMAX", () => {
  const table: [lines: string[], limits: Record<string, number>][] = [
    [[], {}],
    [["LIMITS"], {}],
    [["LIMITS RCPTMAX=1000"], { rcptMax: 1000 }],
    [["LIMITS MAILMAX=10 RCPTMAX=50 RCPTDOMAINMAX=2"], {
      mailMax: 10,
      rcptMax: 50,
      rcptDomainMax: 2,
    }],
    // Names are case-insensitive; unknown ones are ignored.
    [["limits rcptmax=5 MailMax=3 XFUTURE=7 FLAG"], { rcptMax: 5, mailMax: 3 }],
    // Values that are not positive integers are ignored.
    [["LIMITS RCPTMAX=0 MAILMAX=-1 RCPTDOMAINMAX=x"], {}],
    [["LIMITS RCPTMAX=1.5 MAILMAX= RCPTDOMAINMAX=1e3"], {}],
    [["LIMITS RCPTMAX=99999999999999999999"], {}],
    // Given twice (two LIMITS lines): the lower value counts.
    [["LIMITS RCPTMAX=100", "LIMITS RCPTMAX=20 MAILMAX=4"], { rcptMax: 20, mailMax: 4 }],
  ];
  for (const [lines, limits] of table) {
    assert.deepEqual({ ...ehlo("x", ...lines).limits }, limits, lines.join(" | "));
  }
  assert.deepEqual({ ...Capabilities.none("x").limits }, {});
});
