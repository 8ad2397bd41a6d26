import assert from "node:assert/strict";
import fc from "fast-check";
import { test } from "../_helpers/test.ts";
import {
  checkHeaderName,
  formatDate,
  formatUnstructured,
  formatWithParameters,
} from "../../src/mime/_headers.ts";
import { encodeWords } from "../../src/mime/_encoded_words.ts";
import { crlfLines, decodeUnstructured, decodeWord, parse, unfold } from "./_helpers.ts";

const encoder = new TextEncoder();

/** The value of a formatted one-field header, unfolded. */
function valueOf(header: string, name: string): string {
  const line = unfold(header).slice(0, -2);
  assert.ok(line.startsWith(`${name}: `) || line === `${name}:`, line);
  return line.slice(name.length + 2);
}

/** Checks the folding rules on a formatted header. */
function assertFolded(header: string, width = 78): void {
  const lines = crlfLines(header);
  lines.forEach((line, i) => {
    assert.ok(line.length <= width, `line ${i} has ${line.length} columns: ${line}`);
    assert.ok(encoder.encode(line).length <= 998);
    if (i > 0) assert.match(line, /^[ \t]+\S/, "a continuation line starts with whitespace");
  });
  for (const word of header.match(/=\?[^ \t\r\n]*\?=/g) ?? []) {
    assert.ok(word.length <= 75, `encoded word of ${word.length}: ${word}`);
    decodeWord(word); // throws unless the word holds whole UTF-8 characters
  }
}

/** Any Unicode text, including astral characters, controls and runs of whitespace. */
const unicodeText = fc.string({
  unit: fc.oneof(
    fc.constantFrom(" ", "  ", "\t", "=?", "?=", "_", "a", "Z", "=", "😀", "中", "é", "\u0001"),
    fc.string({ unit: "grapheme", minLength: 1, maxLength: 3 }),
    fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 12 }),
  ),
  maxLength: 60,
}).filter((text) => !/[\r\n\0]/.test(text));

test("formatUnstructured() keeps printable ASCII readable and folds at whitespace", () => {
  assert.equal(formatUnstructured("Subject", "Hello world"), "Subject: Hello world\r\n");
  const long = Array.from({ length: 30 }, (_, i) => `word${i}`).join(" ");
  const header = formatUnstructured("Subject", long);
  assertFolded(header);
  assert.ok(header.split("\r\n").length > 2);
  assert.equal(valueOf(header, "Subject"), long);
  assert.doesNotMatch(header, /=\?/);
});

test("formatUnstructured() encodes only the words that need it", () => {
  const header = formatUnstructured("Subject", "Re: Grüße aus Köln und Bonn");
  assert.equal(valueOf(header, "Subject").split(" ")[0], "Re:");
  assert.match(
    header,
    /^Subject: Re: =\?UTF-8\?[BQ]\?\S+\?= aus =\?UTF-8\?[BQ]\?\S+\?= und Bonn\r\n$/,
  );
  assert.equal(decodeUnstructured(valueOf(header, "Subject")), "Re: Grüße aus Köln und Bonn");
  // Q is used where it is shorter than B.
  assert.equal(formatUnstructured("Subject", "Straße"), "Subject: =?UTF-8?Q?Stra=C3=9Fe?=\r\n");
  // A word that looks like an encoded word is encoded so that it reads back literally.
  assert.equal(
    decodeUnstructured(valueOf(formatUnstructured("Subject", "=?x?="), "Subject")),
    "=?x?=",
  );
});

test("formatUnstructured() chooses B for mostly non-ASCII text and splits on characters", () => {
  const subject = "季度报告".repeat(20);
  const header = formatUnstructured("Subject", subject);
  assertFolded(header);
  assert.match(header, /^Subject: =\?UTF-8\?B\?/);
  assert.equal(decodeUnstructured(valueOf(header, "Subject")), subject);
  // Astral characters (surrogate pairs in JS) never split.
  const emoji = "😀".repeat(40);
  const emojiHeader = formatUnstructured("Subject", emoji);
  assertFolded(emojiHeader);
  assert.equal(decodeUnstructured(valueOf(emojiHeader, "Subject")), emoji);
});

test("random Unicode subjects decode to the input and keep every line within 78 columns", () => {
  fc.assert(
    fc.property(unicodeText, (subject) => {
      const header = formatUnstructured("Subject", subject);
      assertFolded(header);
      assert.equal(decodeUnstructured(valueOf(header, "Subject")), subject);
    }),
    { numRuns: 500 },
  );
});

test("mailparser reads random Unicode subjects back", async () => {
  await fc.assert(
    fc.asyncProperty(unicodeText, async (subject) => {
      const header = formatUnstructured("Subject", subject);
      const parsed = await parse(encoder.encode(`${header}\r\nbody\r\n`));
      // mailparser trims the value and collapses whitespace next to encoded words; compare
      // with whitespace normalised (the exact check is the property above).
      const normal = (text: string) => text.replace(/[ \t]+/g, " ").trim();
      assert.equal(normal(parsed.subject ?? ""), normal(subject));
    }),
    { numRuns: 100 },
  );
});

test("encodeWords() keeps each word within 75 characters", () => {
  fc.assert(
    fc.property(fc.string({ unit: "grapheme", maxLength: 80 }), (text) => {
      const words = encodeWords(text);
      if (text === "") return assert.equal(words, "");
      const parts = words.split(" ");
      for (const word of parts) assert.ok(word.length <= 75);
      assert.equal(parts.map(decodeWord).join(""), text);
    }),
  );
});

