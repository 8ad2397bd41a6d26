import assert from "node:assert/strict";
import { DataEncoder } from "../../src/protocol/_dot_stuff.ts";
import { test } from "../_helpers/test.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function encode(text: string, splits: number[], dotStuffing = true, crlf = false): string {
  const data = encoder.encode(text);
  const e = new DataEncoder(dotStuffing, crlf);
  let out = "";
  let start = 0;
  for (const end of [...splits, data.length]) {
    out += decoder.decode(e.push(data.subarray(start, end)));
    start = end;
  }
  return out + decoder.decode(e.finish());
}

function allSplits(text: string, dotStuffing = true, crlf = false): Set<string> {
  const results = new Set<string>();
  const n = encoder.encode(text).length;
  for (let a = 0; a <= n; a++) {
    for (let b = a; b <= n; b++) results.add(encode(text, [a, b], dotStuffing, crlf));
  }
  return results;
}

test("DataEncoder doubles a dot at the start of every line, at any chunk split", () => {
  const results = allSplits(".a\r\nb\r\n..c\r\n.\r\n");
  assert.deepEqual([...results], ["..a\r\nb\r\n...c\r\n..\r\n.\r\n"]);
});

test("DataEncoder turns bare LF and bare CR into CRLF, at any chunk split", () => {
  const results = allSplits("a\nb\rc\r\n\n.d\r");
  assert.deepEqual([...results], ["a\r\nb\r\nc\r\n\r\n..d\r\n.\r\n"]);
});

test("DataEncoder ends a message without a final line break", () => {
  assert.equal(encode("Subject: x\r\n\r\nno newline", []), "Subject: x\r\n\r\nno newline\r\n.\r\n");
  assert.equal(encode("", []), ".\r\n");
});

test("DataEncoder without dot-stuffing only normalises line ends (BDAT)", () => {
  assert.deepEqual([...allSplits(".a\n.\r", false)], [".a\r\n.\r\n"]);
});

test("DataEncoder returns the chunk itself when nothing changes", () => {
  const e = new DataEncoder(true);
  const chunk = encoder.encode("line one\r\nline two\r\n");
  assert.equal(e.push(chunk), chunk);
});

test("DataEncoder for CRLF-only input doubles the same dots, at any chunk split", () => {
  const results = allSplits(".a\r\nb.\r\n..c\r\n.\r\nend.", true, true);
  assert.deepEqual([...results], ["..a\r\nb.\r\n...c\r\n..\r\nend.\r\n.\r\n"]);
});

test("DataEncoder for CRLF-only input passes chunks through: uncopied, and untouched for BDAT", () => {
  const chunk = encoder.encode("QUJD\r\nREVG\r\n");
  assert.equal(new DataEncoder(true, true).push(chunk), chunk);
  const dotted = encoder.encode(".a\r\n");
  assert.equal(new DataEncoder(false, true).push(dotted), dotted);
});

test("DataEncoder ends a message without a final line end with CRLF, for DATA and BDAT alike", () => {
  for (const crlf of [false, true]) {
    assert.deepEqual(allSplits("a\r\nlast line", true, crlf), new Set(["a\r\nlast line\r\n.\r\n"]));
    assert.deepEqual(allSplits("a\r\nlast line", false, crlf), new Set(["a\r\nlast line\r\n"]));
    assert.deepEqual(allSplits("a\r\nends\r\n", false, crlf), new Set(["a\r\nends\r\n"]));
  }
});

test("DataEncoder leaves binary MIME exactly as given, without a final CRLF", () => {
  const e = new DataEncoder(false, false, true);
  const bytes = encoder.encode("bin\nary\r");
  assert.equal(e.push(bytes), bytes);
  assert.equal(e.finish().length, 0);
});
