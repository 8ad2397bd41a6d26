import assert from "node:assert/strict";
import fc from "fast-check";
import { test } from "../_helpers/test.ts";
import {
  encodeQuotedPrintable,
  QuotedPrintableEncoder,
  QuotedPrintableEncoderStream,
} from "../../src/mime/quoted_printable.ts";
import { collect, decodeQuotedPrintable } from "./_helpers.ts";

const utf8 = (text: string) => new TextEncoder().encode(text);

/** Encodes in pieces cut at `cuts`. */
function encodeInPieces(bytes: Uint8Array, cuts: number[]): string {
  const qp = new QuotedPrintableEncoder();
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let text = "";
  let start = 0;
  for (const point of [...points, bytes.length]) {
    text += new TextDecoder().decode(qp.push(bytes.subarray(start, point)));
    start = point;
  }
  return text + new TextDecoder().decode(qp.end());
}

function assertWellFormed(text: string): void {
  for (const line of text.split("\r\n")) {
    assert.ok(line.length <= 76, `line of ${line.length}: ${line}`);
    assert.doesNotMatch(line, /[ \t]$/, "trailing whitespace");
    assert.doesNotMatch(line, /[^\t\x20-\x7e]/, "raw byte outside printable ASCII");
    assert.doesNotMatch(line, /=(?![0-9A-F]{2}|$)/, "an escape was split or malformed");
  }
}

test("encodeQuotedPrintable() follows the RFC 2045 rules", () => {
  assert.equal(encodeQuotedPrintable("plain text"), "plain text");
  assert.equal(encodeQuotedPrintable("a=b"), "a=3Db");
  assert.equal(encodeQuotedPrintable("Grüße"), "Gr=C3=BC=C3=9Fe");
  // Trailing whitespace before a line break and at the end is encoded; inner is kept.
  assert.equal(encodeQuotedPrintable("a b \r\nc\t"), "a b=20\r\nc=09");
  // CRLF is a hard break; bare CR and bare LF are data.
  assert.equal(encodeQuotedPrintable("a\r\nb\nc\rd"), "a\r\nb=0Ac=0Dd");
  assert.equal(encodeQuotedPrintable("x\r"), "x=0D");
  assert.equal(encodeQuotedPrintable(" \r"), " =0D");
  assert.equal(encodeQuotedPrintable(new Uint8Array([0, 255])), "=00=FF");
});

test("encodeQuotedPrintable() puts soft line breaks at 76 columns", () => {
  const text = encodeQuotedPrintable("x".repeat(200));
  const lines = text.split("\r\n");
  assert.deepEqual(lines.map((l) => l.length), [76, 76, 50]);
  assert.ok(lines.slice(0, -1).every((l) => l.endsWith("=")));
  // An escape is never split across a soft break.
  const escapes = encodeQuotedPrintable("é".repeat(60));
  assertWellFormed(escapes);
  assert.deepEqual(decodeQuotedPrintable(escapes), utf8("é".repeat(60)));
});

test("the RFC 2045 example body round-trips", () => {
  // RFC 2045 section 6.7 discusses a line that ends in whitespace and a long line.
  const body = "Now's the time for all folk to come to the aid of their country.   \r\n" +
    "Now's the time for all folk to come to the aid of their country. And then some more, past seventy-six.";
  const encoded = encodeQuotedPrintable(body);
  assertWellFormed(encoded);
  assert.ok(encoded.includes("country.  =20\r\n"));
  assert.deepEqual(decodeQuotedPrintable(encoded), utf8(body));
});

test("random text round-trips, whatever the chunking, within the line limits", () => {
  fc.assert(
    fc.property(
      fc.string({ unit: fc.constantFrom("a", " ", "\t", "=", "é", "\r", "\n", "\r\n", ".", "😀") }),
      fc.array(fc.nat(), { maxLength: 6 }),
      (text, cuts) => {
        const bytes = utf8(text);
        const encoded = encodeInPieces(bytes, cuts);
        assert.equal(encoded, encodeQuotedPrintable(bytes));
        assertWellFormed(encoded);
        assert.deepEqual(decodeQuotedPrintable(encoded), bytes);
      },
    ),
  );
});

test("random bytes round-trip", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
      const encoded = encodeQuotedPrintable(bytes);
      assertWellFormed(encoded);
      assert.deepEqual(decodeQuotedPrintable(encoded), bytes);
    }),
  );
});

test("QuotedPrintableEncoderStream keeps trailing whitespace state across chunks", async () => {
  const chunks = [utf8("ab "), utf8("\r"), utf8("\ncd "), utf8(" ")];
  const out = await collect(
    ReadableStream.from(chunks).pipeThrough(new QuotedPrintableEncoderStream()),
  );
  assert.equal(new TextDecoder().decode(out), "ab=20\r\ncd =20");
});
