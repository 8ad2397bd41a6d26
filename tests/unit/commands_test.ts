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

test("commands refuse U+0085, U+2028 and U+2029 in every argument, like CR and LF", () => {
  for (const char of ["\u0085", "\u2028", "\u2029"]) {
    const bad = `a${char}b@example.com`;
    for (const fn of [commands.mailFrom, commands.rcptTo, commands.ehlo, commands.helo]) {
      assert.throws(() => fn(bad), (error: unknown) => {
        assert.ok(error instanceof TypeError);
        assert.match(error.message, /contains a line break/);
        assert.equal(error.message.includes(char), false, "the message shows the character raw");
        return true;
      });
    }
    assert.throws(() => commands.assertEnvelopeAddress(bad, "sender address"), TypeError);
    assert.throws(() => commands.mailFrom("a@b", [["ENVID", `x${char}`]]), TypeError);
  }
});

test("auth() refuses a line break in the initial response without showing it", () => {
  const secret = "c2VjcmV0LXBhc3N3b3Jk";
  for (const char of ["\r\n", "\u2028"]) {
    assert.throws(() => commands.auth("PLAIN", secret + char), (error: unknown) => {
      assert.ok(error instanceof TypeError);
      assert.equal(error.message, "Invalid SASL initial response: contains a line break or NUL");
      return true;
    });
  }
});
