import assert from "node:assert/strict";
import fc from "fast-check";
import { test } from "../_helpers/test.ts";
import {
  envelopeAddress,
  formatMailbox,
  needsSmtpUtf8,
  parseAddressList,
  parseMailbox,
} from "../../src/mime/address.ts";
import { formatAddresses } from "../../src/mime/_headers.ts";
import { crlfLines, parse } from "./_helpers.ts";

function assertInvalid(input: Parameters<typeof parseAddressList>[0], message: RegExp): void {
  assert.throws(() => parseAddressList(input), (error: unknown) => {
    assert.ok(error instanceof TypeError, String(error));
    assert.match(error.message, message);
    return true;
  });
}

test("parseAddressList() reads the usual mailbox forms", () => {
  assert.deepEqual(parseAddressList("a@example.com"), [{ name: "", address: "a@example.com" }]);
  assert.deepEqual(parseAddressList("<a@example.com>"), [{ name: "", address: "a@example.com" }]);
  assert.deepEqual(parseAddressList("Jane Doe <jane@example.com>"), [
    { name: "Jane Doe", address: "jane@example.com" },
  ]);
  assert.deepEqual(parseAddressList('"Doe, \\"JD\\" Jane" <jane@example.com>'), [
    { name: 'Doe, "JD" Jane', address: "jane@example.com" },
  ]);
  assert.deepEqual(parseAddressList("jane@example.com (Jane Doe)"), [
    { name: "Jane Doe", address: "jane@example.com" },
  ]);
  assert.deepEqual(parseAddressList('"john doe"@example.com'), [
    { name: "", address: '"john doe"@example.com' },
  ]);
  assert.deepEqual(parseAddressList({ name: " Zoë ", address: " zoë@bücher.example " }), [
    { name: "Zoë", address: "zoë@bücher.example" },
  ]);
  assert.deepEqual(parseAddressList("admin@[192.0.2.1]"), [{
    name: "",
    address: "admin@[192.0.2.1]",
  }]);
});

test("parseAddressList() splits lists at top-level commas only", () => {
  assert.deepEqual(
    parseAddressList([
      '"Doe, Jane" <jane@example.com>, bob@example.com,, (Carl, C.) <carl@example.com>',
      { address: "dan@example.com" },
    ]),
    [
      { name: "Doe, Jane", address: "jane@example.com" },
      { name: "", address: "bob@example.com" },
      { name: "", address: "carl@example.com" },
      { name: "", address: "dan@example.com" },
    ],
  );
  assert.equal(parseAddressList([]).length, 0);
});

test("parseMailbox() wants exactly one address", () => {
  assert.equal(parseMailbox("a@example.com").address, "a@example.com");
  assert.throws(() => parseMailbox("a@example.com, b@example.com"), /expected one address, got 2/);
});

test("invalid addresses are TypeErrors that say what is wrong", () => {
  assertInvalid("foo", /^Invalid address "foo": missing @$/);
  assertInvalid("@example.com", /empty local part/);
  assertInvalid("a@", /empty domain/);
  assertInvalid("a b@example.com", /display name needs angle brackets/);
  assertInvalid("a..b@example.com", /empty dot-separated part/);
  assertInvalid("a@exa mple.com", /angle brackets/);
  assertInvalid("<a@example.com", /missing >/);
  assertInvalid("a@example.com>", /unexpected >/);
  assertInvalid("A <a@example.com> B", /text after the address/);
  assertInvalid("<a@b.c> <d@e.f>", /more than one </);
  assertInvalid('"unterminated <a@example.com>', /unterminated quoted string/);
  assertInvalid("a@exa_mple..com", /empty label/);
  assertInvalid("a@-.com/x", /domain contains "\/"/);
  assertInvalid("a@[1.2.3.4", /unterminated domain literal/);
  assertInvalid(`${"x".repeat(65)}@example.com`, /local part is longer than 64 octets/);
  assertInvalid(`a@${"x".repeat(64)}.com`, /domain label is longer than 63 octets/);
  assertInvalid("", /empty address/);
  assertInvalid({ address: "" }, /empty address/);
  assertInvalid(42 as unknown as string, /expected a string or \{ name\?, address \}/);
});

test("CR, LF and NUL in an address or a name are rejected (header injection)", () => {
  assertInvalid("a@example.com\r\nBcc: evil@example.com", /address contains a line break/);
  assertInvalid("Name\n <a@example.com>", /contains a line break/);
  assertInvalid(
    { name: "Evil\r\nBcc: x@example.com", address: "a@example.com" },
    /display name contains a line break/,
  );
  assertInvalid({ name: "A", address: "a@example.com\n" }, /line break/);
  assertInvalid("a\0@example.com", /NUL character/);
  assertInvalid({ name: "A\0", address: "a@example.com" }, /NUL character/);
});

test("the parser takes linear time on adversarial input", () => {
  const inputs = [
    '"'.repeat(100_000),
    "(".repeat(100_000),
    "<".repeat(100_000),
    "a,".repeat(50_000),
    `${"a ".repeat(50_000)}<a@example.com>`,
    `${"\\".repeat(100_000)}`,
    `"${'\\"'.repeat(50_000)}`,
    `${"a.".repeat(50_000)}@example.com`,
    `a@${"b.".repeat(50_000)}`,
  ];
  for (const input of inputs) {
    const start = performance.now();
    try {
      parseAddressList(input);
    } catch {
      // most of these are invalid; only the time matters here
    }
    const ms = performance.now() - start;
    assert.ok(ms < 250, `${JSON.stringify(input.slice(0, 10))}... took ${ms.toFixed(0)} ms`);
  }
});

