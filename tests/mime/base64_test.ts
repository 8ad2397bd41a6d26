import assert from "node:assert/strict";
import fc from "fast-check";
import { test } from "../_helpers/test.ts";
import {
  Base64EncoderStream,
  Base64LineEncoder,
  decodeBase64,
  encodeBase64,
  encodeBase64Plain,
  encodeBase64Table,
  encodeBase64TableInto,
  wrappedLength,
  writeBase64Lines,
} from "../../src/mime/base64.ts";
import { collect, crlfLines } from "./_helpers.ts";

const ascii = (text: string) => new TextEncoder().encode(text);

/** Feeds `bytes` to a line encoder in pieces cut at `cuts`. */
function encodeInPieces(bytes: Uint8Array, cuts: number[], reuse: boolean): string {
  const encoder = new Base64LineEncoder(reuse);
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let text = "";
  let start = 0;
  for (const point of [...points, bytes.length]) {
    text += new TextDecoder().decode(encoder.push(bytes.subarray(start, point)));
    start = point;
  }
  return text + new TextDecoder().decode(encoder.end());
}

test("encodeBase64() matches the RFC 4648 test vectors", () => {
  const vectors: [string, string][] = [
    ["", ""],
    ["f", "Zg=="],
    ["fo", "Zm8="],
    ["foo", "Zm9v"],
    ["foob", "Zm9vYg=="],
    ["fooba", "Zm9vYmE="],
    ["foobar", "Zm9vYmFy"],
  ];
  for (const [input, expected] of vectors) {
    assert.equal(encodeBase64(input), expected);
    assert.equal(encodeBase64Table(ascii(input)), expected);
    assert.equal(encodeBase64Plain(ascii(input)), expected);
    assert.equal(encodeInPieces(ascii(input), [], false), expected);
    assert.equal(encodeInPieces(ascii(input), [], true), expected);
  }
});

test("the runtime has Uint8Array.prototype.toBase64, so the native path is tested", () => {
  assert.equal(typeof (Uint8Array.prototype as { toBase64?: unknown }).toBase64, "function");
});

test("the table-driven and native encoders agree on random bytes", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      const expected = btoa(String.fromCharCode(...bytes));
      assert.equal(encodeBase64Table(bytes), expected);
      assert.equal(encodeBase64Plain(bytes), expected);
    }),
  );
});

/**
 * Runs `write` on `bytes` copied to `inputShift` inside a larger buffer (a read past the input's
 * end would throw) into an output marked with `*` from `outputShift`; checks that it returns the
 * end of `size` bytes and wrote nothing outside them, and returns what it wrote as text.
 */
function writeShifted(
  bytes: Uint8Array,
  inputShift: number,
  outputShift: number,
  size: number,
  write: (input: Uint8Array, output: Uint8Array, offset: number) => number,
): string {
  const input = new Uint8Array(bytes.length + inputShift + 4).fill(0xff)
    .subarray(inputShift, inputShift + bytes.length);
  input.set(bytes);
  const output = new Uint8Array(outputShift + size + 4).fill(0x2a);
  const end = write(input, output, outputShift);
  assert.equal(end, outputShift + size);
  assert.ok(output.subarray(0, outputShift).every((b) => b === 0x2a));
  assert.ok(output.subarray(end).every((b) => b === 0x2a));
  return new TextDecoder().decode(output.subarray(outputShift, end));
}

test("the table-driven encoder reads and writes at any alignment, leaving the rest alone", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 300 }),
      fc.nat(7),
      fc.nat(7),
      (bytes, inputShift, outputShift) => {
        // The encoder reads whole words where it can, never past its input.
        const size = Math.ceil(bytes.length / 3) * 4;
        const text = writeShifted(bytes, inputShift, outputShift, size, encodeBase64TableInto);
        assert.equal(text, btoa(String.fromCharCode(...bytes)));
      },
    ),
  );
});

test("writeBase64Lines() writes whole and short lines at any alignment, leaving the rest alone", () => {
  fc.assert(
    fc.property(
      // Lengths around whole lines of 57 bytes, where the writer switches to the short line.
      fc.oneof(
        fc.uint8Array({ maxLength: 400 }),
        fc.constantFrom(56, 57, 58, 114, 171, 172).map((n) =>
          new Uint8Array(n).map((_, i) => (i * 37) & 0xff)
        ),
      ),
      fc.nat(7),
      fc.nat(7),
      (bytes, inputShift, outputShift) => {
        const size = wrappedLength(bytes.length, false);
        const text = writeShifted(bytes, inputShift, outputShift, size, writeBase64Lines);
        assert.equal(text, encodeBase64(bytes));
      },
    ),
  );
});

test("encodeBase64() wraps at 76 columns with CRLF between lines", () => {
  const bytes = new Uint8Array(200).map((_, i) => i);
  const text = encodeBase64(bytes);
  const lines = text.split("\r\n");
  assert.deepEqual(lines.map((l) => l.length), [76, 76, 76, 40]);
  assert.equal(lines.join(""), btoa(String.fromCharCode(...bytes)));
  assert.equal(encodeBase64(bytes, { lineLength: 0 }), lines.join(""));
  assert.deepEqual(encodeBase64(bytes, { lineLength: 64 }).split("\r\n")[0]!.length, 64);
  assert.throws(() => encodeBase64(bytes, { lineLength: 75 }), RangeError);
});

test("the line encoder gives the same output however the input is split", () => {
  for (const reuse of [false, true]) {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 1000 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (bytes, cuts) => {
          const text = encodeInPieces(bytes, cuts, reuse);
          assert.equal(text, encodeBase64(bytes));
          if (bytes.length > 0) {
            for (const line of crlfLines(text + "\r\n")) assert.ok(line.length <= 76);
          }
        },
      ),
    );
  }
});

test("decodeBase64() reverses encodeBase64() and rejects stray characters", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 500 }), (bytes) => {
      assert.deepEqual(decodeBase64(encodeBase64(bytes)), bytes);
    }),
  );
  assert.throws(() => decodeBase64("Zm9v!"), TypeError);
  assert.throws(() => decodeBase64("Zm9vY"), TypeError);
});

test("Base64EncoderStream encodes a chunked stream like the one-shot encoder", async () => {
  const bytes = new Uint8Array(10_000).map((_, i) => (i * 7) & 0xff);
  const chunks = [
    bytes.subarray(0, 1),
    bytes.subarray(1, 58),
    bytes.subarray(58, 9_999),
    bytes.subarray(9_999),
  ];
  const out = await collect(ReadableStream.from(chunks).pipeThrough(new Base64EncoderStream()));
  assert.equal(new TextDecoder().decode(out), encodeBase64(bytes));
});
