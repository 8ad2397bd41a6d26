/**
 * Hostile input to the address helpers and the message builder, generated at random: CR, LF,
 * NUL, lone surrogates, quotes, angle brackets, commas, encoded-word markers and non-ASCII text
 * in addresses, display names, the subject, attachment file names and custom header fields.
 *
 * Each call either returns or throws a `TypeError` or `RangeError` (bad input, as the library
 * documents it; never another error class), and returns quickly. What it returns can never
 * inject a header: no bare CR or LF and no NUL, and no line over 998 octets (RFC 5322
 * section 2.1.1). Then linear-time guards on inputs of a megabyte and lists of 100,000
 * addresses.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { test } from "../_helpers/test.ts";
import { utf8Length } from "../../src/mime/_text.ts";
import {
  type AddressInput,
  composeMessage,
  formatMailbox,
  type Message,
  parseAddressList,
} from "../../src/mime/mod.ts";
import { collect } from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Pieces that break naive header writers and address parsers. */
const hostileUnit = fc.oneof(
  fc.constantFrom(
    "\r",
    "\n",
    "\r\n",
    "\0",
    "\ud800",
    "\udc00",
    "\udc00\ud800",
    '"',
    "\\",
    "<",
    ">",
    ",",
    ";",
    ":",
    "@",
    "(",
    ")",
    "[",
    "]",
    " ",
    "\t",
    "=?",
    "?=",
    "=?UTF-8?B?",
    "\x7f",
    "\u0085",
    "\u2028",
    "\ufeff",
  ),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 3 }),
  fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 12 }),
  fc.string({ unit: "binary", minLength: 1, maxLength: 2 }),
);

/** A string made of hostile pieces. */
const hostile = (maxLength = 30) => fc.string({ unit: hostileUnit, maxLength });

/** A string that looks like an address, with hostile text in every part. */
const addressLike = fc.oneof(
  hostile(),
  fc.tuple(hostile(10), hostile(10)).map(([local, domain]) => `${local}@${domain}`),
  fc.tuple(hostile(10), hostile(6), hostile(6)).map(([name, local, domain]) =>
    `${name} <${local}@${domain}.example>`
  ),
  fc.tuple(hostile(10), hostile(10)).map(([name, local]) => `"${name}" <${local}@example.com>`),
  fc.array(hostile(12), { maxLength: 4 }).map((parts) => parts.join(",")),
);

/** A valid address, so that the name (or the other field) under test is what varies. */
const validAddress = fc.constantFrom(
  "a@example.com",
  "zoë@bücher.example",
  '"john doe"@example.com',
  "admin@[192.0.2.1]",
);

const mailboxInput: fc.Arbitrary<AddressInput> = fc.oneof(
  addressLike,
  fc.record({ name: hostile(), address: validAddress }),
  fc.record({ name: hostile(), address: addressLike }),
);

/** Whether the error is one of the two classes that bad input may produce. */
function isInputError(error: unknown): boolean {
  return error instanceof TypeError || error instanceof RangeError;
}

/** Runs `fn`: it must return or throw TypeError/RangeError, within `ms`. */
function returnsOrRejectsInput<T>(what: string, fn: () => T, ms = 1000): T | undefined {
  const started = performance.now();
  try {
    return fn();
  } catch (error) {
    assert.ok(
      isInputError(error),
      `${what} threw ${Object.prototype.toString.call(error)}: ${error}`,
    );
    return undefined;
  } finally {
    const elapsed = performance.now() - started;
    assert.ok(elapsed < ms, `${what} took ${elapsed.toFixed(0)} ms`);
  }
}

/** A header value or a formatted mailbox: one logical line, no CR, LF or NUL at all. */
function assertSafeFragment(what: string, text: string): void {
  assert.equal(typeof text, "string", what);
  assert.doesNotMatch(text, /[\r\n\0]/, `${what}: ${JSON.stringify(text)}`);
}

