/**
 * Mailboxes: parsing (`"Name" <a@b>`, `a@b`, `{ name, address }`, comma-separated lists),
 * validation, header formatting and the envelope form of an address (SMTPUTF8, IDN domains).
 *
 * The parser is a hand-written scanner that looks at each character a bounded number of times,
 * so its cost is linear in the input.
 *
 * @module
 */

import { encodeWords } from "./_encoded_words.ts";
import {
  assertSingleLine,
  invalid,
  isAtext,
  quote,
  splitAddress,
  toAsciiDomain,
} from "./_address_check.ts";
import { isAscii } from "./_text.ts";

/** An address as users give it: `"Name" <a@b>`, `a@b`, or an object. */
export type AddressInput = string | { readonly name?: string; readonly address: string };

/** One parsed and validated mailbox. */
export interface Mailbox {
  /** The display name, `""` when there is none. */
  readonly name: string;
  /** The address (`local@domain`) as given: Unicode is kept. */
  readonly address: string;
}

/** An address alone, with nothing the scanner would treat specially. */
const BARE_ADDRESS = /^[^\s"(),<>\\]+$/;
/** `Name <a@b>` without quotes, comments, escapes or commas: the name, then the address. */
const PLAIN_NAME_ADDR = /^([^"(),<>\\]*)<([^"(),<>\\]*)>$/;
const BLANKS = /[ \t]+/g;

/**
 * Scans one mailbox (`Name <a@b>`, `"Name" <a@b>`, `a@b`, `a@b (Name)`) from `text`.
 * Quoted strings lose their quotes and escapes; runs of whitespace in the name become one space.
 */
function scanMailbox(text: string, original: string): Mailbox {
  // The common shapes, `a@b` and `Name <a@b>` without quotes, comments or escapes, through
  // regular expressions (machine code from the first message on); the scanner below gives the
  // same result for them, and handles everything else.
  if (BARE_ADDRESS.test(text)) return { name: "", address: checked(text, original) };
  const plain = PLAIN_NAME_ADDR.exec(text);
  if (plain) {
    return {
      name: plain[1]!.replace(BLANKS, " ").trim(),
      address: checked(plain[2]!.trim(), original),
    };
  }
  let name = "";
  let comment = "";
  let angle: string | undefined;
  let bare = "";
  let spaceAfterBare = false;
  let innerSpace = false;
  const addBare = (piece: string) => {
    if (spaceAfterBare) innerSpace = true;
    bare += piece;
  };
  let afterAngle = false;
  let pendingSpace = false;
  const addName = (piece: string) => {
    if (pendingSpace && name !== "") name += " ";
    pendingSpace = false;
    name += piece;
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"') {
      let j = i + 1;
      let content = "";
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === "\\" && j + 1 < text.length) j++;
        content += text[j];
      }
      if (j >= text.length) throw invalid(original, "unterminated quoted string");
      if (afterAngle) throw invalid(original, "text after the address");
      if (angle === undefined) {
        // Could be a display name or a quoted local part: keep the raw text for the latter.
        const raw = text.slice(i, j + 1);
        if (text[j + 1] === "@") addBare(raw);
        else addName(content);
      }
      i = j + 1;
    } else if (c === "(") {
      let depth = 1;
      let j = i + 1;
      let content = "";
      for (; j < text.length && depth > 0; j++) {
        const d = text[j]!;
        if (d === "\\" && j + 1 < text.length) {
          j++;
          content += text[j];
          continue;
        }
        if (d === "(") depth++;
        else if (d === ")" && --depth === 0) break;
        content += d;
      }
      if (depth > 0) throw invalid(original, "unterminated comment");
      if (comment === "") comment = content.trim().replace(/\s+/g, " ");
      pendingSpace = true;
      i = j + 1;
    } else if (c === "<") {
      if (angle !== undefined) throw invalid(original, "more than one <");
      const end = text.indexOf(">", i + 1);
      if (end < 0) throw invalid(original, "missing >");
      angle = text.slice(i + 1, end).trim();
      afterAngle = true;
      i = end + 1;
    } else if (c === ">") {
      throw invalid(original, "unexpected >");
    } else if (c === " " || c === "\t") {
      pendingSpace = true;
      if (bare !== "") spaceAfterBare = true;
      i++;
    } else {
      if (afterAngle) throw invalid(original, "text after the address");
      let j = i;
      while (j < text.length && !' \t"(<>'.includes(text[j]!)) j++;
      const word = text.slice(i, j);
      addBare(word);
      addName(word);
      i = j;
    }
  }
  if (angle !== undefined) {
    return { name: name.trim(), address: checked(angle, original) };
  }
  if (innerSpace) {
    throw invalid(original, 'a display name needs angle brackets: "Name <address>"');
  }
  return { name: comment, address: checked(bare, original) };
}

