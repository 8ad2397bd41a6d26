import assert from "node:assert/strict";
import { saslPrep } from "../../src/auth/_saslprep.ts";
import { test } from "../_helpers/test.ts";

test("saslPrep() gives RFC 4013's example results", () => {
  // RFC 4013 section 3. The seventh example (U+0627 U+0031, refused by the bidi rule) is left
  // out: the bidi rule is not implemented, see _saslprep.ts.
  assert.equal(saslPrep("I\u00adX", "password"), "IX", "soft hyphen mapped to nothing");
  assert.equal(saslPrep("user", "password"), "user", "no transformation");
  assert.equal(saslPrep("USER", "password"), "USER", "case preserved");
  assert.equal(saslPrep("\u00aa", "password"), "a", "NFKC");
  assert.equal(saslPrep("\u2168", "password"), "IX", "NFKC");
  assert.throws(() => saslPrep("\u0007", "password"), TypeError, "prohibited character");
});

test("saslPrep() maps non-ASCII spaces to a space and keeps ASCII unchanged", () => {
  assert.equal(saslPrep("a\u00a0b\u2003c\u3000d", "password"), "a b c d");
  const ascii = Array.from({ length: 95 }, (_, i) => String.fromCharCode(0x20 + i)).join("");
  assert.equal(saslPrep(ascii, "password"), ascii);
});

test("saslPrep() refuses prohibited characters and an empty result", () => {
  const prohibited = [
    "\u0000", // C.2.1 ASCII control
    "\u007f",
    "\u0085", // C.2.2 non-ASCII control
    "\u2028",
    "\ue000", // C.3 private use
    "\u{f0000}",
    "\ufdd0", // C.4 non-character
    "\uffff",
    "\u{1fffe}",
    "\ud800", // C.5 lone surrogate
    "\ufffd", // C.6 inappropriate for plain text
    "\u2ff0", // C.7 inappropriate for canonical representation
    "\u200e", // C.8 change display properties
    "\u202e",
    "\u{e0001}", // C.9 tagging
  ];
  for (const char of prohibited) {
    assert.throws(
      () => saslPrep(`a${char}b`, "password"),
      (error: unknown) => error instanceof TypeError && /^Invalid password: /.test(error.message),
      `U+${char.codePointAt(0)!.toString(16)}`,
    );
  }
  assert.throws(() => saslPrep("", "username"), /^TypeError: Invalid username: empty/);
  assert.throws(() => saslPrep("\u00ad\ufeff", "username"), /empty after SASLprep/);
  assert.equal(saslPrep("a\u200bb", "username"), "a b", "U+200B: C.1.2 (space) before B.1");
});
