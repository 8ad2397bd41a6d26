/**
 * RFC 6376 section 3.4 canonicalization, as tables: input in, canonical form out, for headers
 * and bodies, simple and relaxed; and the streaming body canonicalizer gives the same bytes
 * whatever the chunk boundaries.
 */
import assert from "node:assert/strict";
import {
  BodyCanonicalizer,
  type Canonicalization,
  canonicalizeHeader,
} from "../../src/dkim/_canonicalize.ts";
import { HeaderReader, selectFields, splitFields } from "../../src/dkim/_header_fields.ts";
import { test } from "../_helpers/test.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Canonicalizes `body` fed in the given chunk sizes (cycled). */
function canonicalBody(body: string | Uint8Array, mode: Canonicalization, sizes = [Infinity]) {
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  const out: number[] = [];
  const canonicalizer = new BodyCanonicalizer(mode, { update: (b) => out.push(...b) });
  let k = 0;
  for (let i = 0; i < bytes.length;) {
    const size = Math.min(sizes[k++ % sizes.length]!, bytes.length - i);
    canonicalizer.push(bytes.subarray(i, i + size));
    i += size;
  }
  canonicalizer.end();
  return decoder.decode(new Uint8Array(out));
}

test("header canonicalization follows the example of RFC 6376 section 3.4.5", () => {
  const a = "A: X\r\n";
  const b = "B : Y\t\r\n\tZ  \r\n";
  assert.equal(canonicalizeHeader(a, "relaxed"), "a:X\r\n");
  assert.equal(canonicalizeHeader(b, "relaxed"), "b:Y Z\r\n");
  assert.equal(canonicalizeHeader(a, "simple"), a);
  assert.equal(canonicalizeHeader(b, "simple"), b);
});

test("relaxed header canonicalization: a table of awkward fields", () => {
  const cases: [string, string][] = [
    ["Subject:Hi\r\n", "subject:Hi\r\n"],
    ["SUBJECT:   spaced   out   \r\n", "subject:spaced out\r\n"],
    ["Subject: folded\r\n over\r\n\tthree lines\r\n", "subject:folded over three lines\r\n"],
    ["X-Empty:\r\n", "x-empty:\r\n"],
    ["X-Empty:   \r\n", "x-empty:\r\n"],
    ["X-Colon: a: b\r\n", "x-colon:a: b\r\n"],
    // Bytes of UTF-8 as one character per byte: only ASCII letters change case.
    ["Subject: Gr\xc3\xbc\xc3\x9fe \xc3\x84\r\n", "subject:Gr\xc3\xbc\xc3\x9fe \xc3\x84\r\n"],
    ["\xc3\x84-Name: v\r\n", "\xc3\x84-name:v\r\n"],
  ];
  for (const [field, canonical] of cases) {
    assert.equal(canonicalizeHeader(field, "relaxed"), canonical, JSON.stringify(field));
  }
});

test("body canonicalization follows the example of RFC 6376 section 3.4.5", () => {
  const body = " C \r\nD \t E\r\n\r\n\r\n";
  assert.equal(canonicalBody(body, "relaxed"), " C\r\nD E\r\n");
  assert.equal(canonicalBody(body, "simple"), " C \r\nD \t E\r\n");
});