/**
 * A whole message: every line ends in CRLF, no bare CR or LF, no NUL, every line within 998
 * octets. Returns the header block (up to the first empty line).
 */
function assertSafeMessage(bytes: Uint8Array): string {
  assert.equal(bytes.indexOf(0), -1, "a NUL byte in the message");
  const text = decoder.decode(bytes);
  assert.ok(text.endsWith("\r\n"), "the message does not end with CRLF");
  const lines = text.slice(0, -2).split("\r\n");
  for (const line of lines) {
    assert.doesNotMatch(line, /[\r\n]/, `bare CR or LF in ${JSON.stringify(line)}`);
    const octets = encoder.encode(line).length;
    assert.ok(octets <= 998, `a line of ${octets} octets: ${JSON.stringify(line.slice(0, 80))}`);
  }
  const end = text.indexOf("\r\n\r\n");
  assert.ok(end > 0, "no header block");
  return text.slice(0, end + 2);
}

/**
 * Every header block of a message (the top one and each MIME part's) is a list of fields:
 * a line is a `Name: value` start or a folded continuation (starting with a space or tab).
 * A smuggled header would need a line of its own that the builder did not write.
 */
function assertFieldSyntax(header: string): void {
  for (const line of header.slice(0, -2).split("\r\n")) {
    assert.match(line, /^(?:[!-9;-~]+:|[ \t])/, `not a field line: ${JSON.stringify(line)}`);
  }
}

/** The header blocks of a message: its own, then each MIME part's, in order. */
function headerBlocks(text: string): string[] {
  const blocks = [text.slice(0, text.indexOf("\r\n\r\n") + 2)];
  for (const [, boundary] of text.matchAll(/boundary="?(postie_[^";\s]+)"?/g)) {
    for (const piece of text.split(`\r\n--${boundary}\r\n`).slice(1)) {
      blocks.push(piece.slice(0, piece.indexOf("\r\n\r\n") + 2));
    }
  }
  return blocks;
}

// --- properties --------------------------------------------------------------------------------

test("parseAddressList() on hostile input: a clean list or a TypeError/RangeError", () => {
  let returned = 0;
  fc.assert(
    fc.property(fc.oneof(mailboxInput, fc.array(mailboxInput, { maxLength: 4 })), (input) => {
      const list = returnsOrRejectsInput("parseAddressList", () => parseAddressList(input));
      if (list === undefined) return;
      returned++;
      assert.ok(Array.isArray(list));
      for (const mailbox of list) {
        assertSafeFragment("name", mailbox.name);
        assertSafeFragment("address", mailbox.address);
        assert.ok(mailbox.address.length > 0, "an empty address was accepted");
      }
    }),
    { numRuns: 2000 },
  );
  // Not only rejections: the accepting side was exercised too.
  assert.ok(returned > 200, `only ${returned} inputs parsed`);
});

test("formatMailbox() on hostile input: one safe line or a TypeError/RangeError", () => {
  let returned = 0;
  fc.assert(
    fc.property(mailboxInput, (input) => {
      const text = returnsOrRejectsInput("formatMailbox", () => formatMailbox(input));
      if (text === undefined) return;
      returned++;
      assertSafeFragment("formatMailbox", text);
    }),
    { numRuns: 2000 },
  );
  assert.ok(returned > 200, `only ${returned} mailboxes formatted`);
});

test("the display names that parse also format safely, and formatted mailboxes parse back", () => {
  fc.assert(
    fc.property(hostile(), validAddress, (name, address) => {
      const text = returnsOrRejectsInput("formatMailbox", () => formatMailbox({ name, address }));
      if (text === undefined) return;
      assertSafeFragment("formatMailbox", text);
      // What the builder writes is an address list a parser accepts: the same address again.
      const [again, ...rest] = parseAddressList(text);
      assert.equal(rest.length, 0, text);
      assert.equal(again?.address, address, text);
    }),
    { numRuns: 1000 },
  );
});