test("a long ASCII word is encoded unless the header allows long words", () => {
  const url = `https://example.com/${"a".repeat(120)}`;
  const encoded = formatUnstructured("Subject", `see ${url}`);
  assertFolded(encoded);
  assert.equal(decodeUnstructured(valueOf(encoded, "Subject")), `see ${url}`);
  const kept = formatUnstructured("List-Unsubscribe", `<${url}>`, true);
  assert.equal(kept, `List-Unsubscribe: <${url}>\r\n`);
  // Too long for any line: encoded words carry it (as Python's email package does).
  const long = formatUnstructured("X-Long", "x".repeat(1000), true);
  assertFolded(long);
  assert.equal(decodeUnstructured(valueOf(long, "X-Long")), "x".repeat(1000));
  // While a line can hold it, it stays as it is, on a line of its own.
  const fits = formatUnstructured("X-Long", `a ${"x".repeat(900)}`, true);
  assert.equal(fits, `X-Long: a\r\n ${"x".repeat(900)}\r\n`);
});

test("header values with CR, LF or NUL are rejected (header injection)", () => {
  for (const value of ["a\r\nBcc: evil@example.com", "a\nb", "a\rb", "a\0b"]) {
    assert.throws(() => formatUnstructured("Subject", value), (error: unknown) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /^Cannot compose message: header "Subject" contains a/);
      return true;
    });
  }
});

test("checkHeaderName() accepts RFC 5322 ftext only", () => {
  checkHeaderName("X-Custom-1");
  for (const name of ["", "X Custom", "X:Custom", "X-Ü", "X\r\nBcc", "X\t"]) {
    assert.throws(() => checkHeaderName(name), TypeError, name);
  }
  assert.throws(() => checkHeaderName("X\nY"), /contains a line break/);
});

test("formatWithParameters() writes tokens, quoted strings and RFC 2231 continuations", () => {
  assert.equal(
    formatWithParameters("Content-Type", "text/plain", [{ key: "charset", value: "UTF-8" }]),
    "Content-Type: text/plain; charset=UTF-8\r\n",
  );
  assert.equal(
    formatWithParameters("Content-Disposition", "attachment", [{
      key: "filename",
      value: 'a "b".pdf',
    }]),
    'Content-Disposition: attachment; filename="a \\"b\\".pdf"\r\n',
  );
  const name = "Überweisung für das Jahr 2024 — sehr langer Dateiname, wirklich.pdf";
  const header = formatWithParameters("Content-Disposition", "attachment", [{
    key: "filename",
    value: name,
  }]);
  assertFolded(header);
  const value = unfold(header);
  const segments = [...value.matchAll(/filename\*(\d+)\*=([^;\r]+)/g)];
  assert.ok(segments.length > 1);
  assert.deepEqual(segments.map((s) => Number(s[1])), segments.map((_, i) => i));
  const joined = segments.map((s) => s[2]).join("");
  assert.ok(joined.startsWith("UTF-8''"));
  assert.equal(decodeURIComponent(joined.slice(7)), name);
  const fallback = formatWithParameters("Content-Type", "application/pdf", [{
    key: "name",
    value: name,
    style: "rfc2047",
  }]);
  assertFolded(fallback);
  const quoted = /name="([^"]*)"/.exec(unfold(fallback))![1]!;
  assert.equal(decodeUnstructured(quoted), name);
});

test("RFC 2231 segments never split a character", () => {
  fc.assert(
    fc.property(fc.string({ unit: "grapheme", minLength: 1, maxLength: 100 }), (filename) => {
      const header = formatWithParameters("Content-Disposition", "attachment", [{
        key: "filename",
        value: filename,
      }]);
      assertFolded(header);
      const value = unfold(header);
      const single = /filename\*=UTF-8''([^;\r]+)/.exec(value);
      const segments = [...value.matchAll(/filename\*\d+\*=(?:UTF-8'')?([^;\r]+)/g)];
      if (single) assert.equal(decodeURIComponent(single[1]!), filename);
      else if (segments.length > 0) {
        for (const s of segments) decodeURIComponent(s[1]!); // each segment decodes alone
        assert.equal(decodeURIComponent(segments.map((s) => s[1]).join("")), filename);
      } else {
        const quoted = /filename=(?:"((?:[^"\\]|\\.)*)"|(\S+))/.exec(value)!;
        assert.equal(quoted[1]?.replace(/\\(.)/g, "$1") ?? quoted[2], filename);
      }
    }),
  );
});

test("formatDate() writes RFC 5322 dates in UTC", () => {
  assert.equal(
    formatDate(new Date(Date.UTC(2025, 6, 1, 9, 5, 3))),
    "Tue, 01 Jul 2025 09:05:03 +0000",
  );
  assert.throws(() => formatDate(new Date(Number.NaN)), RangeError);
});

test("long runs of whitespace and long field names still fold within the limits", () => {
  for (const subject of [`a${" ".repeat(2000)}b`, " ".repeat(1500), `x\t${"\t ".repeat(600)}é`]) {
    const header = formatUnstructured("Subject", subject);
    assertFolded(header);
    assert.equal(decodeUnstructured(valueOf(header, "Subject")), subject);
  }
  const name = `X-${"N".repeat(70)}`;
  const header = formatUnstructured(name, "Grüße ".repeat(20).trim());
  assertFolded(header, 998);
  assert.equal(decodeUnstructured(valueOf(header, name)), "Grüße ".repeat(20).trim());
});
