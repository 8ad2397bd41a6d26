import assert from "node:assert/strict";
import * as commands from "../../src/protocol/_commands.ts";
import { test } from "../_helpers/test.ts";

test("commands serialise MAIL and RCPT with parameters", () => {
  assert.equal(
    commands.mailFrom("a@b.example", [["SIZE", "42"], ["SMTPUTF8", undefined]]),
    "MAIL FROM:<a@b.example> SIZE=42 SMTPUTF8",
  );
  assert.equal(commands.mailFrom(""), "MAIL FROM:<>");
  assert.equal(
    commands.rcptTo("c@d.example", [["NOTIFY", "SUCCESS,FAILURE"]]),
    "RCPT TO:<c@d.example> NOTIFY=SUCCESS,FAILURE",
  );
});

test("commands refuse CR, LF and NUL in every argument", () => {
  for (const bad of ["a@b\r\nRCPT TO:<x@y>", "a@b\n", "a\0@b"]) {
    assert.throws(() => commands.mailFrom(bad), TypeError);
    assert.throws(() => commands.rcptTo(bad), TypeError);
    assert.throws(() => commands.ehlo(bad), TypeError);
    assert.throws(() => commands.auth("PLAIN", bad), TypeError);
  }
  assert.throws(() => commands.mailFrom("a@b", [["ENVID", "x\r\nDATA"]]), TypeError);
});

test("commands refuse addresses with spaces, brackets or no @", () => {
  for (const bad of ["a b@c", "a@b>", "<a@b", "nobody"]) {
    assert.throws(() => commands.rcptTo(bad), TypeError, bad);
  }
  assert.throws(() => commands.rcptTo(""), TypeError);
});

test("encodeXtext escapes +, = and non-printables", () => {
  assert.equal(commands.encodeXtext("a+b=c d"), "a+2Bb+3Dc+20d");
  assert.equal(commands.encodeXtext("é"), "+C3+A9");
});
