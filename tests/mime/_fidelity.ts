/**
 * Header fidelity checks shared by the property suite, the named regression cases and the
 * interoperability test: a case (one value per free-text field), the message that carries it,
 * and what mailparser and Python's `email` package must decode from that message.
 *
 * What is compared exactly: every value in mailparser (custom headers through the decoder it
 * uses for `Subject`); in Python, `str()` of the subject and custom headers, the display names
 * and addresses through `getaddresses()` and `decode_header()`, the `filename` and `name`
 * parameters. Where Python's API changes a value on purpose or by a known bug, the test models
 * that and says so: `get_filename()` strips and unquotes (`pythonFilename`), and the
 * `policy.default` address parser mangles the whitespace of encoded display names
 * (`isEncoded`). Python's defects must be empty, except the notes that are true of a correct
 * message: control characters present (`withoutControls`), a non-ASCII local part, and RFC 2047
 * words in the quoted `name=` parameter (`NAME_DEFECTS`).
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { type AddressObject, MailParser, simpleParser } from "mailparser";
import type { Message } from "../../src/mime/mod.ts";
import { headerAddress } from "../../src/mime/address.ts";
import fc from "fast-check";
import type { PythonField, PythonMessage } from "./_python_email.ts";

/** One value for each field a caller fills with free text, and the mailboxes' addresses. */
export interface Case {
  readonly subject: string;
  readonly headers: readonly string[];
  readonly from: { readonly name: string; readonly address: string };
  readonly to: readonly { readonly name: string; readonly address: string }[];
  readonly filename: string;
  readonly calendarFilename: string;
}

/** The names of the custom header fields that carry `Case.headers`. */
export function customName(index: number): string {
  return `X-Fidelity-${index + 1}`;
}

/** The message that carries a case. */
export function messageOf(item: Case): Message {
  return {
    from: item.from,
    to: item.to,
    subject: item.subject,
    headers: item.headers.map((value, i) => ({ key: customName(i), value })),
    text: "body",
    attachments: [{
      filename: item.filename,
      content: "attached",
      contentType: "application/octet-stream",
    }],
    icalEvent: {
      content: "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n",
      filename: item.calendarFilename,
    },
    date: new Date(0),
    messageId: "fidelity@example.com",
  };
}

/** A partial case: the fields not given are empty (file names: `a`). */
export function caseOf(fields: Partial<Case>): Case {
  return {
    subject: "",
    headers: [],
    from: { name: "", address: "a@example.com" },
    to: [{ name: "", address: "b@example.com" }],
    filename: "a",
    calendarFilename: "a",
    ...fields,
  };
}

// --- generators --------------------------------------------------------------------------------

/** Pieces that break header writers and readers. */
const hostilePiece = fc.constantFrom(
  " ",
  "  ",
  "\t",
  " \t ",
  "=?",
  "?=",
  "=?UTF-8?Q?a?=",
  "=?utf-8?b?YQ==?=",
  "=?iso-8859-1?q?=E9?=",
  '"',
  "\\",
  ";",
  "%",
  "%41",
  "*",
  "'",
  "''",
  "_",
  "=",
  "?",
  "(",
  ")",
  "<",
  ">",
  ",",
  ":",
  "@",
  "[",
  "]",
  "\u2028",
  "\u2029",
  "\u0085",
  "\u000b",
  "\u000c",
  "\u0001",
  "\u001b",
  "\u001f",
  "\u007f",
  "\u0080",
  "\u009f",
  "\u00a0",
  "\u1680",
  "\u2000",
  "\u200b",
  "\u3000",
  "\ufeff",
  "\u202e",
  "\ufffd",
  "\uffff",
  "\u{10ffff}",
  "e\u0301",
  "\u0301",
  "😀",
  "👩‍👩‍👧",
  "🇫🇷",
  "中文",
  "é",
  "ß",
  "Ω",
  "א",
  "ع",
  "\u0915\u094d\u0937",
);

/** A run without whitespace, often longer than a header line. */
const longRun = fc.tuple(
  fc.constantFrom("x", "é", "😀", "=?", "%", "a-b.", "中"),
  fc.integer({ min: 1, max: 400 }),
).map(([unit, count]) => unit.repeat(count));

/** Any well-formed Unicode text: every code point but the surrogates. */
const anyCodePoints = fc.string({ unit: "binary", minLength: 1, maxLength: 8 });