function checked(address: string, original: string): string {
  splitAddress(address, original);
  return address;
}

/** Splits a list at the commas that are outside quotes, comments and angle brackets. */
function splitList(text: string): string[] {
  if (!text.includes(",")) return [text];
  const parts: string[] = [];
  let start = 0;
  let inQuote = false;
  let comment = 0;
  let inAngle = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inQuote) {
      if (c === "\\") i++;
      else if (c === '"') inQuote = false;
    } else if (comment > 0) {
      if (c === "\\") i++;
      else if (c === "(") comment++;
      else if (c === ")") comment--;
    } else if (c === '"') inQuote = true;
    else if (c === "(") comment = 1;
    else if (c === "<") inAngle = true;
    else if (c === ">") inAngle = false;
    else if (c === "," && !inAngle) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

function parseOne(input: AddressInput): Mailbox[] {
  if (typeof input === "string") {
    assertSingleLine(input, input, "address");
    const mailboxes: Mailbox[] = [];
    for (const part of splitList(input)) {
      if (part.trim() === "") continue;
      mailboxes.push(scanMailbox(part.trim(), input));
    }
    if (mailboxes.length === 0) throw invalid(input, "empty address");
    return mailboxes;
  }
  if (input === null || typeof input !== "object" || typeof input.address !== "string") {
    throw new TypeError(
      `Invalid address: expected a string or { name?, address }, got ${
        input === null ? "null" : typeof input
      }`,
    );
  }
  const name = input.name ?? "";
  if (typeof name !== "string") throw invalid(input.address, "name is not a string");
  assertSingleLine(input.address, input.address, "address");
  const address = input.address.trim();
  assertSingleLine(name, input.address, "display name");
  const bracketed = address.startsWith("<") && address.endsWith(">");
  return [{
    name: name.trim(),
    address: checked(bracketed ? address.slice(1, -1) : address, address),
  }];
}

/**
 * Parses one or more addresses into validated mailboxes. A string may hold a comma-separated
 * list; an array may mix strings and objects.
 *
 * @param input The addresses.
 * @returns The mailboxes in order (duplicates are kept).
 * @throws {TypeError} When an address is invalid or contains CR, LF or NUL.
 *
 * @example Parse a list
 * ```ts
 * import { parseAddressList } from "@postie/smtp/mime";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseAddressList('"Doe, Jane" <jane@example.com>, bob@example.com'), [
 *   { name: "Doe, Jane", address: "jane@example.com" },
 *   { name: "", address: "bob@example.com" },
 * ]);
 * assert.throws(() => parseAddressList("foo"), TypeError);
 * ```
 */
export function parseAddressList(input: AddressInput | readonly AddressInput[]): Mailbox[] {
  if (Array.isArray(input)) return input.flatMap((item) => parseOne(item));
  return parseOne(input as AddressInput);
}

/**
 * Parses exactly one mailbox.
 *
 * @param input The address.
 * @returns The mailbox.
 * @throws {TypeError} When the input is invalid or holds more than one address.
 *
 * @example Parse a name and an address
 * ```ts
 * import { parseMailbox } from "@postie/smtp/mime";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseMailbox("Jane Doe <jane@example.com>"), {
 *   name: "Jane Doe",
 *   address: "jane@example.com",
 * });
 * ```
 */
export function parseMailbox(input: AddressInput): Mailbox {
  const list = parseOne(input);
  if (list.length !== 1) {
    const text = typeof input === "string" ? input : input.address;
    throw invalid(text, `expected one address, got ${list.length}`);
  }
  return list[0]!;
}

/**
 * Tells whether sending to or from `address` needs the SMTPUTF8 extension: true when its local
 * part is not ASCII (a non-ASCII domain can be converted to punycode instead).
 *
 * @param address A bare address (`local@domain`).
 * @returns Whether SMTPUTF8 is needed.
 *
 * @example
 * ```ts
 * import { needsSmtpUtf8 } from "@postie/smtp/mime";
 * import assert from "node:assert/strict";
 *
 * assert.equal(needsSmtpUtf8("jörg@example.com"), true);
 * assert.equal(needsSmtpUtf8("joerg@bücher.example"), false);
 * ```
 */
export function needsSmtpUtf8(address: string): boolean {
  const at = address.lastIndexOf("@");
  return !isAscii(at < 0 ? address : address.slice(0, at));
}