const customHeaders = fc.oneof(
  fc.dictionary(fc.constantFrom("X-Test", "X-Other", "Keywords", "Comments"), hostile(60), {
    maxKeys: 3,
  }),
  fc.array(
    fc.record({
      key: fc.oneof(fc.constantFrom("X-Test", "List-Id"), hostile(12)),
      value: hostile(60),
    }),
    { maxLength: 3 },
  ),
);

/** The fields the builder writes itself, in the message's header and in a part's. */
const builderFields = [
  "from",
  "to",
  "subject",
  "date",
  "message-id",
  "x-mailer",
  "mime-version",
  "content-type",
];
const partFields = ["content-type", "content-transfer-encoding", "content-disposition"];

/** The names of a header block's fields, in lower case. */
function fieldNames(block: string): string[] {
  return block.slice(0, -2).split("\r\n").filter((line) => !/^[ \t]/.test(line)).map((line) =>
    line.slice(0, line.indexOf(":")).toLowerCase()
  );
}

test("composeMessage() with hostile header fields: no injected line, or a TypeError/RangeError", async () => {
  let returned = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        subject: fc.oneof(hostile(), hostile(400)),
        fromName: hostile(),
        to: fc.oneof(addressLike, { arbitrary: validAddress, weight: 3 }),
        filename: hostile(),
        headers: fc.oneof(customHeaders, { arbitrary: fc.constant({}), weight: 2 }),
      }),
      async ({ subject, fromName, to, filename, headers }) => {
        const message: Message = {
          from: { name: fromName, address: "a@example.com" },
          to,
          subject,
          text: "body",
          headers,
          attachments: [{ filename, content: "attached" }],
        };
        const started = performance.now();
        let bytes: Uint8Array;
        try {
          const composed = await composeMessage(message);
          bytes = await collect(composed.body);
        } catch (error) {
          assert.ok(
            isInputError(error),
            `composeMessage threw ${Object.prototype.toString.call(error)}: ${error}`,
          );
          return;
        } finally {
          const elapsed = performance.now() - started;
          assert.ok(elapsed < 1000, `composeMessage took ${elapsed.toFixed(0)} ms`);
        }
        returned++;
        assertSafeMessage(bytes);
        const blocks = headerBlocks(decoder.decode(bytes));
        // The message's own, the text part's and the attachment's (where the file name went).
        assert.equal(blocks.length, 3);
        for (const block of blocks) assertFieldSyntax(block);
        // Only the fields the builder writes and the caller asked for: nothing smuggled in.
        const custom = Array.isArray(headers)
          ? headers.map((h) => h.key.toLowerCase())
          : Object.keys(headers).map((key) => key.toLowerCase());
        for (const name of fieldNames(blocks[0]!)) {
          assert.ok(
            builderFields.includes(name) || custom.includes(name),
            `unexpected field ${JSON.stringify(name)}`,
          );
        }
        for (const block of blocks.slice(1)) {
          for (const name of fieldNames(block)) {
            assert.ok(partFields.includes(name), `unexpected part field ${JSON.stringify(name)}`);
          }
        }
      },
    ),
    { numRuns: 500 },
  );
  assert.ok(returned > 50, `only ${returned} messages composed`);
});

// --- linear time ---------------------------------------------------------------------------------

/** Runs `fn` and asserts it took less than `ms`; returns its result. */
async function within<T>(what: string, ms: number, fn: () => Promise<T> | T): Promise<T> {
  const started = performance.now();
  const result = await fn();
  const elapsed = performance.now() - started;
  assert.ok(elapsed < ms, `${what} took ${elapsed.toFixed(0)} ms`);
  return result;
}

const MEGABYTE = 1024 * 1024;
/**
 * A generous bound: what these tests catch is work that grows with the square of the input,
 * which on a megabyte takes minutes (linear work takes well under 200 ms here; the margin keeps
 * it steady on a loaded 2-core machine).
 */