const unit = fc.oneof(
  { arbitrary: hostilePiece, weight: 6 },
  { arbitrary: fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 12 }), weight: 4 },
  { arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 4 }), weight: 2 },
  { arbitrary: anyCodePoints, weight: 2 },
  { arbitrary: longRun, weight: 1 },
);

/** A value for an unstructured field: any Unicode string without CR, LF or NUL. */
export const value = (minLength = 0): fc.Arbitrary<string> =>
  fc.oneof(
    { arbitrary: fc.string({ unit, minLength, maxLength: 12 }), weight: 40 },
    // Now and then a word too long for any header line (998 octets).
    {
      arbitrary: fc.tuple(fc.string({ unit, maxLength: 2 }), fc.integer({ min: 990, max: 1100 }))
        .map(([around, count]) => `${around}${"y".repeat(count)}${around}`),
      weight: 1,
    },
  ).map((text) => text.replace(/[\r\n\0]/g, ""))
    .filter((text) => text.isWellFormed() && text.length >= minLength);

/** Addresses: dot-atoms with every atext character, quoted local parts, IDN and literals. */
const address = fc.oneof(
  fc.constantFrom(
    "a@example.com",
    "first.last@example.com",
    "o'brien+tag@example.org",
    "x!#$%&'*+-/=?^_`{|}~y@example.com",
    '"john doe"@example.com',
    '"a\\"b"@example.com',
    "zoë@bücher.example",
    "info@bücher.example",
    "admin@[192.0.2.1]",
  ),
  fc.tuple(
    fc.stringMatching(/^[a-zA-Z0-9!#$%&'*+\-/=?^_`{|}~]{1,12}$/),
    fc.constantFrom("example.com", "mail.example.org"),
  ).map(([local, domain]) => `${local}@${domain}`),
);

export const generatedCase: fc.Arbitrary<Case> = fc.record({
  subject: value(),
  headers: fc.tuple(value(), value()),
  from: fc.record({ name: value(), address }),
  to: fc.array(fc.record({ name: value(), address }), { minLength: 1, maxLength: 3 }),
  filename: value(1),
  calendarFilename: value(1),
});

// --- named cases -------------------------------------------------------------------------------

const long: string = "x".repeat(60);

/**
 * Each case: what it is, the values, and `true` where Python's policy.default parser is
 * expected to get an encoded display name's whitespace wrong (see `isEncoded` in
 * `_fidelity.ts`); everywhere else it must decode exactly. "before:" says how it failed
 * before issue 21.
 */
export const NAMED_CASES: readonly [string, Partial<Case>, true?][] = [
  // Shrunk failures.
  ["a display name of one space (before: trimmed to none)", {
    from: { name: " ", address: "a@example.com" },
  }],
  ["a display name with surrounding spaces (before: trimmed)", {
    to: [{ name: " Ann Lee ", address: "ann@example.com" }],
  }],
  ["a subject folded before two spaces (before: mailparser read one space)", {
    subject: `${long}  b${"c".repeat(20)}`,
  }],
  ["a subject folded before a tab (before: mailparser read a space)", {
    subject: `${long}\tb${"c".repeat(20)}`,
  }],
  ["a custom header folded before a run of spaces (before: mailparser read one space)", {
    headers: [`槪 ${long}   F{Wm`, `${long}  b${"c".repeat(20)}`],
  }],
  ["a quoted display name folded before two spaces (before: mailparser read one space)", {
    to: [{ name: `Lee, ${"a".repeat(40)}  ${"b".repeat(30)}`, address: "b@example.com" }],
  }],
  ["a file name of one asterisk (before: sent bare, Python dropped it)", { filename: "*" }],
  ["a file name of one apostrophe (before: sent bare, Python dropped it)", {
    calendarFilename: "'",
  }],
  ["a file name that looks percent-encoded", { filename: "%41" }],
  ["a custom header of one 1000-character word (before: RangeError)", {
    headers: ["x".repeat(1000)],
  }],
  ["a 2000-character file name without specials (before: RangeError, one unfoldable line)", {
    filename: "a".repeat(2000),
  }],
  ["a subject whose first word cannot fit the first line (before: a line of 79)", {
    subject: "x".repeat(70),
  }],
  ["a display name with a tab (before: encoded, Python's policy.default read a space)", {
    from: { name: "Ann\tLee", address: "a@example.com" },
  }],
  ["a display name with two spaces inside", {
    from: { name: "Ann  Lee", address: "a@example.com" },
  }],
  // Classes of input.
  ["Unicode line separators in every field", everyField("a\u2028b\u2029c\u0085d")],
  ["C0 and C1 controls and DEL in every field", everyField("\u0001a\u001b\u007f\u0080\u009fb")],
  ["encoded-word syntax in every field", everyField("=?UTF-8?Q?a?= =?utf-8?b?YQ==?=")],
  ["MIME specials in every field", everyField(`a"b\\c;d%41*e'f(g)<h>,i:j@k[l]`)],
  ["surrounding and repeated whitespace in every field", everyField(" \t a  \t b \t "), true],
  ["a long run without whitespace in every field", everyField("é".repeat(300)), true],
  [
    "mixed scripts, emoji and combining marks in every field",
    everyField("Zoë 中文 עברית 😀👩‍👩‍👧 e\u0301 🇫🇷 \u0915\u094d\u0937"),
    true,
  ],
  ["a display name of several encoded words", {
    to: [{ name: "季度报告".repeat(12), address: "b@example.com" }],
  }, true],
  ["an empty subject and custom header", { subject: "", headers: [""] }],
];

/** A case with `value` in every free-text field. */
function everyField(value: string): Partial<Case> {
  return {
    subject: value,
    headers: [value],
    from: { name: value, address: "a@example.com" },
    to: [{ name: value, address: "b@example.com" }, { name: value, address: "c@example.com" }],
    filename: value,
    calendarFilename: value,
  };
}

// --- checks ------------------------------------------------------------------------------------

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Fields whose lines may exceed 78 columns where nothing can fold: addresses, custom. */
const UNFOLDABLE = /^(from|to|cc|reply-to|sender|x-fidelity-\d+)$/i;

/**
 * Every line ends in CRLF and is within 998 octets; header lines within 78 columns, except a
 * line of an address or custom field that holds one unbreakable word (a long address, a URL);
 * encoded words within 75 characters, each of whole UTF-8 characters.
 */
export function checkLines(bytes: Uint8Array): void {
  const text = decoder.decode(bytes);
  assert.ok(text.endsWith("\r\n"), "the message does not end with CRLF");
  let header = true;
  let field = "";
  for (const line of text.slice(0, -2).split("\r\n")) {
    assert.doesNotMatch(line, /[\r\n]/, `bare CR or LF in ${JSON.stringify(line)}`);
    const octets = encoder.encode(line).length;
    assert.ok(octets <= 998, `a line of ${octets} octets: ${JSON.stringify(line.slice(0, 80))}`);
    const name = /^([!-9;-~]+):/.exec(line);
    if (line === "") header = false;
    else if (name) [header, field] = [true, name[1]!];
    if (!header) continue;
    if (line.length > 78) {
      // A fold point is a single space between two other characters: mailparser unfolds CRLF
      // and all the whitespace after it into one space, so nowhere else may a line break.
      const rest = line.slice(name ? name[0].length : 0).trim();
      assert.ok(
        UNFOLDABLE.test(field) && !/[^ \t] [^ \t]/.test(rest),
        `a line of ${line.length} columns: ${line}`,
      );
    }
    for (const word of line.match(/=\?[^?\s]+\?[BQbq]\?[^?\s]*\?=/g) ?? []) {
      assert.ok(word.length <= 75, `an encoded word of ${word.length}: ${word}`);
      decodeWholeWord(word);
    }
  }
}

const strict = new TextDecoder("utf-8", { fatal: true });

/** Decodes one UTF-8 encoded word; throws if it ends inside a UTF-8 sequence. */
function decodeWholeWord(word: string): string {
  const [, , kind, payload] = /^=\?([^?]+)\?([BQbq])\?([^?]*)\?=$/.exec(word)!;
  let bytes: Uint8Array;
  if (kind === "B" || kind === "b") {
    bytes = Uint8Array.from(atob(payload!), (c) => c.charCodeAt(0));
  } else {
    const out: number[] = [];
    for (let i = 0; i < payload!.length; i++) {
      const c = payload![i]!;
      if (c === "_") out.push(0x20);
      else if (c === "=") {
        out.push(parseInt(payload!.slice(i + 1, i + 3), 16));
        i += 2;
      } else out.push(c.charCodeAt(0));
    }
    bytes = new Uint8Array(out);
  }
  return strict.decode(bytes);
}

/** mailparser's decoder of encoded words (what it applies to `Subject`). */
const libmime = (new MailParser() as unknown as {
  libmime: { decodeWords(text: string): string };
}).libmime;

/** One difference between what was given and what a parser decoded. */
export interface Problem {
  readonly parser: "mailparser" | "python";
  readonly field: string;
  readonly expected: unknown;
  readonly actual: unknown;
}

function differ(
  problems: Problem[],
  parser: Problem["parser"],
  field: string,
  expected: unknown,
  actual: unknown,
): void {
  if (actual !== expected) problems.push({ parser, field, expected, actual });
}

/** Parses with mailparser and lists each value that did not arrive as given. */
export async function compareMailparser(item: Case, bytes: Uint8Array): Promise<Problem[]> {
  const problems: Problem[] = [];
  const parsed = await simpleParser(Buffer.from(bytes), { keepCidLinks: true });
  const is = (field: string, expected: unknown, actual: unknown) =>
    differ(problems, "mailparser", field, expected, actual);
  is("subject", item.subject, parsed.subject ?? "");
  item.headers.forEach((value, i) => {
    const raw = parsed.headers.get(customName(i).toLowerCase());
    is(customName(i), value, raw === undefined ? "" : libmime.decodeWords(String(raw)));
  });
  const mailboxes = (
    field: string,
    given: Case["to"],
    got: AddressObject | AddressObject[] | undefined,
  ) => {
    const list = got === undefined
      ? []
      : Array.isArray(got)
      ? got.flatMap((g) => g.value)
      : got.value;
    is(`${field} count`, given.length, list.length);
    given.forEach((mailbox, i) => {
      is(`${field}[${i}] name`, mailbox.name, list[i]?.name);
      is(`${field}[${i}] address`, sameAddress(mailbox.address), sameAddress(list[i]?.address));
    });
  };
  mailboxes("from", [item.from], parsed.from);
  mailboxes("to", item.to, parsed.to);
  // Found by content: mailparser renames application/octet-stream after the file name.
  const attachment = parsed.attachments.find((a) => a.content.toString() === "attached");
  is("filename", item.filename, attachment?.filename);
  const typeHeader = attachment?.headers.get("content-type") as
    | { params?: Record<string, string> }
    | undefined;
  is("name parameter", item.filename, typeHeader?.params?.name);
  const ics = parsed.attachments.find((a) =>
    a.contentDisposition === "attachment" && a.content.toString().startsWith("BEGIN:VCALENDAR")
  );
  is("calendar filename", item.calendarFilename, ics?.filename);
  return problems;
}

/**
 * What `Message.get_filename()` makes of a file name: `email.utils.unquote()` (which removes
 * surrounding double quotes, undoing `\\` escapes, or surrounding angle brackets), then
 * `str.strip()`.
 */
function pythonFilename(name: string): string {
  let text = name;
  if (text.length > 1 && text.startsWith('"') && text.endsWith('"')) {
    text = text.slice(1, -1).replaceAll("\\\\", "\\").replaceAll('\\"', '"');
  } else if (text.length > 1 && text.startsWith("<") && text.endsWith(">")) {
    text = text.slice(1, -1);
  }
  return text.replace(new RegExp(`^[${PYTHON_SPACE}]+|[${PYTHON_SPACE}]+$`, "g"), "");
}

/**
 * An address as a header carries it: the domain in punycode when the local part is ASCII
 * (mailparser gives such a domain back in Unicode, Python as written).
 */
function sameAddress(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  try {
    return headerAddress(address);
  } catch {
    return address;
  }
}

/** Python's `str.isspace()` characters, for a character class. */
const PYTHON_SPACE =
  "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

/** Text without any of Python's whitespace. */
function withoutSpace(text: string): string {
  return text.replace(new RegExp(`[${PYTHON_SPACE}]+`, "g"), "");
}

/**
 * True when an address field holds encoded words. Python's `policy.default` parser (3.11) gets
 * the whitespace of an encoded display name wrong in two ways: it keeps the whitespace between
 * two adjacent encoded words (RFC 2047 section 6.2 says to drop it) and turns each run of
 * whitespace inside one into a single space. No encoding avoids both in both parsers (a
 * name of more than about 40 non-ASCII bytes needs two words; a quoted string keeps runs of
 * spaces in Python but mailparser trims it), so such a name is compared without whitespace
 * there, and exactly through Python's other API (`getaddresses()`, `decode_header()`).
 */
function isEncoded(field: PythonField | undefined): boolean {
  return field !== undefined && /=\?[^?]+\?[BQbq]\?/.test(field.raw);
}

/**
 * The defects that remain once Python's note of control characters is set aside where the
 * value holds some: Python decodes them exactly and also reports them (NonPrintableDefect).
 */
function withoutControls(defects: readonly string[] | undefined, values: string[]): string {
  const controls = values.some((v) => {
    for (let i = 0; i < v.length; i++) {
      const c = v.charCodeAt(i);
      if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
    }
    return false;
  });
  return (defects ?? []).filter((d) => !(controls && d.startsWith("NonPrintableDefect"))).join(
    "; ",
  );
}

/** What Python says of RFC 2047 encoded words in a quoted `name=` parameter. */
const NAME_DEFECTS =
  /^InvalidHeaderDefect: (encoded word inside quoted string|missing trailing whitespace after encoded-word|missing whitespace before encoded word)$/;

/** Lists each value that Python's `email` package did not decode as given. */
export function comparePython(
  item: Case,
  message: PythonMessage,
  exceptions: string[] = [],
): Problem[] {
  const problems: Problem[] = [];
  const is = (field: string, expected: unknown, actual: unknown) =>
    differ(problems, "python", field, expected, actual);
  const field = (name: string) =>
    message.fields.find((f) => f.name.toLowerCase() === name.toLowerCase());
  const subject = field("Subject");
  is("subject", item.subject, subject?.value);
  is("subject defects", "", withoutControls(subject?.defects, [item.subject]));
  item.headers.forEach((value, i) => {
    const header = field(customName(i));
    is(customName(i), value, header?.value);
    is(`${customName(i)} defects`, "", withoutControls(header?.defects, [value]));
  });
  const mailboxes = (name: string, given: Case["to"]) => {
    const header = field(name);
    const list = header?.mailboxes ?? [];
    // Python notes a local part that is not ASCII (RFC 6532) as a defect, and reads it.
    const defects = header?.defects.filter((d) =>
      !(d.startsWith("NonASCIILocalPartDefect") &&
        given.some((m) => /^[^@]*[^\p{ASCII}]/u.test(m.address)))
    );
    is(`${name} defects`, "", withoutControls(defects, given.map((m) => m.name)));
    is(`${name} count`, given.length, list.length);
    given.forEach((mailbox, i) => {
      const address = sameAddress(mailbox.address);
      const legacy = header?.legacy?.[i];
      is(`${name}[${i}] name (getaddresses)`, mailbox.name, legacy?.name);
      is(`${name}[${i}] address (getaddresses)`, address, sameAddress(legacy?.address));
      is(`${name}[${i}] address`, address, sameAddress(list[i]?.address));
      const got = list[i]?.name;
      if (
        got !== mailbox.name && got !== undefined && isEncoded(header) &&
        withoutSpace(got) === withoutSpace(mailbox.name)
      ) {
        exceptions.push(`${name} display name`);
        return;
      }
      is(`${name}[${i}] name`, mailbox.name, got);
    });
  };
  mailboxes("From", [item.from]);
  mailboxes("To", item.to);
  const attachment = message.parts.find((p) => p.type === "application/octet-stream");
  is("filename", item.filename, attachment?.dispositionParams?.filename);
  is("name parameter", item.filename, attachment?.typeParams?.name);
  is(
    "disposition defects",
    "",
    withoutControls(attachment?.dispositionDefects, [item.filename]),
  );
  // `name=` carries RFC 2047 encoded words inside a quoted string, as common practice does for
  // programs that do not read RFC 2231 (`filename*` is the standard form): Python decodes them
  // and notes exactly that as a defect, which is expected; any other defect is a problem.
  is(
    "content type defects",
    "",
    withoutControls(attachment?.typeDefects?.filter((d) => !NAME_DEFECTS.test(d)), [
      item.filename,
    ]),
  );
  // get_filename() strips the name, and unquote()s it, on purpose: that much is Python's.
  is("get_filename()", pythonFilename(item.filename), attachment?.filename);
  const ics = message.parts.find((p) => p.type === "application/ics");
  is("calendar filename", item.calendarFilename, ics?.dispositionParams?.filename);
  is("calendar get_filename()", pythonFilename(item.calendarFilename), ics?.filename);
  return problems;
}