/**
 * Returns the form of an address for `MAIL FROM` / `RCPT TO`. ASCII addresses are returned as
 * is; without SMTPUTF8 an internationalised domain becomes punycode (through the WHATWG URL
 * parser) and a non-ASCII local part is an error. An empty string (the null reverse path) is
 * returned as is.
 *
 * @param address A bare address (`local@domain`).
 * @param smtputf8 Whether the server offers SMTPUTF8 (and it will be used).
 * @returns The address to put in the command, without angle brackets.
 * @throws {TypeError} When the address is invalid.
 * @throws {RangeError} When the local part is not ASCII and `smtputf8` is false.
 *
 * @example
 * ```ts
 * import { envelopeAddress } from "@postie/smtp/mime";
 * import assert from "node:assert/strict";
 *
 * assert.equal(envelopeAddress("info@bücher.example", false), "info@xn--bcher-kva.example");
 * assert.equal(envelopeAddress("info@bücher.example", true), "info@bücher.example");
 * assert.throws(() => envelopeAddress("jörg@example.com", false), RangeError);
 * ```
 */
export function envelopeAddress(address: string, smtputf8: boolean): string {
  if (address === "") return "";
  assertSingleLine(address, address, "address");
  const { local, domain } = splitAddress(address, address);
  if (isAscii(address) || smtputf8) return address;
  if (!isAscii(local)) {
    throw new RangeError(
      `Cannot use address ${
        quote(address)
      }: its local part is not ASCII and the server does not support SMTPUTF8`,
    );
  }
  return `${local}@${toAsciiDomain(domain, address)}`;
}

/**
 * The form of an address in a header: an internationalised domain becomes punycode when the
 * local part is ASCII (so the message does not need SMTPUTF8); otherwise kept as is (RFC 6532).
 */
export function headerAddress(address: string): string {
  if (isAscii(address)) return address;
  const { local, domain } = splitAddress(address, address);
  if (!isAscii(local) || isAscii(domain) || domain.startsWith("[")) return address;
  return `${local}@${toAsciiDomain(domain, address)}`;
}

/** The domain of an address in ASCII, for Message-ID and for comparing addresses. */
export function asciiDomain(address: string): string {
  const { domain } = splitAddress(address, address);
  return isAscii(domain) ? domain.toLowerCase() : toAsciiDomain(domain, address);
}

/** How a display name is written in a header. */
export type DisplayNameForm =
  | { readonly kind: "atoms"; readonly text: string }
  | { readonly kind: "quoted"; readonly text: string }
  | { readonly kind: "encoded"; readonly text: string };

/** Longest word of a plain display name; longer ones are encoded so that lines can fold. */
const MAX_PLAIN_WORD = 70;

/**
 * Decides how to write a display name: as atoms, as a quoted string (ASCII with specials, with
 * `"` and `\` escaped), or as RFC 2047 encoded words (non-ASCII, control characters, `=?`, or
 * words too long to fold).
 */
export function displayNameForm(name: string): DisplayNameForm {
  let atoms = true;
  let word = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c >= 0x7f) return { kind: "encoded", text: name };
    if (c === 0x20) {
      word = 0;
      if (i === 0 || i === name.length - 1 || name.charCodeAt(i - 1) === 0x20) atoms = false;
      continue;
    }
    if (++word > MAX_PLAIN_WORD) return { kind: "encoded", text: name };
    if (!isAtext(c)) atoms = false;
  }
  if (name.includes("=?")) return { kind: "encoded", text: name };
  if (atoms) return { kind: "atoms", text: name };
  return { kind: "quoted", text: `"${name.replace(/[\\"]/g, "\\$&")}"` };
}

/**
 * Formats a mailbox for a header, on one line (the header builder folds it): `Name <a@b>`,
 * `"Doe, Jane" <a@b>`, `=?UTF-8?B?...?= <a@b>` or `a@b`.
 *
 * @param mailbox The mailbox, or an address to parse first.
 * @returns The header form.
 * @throws {TypeError} When the address is invalid.
 *
 * @example
 * ```ts
 * import { formatMailbox } from "@postie/smtp/mime";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatMailbox({ name: "Doe, Jane", address: "jane@example.com" }), '"Doe, Jane" <jane@example.com>');
 * assert.equal(formatMailbox("Zoë <zoe@example.com>"), "=?UTF-8?Q?Zo=C3=AB?= <zoe@example.com>");
 * ```
 */
export function formatMailbox(mailbox: Mailbox | AddressInput): string {
  const { name, address } = typeof mailbox === "string" ? parseMailbox(mailbox) : parseMailbox(
    mailbox,
  );
  const shown = headerAddress(address);
  if (name === "") return shown;
  const form = displayNameForm(name);
  const text = form.kind === "encoded" ? encodeWords(form.text) : form.text;
  return `${text} <${shown}>`;
}
