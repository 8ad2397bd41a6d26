import assert from "node:assert/strict";
import fc from "fast-check";
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

/**
 * RFC 6533 section 3, utf-8-addr-xtext as a regular expression built from its ABNF: QCHAR is
 * printable ASCII but `\`, `+` and `=`; EmbeddedUnicodeChar is `\x{` HEXPOINT `}`.
 */
const UTF8_ADDR_XTEXT = new RegExp(
  "^(?:[\\x21-\\x2a\\x2c-\\x3c\\x3e-\\x5b\\x5d-\\x7e]|\\\\x\\{(?:" + [
    "[01][1-9]|10|20|2B|3D|7F", // xtext-specials
    "5C|[89A-F][0-9A-F]", // 2-digit forms
    "[1-9A-F][0-9A-F]{2}", // 3-digit forms
    "[1-9A-CEF][0-9A-F]{3}|D[0-7][0-9A-F]{2}", // 4-digit forms, no surrogates
    "[1-9A-F][0-9A-F]{4}", // 5-digit forms
    "10[0-9A-F]{4}", // 6-digit forms
  ].join("|") + ")\\})+$",
);

test("ORCPT encodes an ASCII address as rfc822; and xtext (RFC 3461)", () => {
  const table: [string, string][] = [
    ["bob@example.com", "rfc822;bob@example.com"],
    ["a+tag@example.com", "rfc822;a+2Btag@example.com"],
    ["a=b@example.com", "rfc822;a+3Db@example.com"],
    ['"a\\\\b"@example.com', 'rfc822;"a\\\\b"@example.com'],
    ["info@xn--bcher-kva.example", "rfc822;info@xn--bcher-kva.example"],
  ];
  for (const [address, orcpt] of table) assert.equal(commands.encodeOrcpt(address), orcpt);
});

test("ORCPT encodes a non-ASCII address as utf-8-addr-xtext (RFC 6533)", () => {
  const table: [string, string][] = [
    ["jörg@example.com", "utf-8;j\\x{F6}rg@example.com"],
    ["jörg+tag@example.com", "utf-8;j\\x{F6}rg\\x{2B}tag@example.com"],
    ["ö=1@example.com", "utf-8;\\x{F6}\\x{3D}1@example.com"],
    ['"j\\\\ö"@example.com', 'utf-8;"j\\x{5C}\\x{5C}\\x{F6}"@example.com'],
    ["\u0080@example.com", "utf-8;\\x{80}@example.com"], // 2-digit form
    ["\u0100@example.com", "utf-8;\\x{100}@example.com"], // 3-digit form, no leading zero
    ["用户@例子.广告", "utf-8;\\x{7528}\\x{6237}@\\x{4F8B}\\x{5B50}.\\x{5E7F}\\x{544A}"],
    ["\uE000@example.com", "utf-8;\\x{E000}@example.com"], // 4-digit form after the surrogates
    ["😀@example.com", "utf-8;\\x{1F600}@example.com"], // 5-digit form, one code point
    ["\u{10FFFD}@example.com", "utf-8;\\x{10FFFD}@example.com"], // 6-digit form
    ["jörg@bücher.example", "utf-8;j\\x{F6}rg@b\\x{FC}cher.example"],
  ];
  for (const [address, orcpt] of table) {
    const encoded = commands.encodeOrcpt(address);
    assert.equal(encoded, orcpt);
    assert.match(encoded.slice("utf-8;".length), UTF8_ADDR_XTEXT);
    assert.doesNotMatch(encoded, /\+/, "utf-8-addr-xtext has no +");
  }
});

/** Any code point an address can hold: not a C0 control (refused), not a surrogate. */
const codePoint = fc.integer({ min: 0x20, max: 0x10ffff })
  .filter((c) => c < 0xd800 || c > 0xdfff)
  .map((c) => String.fromCodePoint(c));

test("utf-8-addr-xtext is 7-bit, matches the RFC 6533 grammar and decodes back", () => {
  const decode = (text: string) =>
    text.replace(
      /\\x\{([0-9A-F]+)\}/g,
      (_, hex: string) => String.fromCodePoint(parseInt(hex, 16)),
    );
  fc.assert(
    fc.property(fc.string({ unit: codePoint, minLength: 1 }), (value) => {
      const encoded = commands.encodeUtf8AddrXtext(value);
      assert.match(encoded, UTF8_ADDR_XTEXT);
      assert.equal(decode(encoded), value);
    }),
  );
});