test("envelopeAddress() converts IDN domains to punycode when SMTPUTF8 is off", () => {
  assert.equal(envelopeAddress("a@example.com", false), "a@example.com");
  assert.equal(envelopeAddress("info@bücher.example", false), "info@xn--bcher-kva.example");
  assert.equal(envelopeAddress("info@BÜCHER.example", false), "info@xn--bcher-kva.example");
  assert.equal(envelopeAddress("info@bücher.example", true), "info@bücher.example");
  assert.equal(envelopeAddress("用户@例子.广告", true), "用户@例子.广告");
  assert.equal(envelopeAddress("", false), "");
  assert.throws(() => envelopeAddress("用户@example.com", false), (error: unknown) => {
    assert.ok(error instanceof RangeError);
    assert.match(error.message, /local part is not ASCII and the server does not support SMTPUTF8/);
    return true;
  });
  assert.throws(() => envelopeAddress("foo", true), /Invalid address "foo": missing @/);
  assert.throws(() => envelopeAddress("a@example.com\r\nRCPT TO:<x@y>", true), /line break/);
});

test("needsSmtpUtf8() is true only for a non-ASCII local part", () => {
  assert.equal(needsSmtpUtf8("a@example.com"), false);
  assert.equal(needsSmtpUtf8("a@bücher.example"), false);
  assert.equal(needsSmtpUtf8("jörg@example.com"), true);
});

test("formatMailbox() quotes or encodes display names as needed", () => {
  assert.equal(formatMailbox("a@example.com"), "a@example.com");
  assert.equal(
    formatMailbox({ name: "Jane Doe", address: "a@example.com" }),
    "Jane Doe <a@example.com>",
  );
  assert.equal(
    formatMailbox({ name: "Doe, Jane", address: "a@example.com" }),
    '"Doe, Jane" <a@example.com>',
  );
  assert.equal(
    formatMailbox({ name: 'a "b" \\c', address: "a@example.com" }),
    '"a \\"b\\" \\\\c" <a@example.com>',
  );
  assert.equal(
    formatMailbox({ name: "张伟", address: "a@example.com" }),
    "=?UTF-8?B?5byg5Lyf?= <a@example.com>",
  );
  // The domain becomes punycode when that avoids SMTPUTF8; a UTF-8 local part stays as is.
  assert.equal(formatMailbox("info@bücher.example"), "info@xn--bcher-kva.example");
  assert.equal(formatMailbox("jörg@bücher.example"), "jörg@bücher.example");
});

/** Display names of any kind: ASCII specials, quotes, backslashes, Unicode. */
const displayName = fc.string({
  unit: fc.oneof(
    fc.constantFrom('"', "\\", ",", "<", ">", "(", ")", ";", ":", "@", " ", "=?", "?="),
    fc.string({ unit: "grapheme", minLength: 1, maxLength: 2 }),
    fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 8 }),
  ),
  maxLength: 50,
}).map((s) => s.replace(/\s+/g, " ").trim()).filter((s) =>
  s !== "" && ![...s].some((c) => c.charCodeAt(0) < 0x20 || c === "\x7f")
);

test("mailparser reads random display names back from an address header", async () => {
  await fc.assert(
    fc.asyncProperty(displayName, displayName, async (first, second) => {
      const header = formatAddresses("To", [
        { name: first, address: "a@example.com" },
        { name: second, address: "b@bücher.example" },
      ]);
      for (const line of crlfLines(header)) assert.ok(line.length <= 78, line);
      const parsed = await parse(new TextEncoder().encode(`${header}\r\nbody\r\n`));
      const to = parsed.to as { value: { name: string; address: string }[] };
      assert.deepEqual(to.value.map((m) => [m.name, m.address]), [
        [first, "a@example.com"],
        [second, "b@bücher.example"], // mailparser shows IDN domains in Unicode
      ]);
    }),
    { numRuns: 150 },
  );
});

test("formatted mailboxes parse back to the same mailbox", () => {
  fc.assert(
    fc.property(displayName, (name) => {
      const mailbox = { name, address: "a@example.com" };
      const formatted = formatMailbox(mailbox);
      if (/^[\x20-\x7e]*$/.test(name) && !name.includes("=?")) {
        assert.deepEqual(parseMailbox(formatted), mailbox);
      }
    }),
  );
});

test("long display names fold within 78 columns and read back", async () => {
  const names = [
    "Professor Doctor Jane Alexandra Doe-Smith, Department of Very Long Names, University",
    "张伟".repeat(30),
    `${"x".repeat(90)} y`,
  ];
  const header = formatAddresses(
    "Cc",
    names.map((name, i) => ({ name, address: `p${i}@example.com` })),
  );
  for (const line of crlfLines(header)) assert.ok(line.length <= 78, line);
  const parsed = await parse(new TextEncoder().encode(`${header}\r\nbody\r\n`));
  const cc = parsed.cc as { value: { name: string; address: string }[] };
  assert.deepEqual(cc.value.map((m) => m.name), names);
});