test("body canonicalization: a table of edge cases, simple and relaxed", () => {
  const cases: [body: string, simple: string, relaxed: string][] = [
    ["", "\r\n", ""],
    ["\r\n", "\r\n", ""],
    ["\r\n\r\n\r\n", "\r\n", ""],
    ["  \r\n\t\r\n", "  \r\n\t\r\n", ""],
    ["abc", "abc\r\n", "abc\r\n"],
    ["abc\r\n", "abc\r\n", "abc\r\n"],
    ["abc  ", "abc  \r\n", "abc\r\n"],
    ["abc\r\n\r\n", "abc\r\n", "abc\r\n"],
    ["a\r\n\r\nb\r\n\r\n", "a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n"],
    ["\r\n\r\nlate\r\n", "\r\n\r\nlate\r\n", "\r\n\r\nlate\r\n"],
    ["  lead\t\ttab  \r\n", "  lead\t\ttab  \r\n", " lead tab\r\n"],
    [".dot\r\n..two\r\n", ".dot\r\n..two\r\n", ".dot\r\n..two\r\n"],
    // A CR or LF alone is an ordinary byte: only CRLF ends a line.
    ["a\rb\r\n", "a\rb\r\n", "a\rb\r\n"],
    ["a\nb\r\n", "a\nb\r\n", "a\nb\r\n"],
    ["a\r", "a\r\r\n", "a\r\r\n"],
    ["a\r\n\r", "a\r\n\r\r\n", "a\r\n\r\r\n"],
    ["x \r\n \r\n", "x \r\n \r\n", "x\r\n"],
  ];
  for (const [body, simple, relaxed] of cases) {
    assert.equal(canonicalBody(body, "simple"), simple, `simple ${JSON.stringify(body)}`);
    assert.equal(canonicalBody(body, "relaxed"), relaxed, `relaxed ${JSON.stringify(body)}`);
  }
});

test("the streaming body canonicalizer gives the same bytes at every chunk boundary", () => {
  const body = " lead \r\n\r\n.dot\t\t  x  \r\nmid\r\rline\r\n\r\n  \r\n\t\r\nend  \r\n\r\n\r\n";
  for (const mode of ["simple", "relaxed"] as const) {
    const whole = canonicalBody(body, mode);
    for (let split = 1; split < body.length; split++) {
      assert.equal(canonicalBody(body, mode, [split, body.length]), whole, `${mode} at ${split}`);
    }
    for (const size of [1, 2, 3, 5]) {
      assert.equal(canonicalBody(body, mode, [size]), whole, `${mode} in chunks of ${size}`);
    }
  }
});

test("many trailing empty lines, and many before more text, cost little and come out right", () => {
  const empty = "\r\n".repeat(100_000);
  for (const mode of ["simple", "relaxed"] as const) {
    assert.equal(canonicalBody("text" + empty, mode, [4096]), "text\r\n");
    assert.equal(canonicalBody("a" + empty + "b", mode, [4096]), "a" + empty + "b\r\n");
  }
});

test("the header block is found at the first empty line, across chunk boundaries", () => {
  const message = "From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n\r\nmore\r\n";
  for (let split = 1; split < message.length; split++) {
    const reader = new HeaderReader();
    const bytes = encoder.encode(message);
    let start = reader.push(bytes.subarray(0, split));
    let offset = 0;
    if (start === -1) {
      start = reader.push(bytes.subarray(split));
      offset = split;
    }
    assert.equal(reader.header, "From: a@example.com\r\nSubject: x\r\n", `split at ${split}`);
    assert.equal(offset + start, message.indexOf("body"), `split at ${split}`);
  }
  const empty = new HeaderReader();
  assert.equal(empty.push(encoder.encode("\r\nbody")), 2);
  assert.equal(empty.header, "");
  const noBody = new HeaderReader();
  assert.equal(noBody.push(encoder.encode("Subject: x\r\n")), -1);
  assert.equal(noBody.finish(), "Subject: x\r\n");
});

test("fields are split at unfolded line starts and picked from the bottom up", () => {
  const fields = splitFields(
    "Received: one\r\n two\r\nTo: a@x\r\nSUBJECT: first\r\nsubject: second\r\n\tfolded\r\n",
  );
  assert.deepEqual(fields.map((f) => f.key), ["received", "to", "subject", "subject"]);
  assert.deepEqual(selectFields(fields, ["subject", "subject", "subject", "to", "cc"]), [
    "subject: second\r\n\tfolded\r\n",
    "SUBJECT: first\r\n",
    "To: a@x\r\n",
  ]);
});