const BOUND_MS = 5000;
/**
 * Composing 100,000 mailboxes is about 600 ms of linear work alone; on a loaded 2-core machine
 * (the test runner in parallel, the fidelity suite's python3 beside it) it has taken 2.4 s. A
 * quadratic composer would take minutes.
 */
const LIST_BOUND_MS = 20_000;

/** Text of about `size` characters: words, non-ASCII and punctuation that needs quoting. */
function bigText(size: number, unit: string): string {
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}

for (
  const [what, unit, bound] of [
    ["ASCII words", "lorem ipsum ", BOUND_MS],
    ["non-ASCII text", "Zoë ünïcødé 中文 ", BOUND_MS],
    ["one unbroken word", "x", BOUND_MS],
    ["specials that need quoting", '"<>,;:\\()@ ', BOUND_MS],
  ] as const
) {
  test(`a 1 MB subject of ${what} is composed in linear time, within the line limit`, async () => {
    const subject = bigText(MEGABYTE, unit);
    const bytes = await within("composing", bound, async () => {
      const composed = await composeMessage({
        from: "a@example.com",
        to: "b@example.com",
        subject,
        text: "x",
      });
      return await collect(composed.body);
    });
    assertFieldSyntax(assertSafeMessage(bytes));
  });

  test(`a 1 MB display name of ${what} is formatted and composed in linear time`, async () => {
    const name = bigText(MEGABYTE, unit);
    const formatted = await within(
      "formatMailbox",
      bound,
      () => formatMailbox({ name, address: "a@example.com" }),
    );
    assertSafeFragment("formatMailbox", formatted);
    const bytes = await within("composing", bound, async () => {
      const composed = await composeMessage({
        from: { name, address: "a@example.com" },
        to: "b@example.com",
        text: "x",
      });
      return await collect(composed.body);
    });
    assertFieldSyntax(assertSafeMessage(bytes));
  });
}

test("a 1 MB display name in an address string is parsed in linear time", async () => {
  const name = bigText(MEGABYTE, "Zoë Martin ");
  const quoted = bigText(MEGABYTE, 'a\\"b, <c> ');
  const [plain] = await within(
    "parseAddressList",
    BOUND_MS,
    () => parseAddressList(`${name} <a@example.com>`),
  );
  assert.equal(plain?.address, "a@example.com");
  assert.equal(plain?.name, name.trim());
  const [withQuotes] = await within(
    "parseAddressList",
    BOUND_MS,
    () => parseAddressList(`"${quoted}" <a@example.com>`),
  );
  assert.equal(withQuotes?.address, "a@example.com");
});

test("a list of 100,000 addresses is parsed and composed in linear time", async () => {
  const addresses = Array.from({ length: 100_000 }, (_, i) => `user${i}@example${i % 97}.com`);
  const asString = addresses.map((a, i) => `"User, ${i}" <${a}>`).join(", ");
  const parsed = await within(
    "parsing one list string",
    BOUND_MS,
    () => parseAddressList(asString),
  );
  assert.equal(parsed.length, 100_000);
  assert.deepEqual(parsed[99_999], { name: "User, 99999", address: addresses[99_999] });
  const fromArray = await within("parsing an array", BOUND_MS, () => parseAddressList(addresses));
  assert.equal(fromArray.length, 100_000);
  const bytes = await within("composing", LIST_BOUND_MS, async () => {
    const composed = await composeMessage({
      from: "a@example.com",
      to: parsed,
      text: "x",
    });
    assert.equal(composed.envelope.to.length, 100_000);
    return await collect(composed.body);
  });
  assertFieldSyntax(assertSafeMessage(bytes));
});

test("utf8Length() counts what TextEncoder writes, lone surrogates included", () => {
  const encoder = new TextEncoder();
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 60 }), (text) => {
      assert.equal(utf8Length(text), encoder.encode(text).length);
    }),
    { numRuns: 2000 },
  );
});
