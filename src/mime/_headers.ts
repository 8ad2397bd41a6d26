/**
 * Header fields: validation against header injection, and formatting of unstructured text,
 * address lists, message ids and MIME parameters (RFC 2231), all folded.
 *
 * @module
 */

import { displayNameForm, headerAddress, type Mailbox } from "./address.ts";
import { EncodedWordWriter } from "./_encoded_words.ts";
import { HeaderFolder } from "./_fold.ts";

/** Whitespace longer than this is encoded rather than kept as a place to fold. */
const MAX_PLAIN_SPACE = 32;
/** A plain word longer than this cannot fold onto a 78-column line and is encoded. */
const MAX_PLAIN_WORD = 76;

/** Throws unless `name` is a valid field name (RFC 5322 ftext: printable ASCII except `:`). */
export function checkHeaderName(name: string): void {
  if (name === "") throw new TypeError("Cannot compose message: empty header name");
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x0d || c === 0x0a) {
      throw new TypeError(
        `Cannot compose message: header name ${JSON.stringify(name)} contains a line break`,
      );
    }
    if (c <= 0x20 || c >= 0x7f || c === 0x3a) {
      throw new TypeError(
        `Cannot compose message: header name ${JSON.stringify(name)} contains ${
          JSON.stringify(name[i])
        }`,
      );
    }
  }
}

/** Throws when a header value contains CR, LF or NUL (header injection). */
export function checkHeaderValue(name: string, value: string): void {
  if (typeof value !== "string") {
    throw new TypeError(`Cannot compose message: header "${name}" is not a string`);
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x0d || c === 0x0a) {
      throw new TypeError(`Cannot compose message: header "${name}" contains a line break`);
    }
    if (c === 0) {
      throw new TypeError(`Cannot compose message: header "${name}" contains a NUL character`);
    }
  }
}

/** A word of a header value with the whitespace that precedes it. */
interface Word {
  readonly space: string;
  readonly text: string;
}

/** Splits text into words, each with the whitespace before it; returns trailing whitespace. */
function splitWords(value: string): { words: Word[]; trailing: string } {
  const words: Word[] = [];
  let i = 0;
  while (i < value.length) {
    let j = i;
    while (j < value.length && (value[j] === " " || value[j] === "\t")) j++;
    const space = value.slice(i, j);
    if (j === value.length) return { words, trailing: space };
    let k = j;
    while (k < value.length && value[k] !== " " && value[k] !== "\t") k++;
    words.push({ space, text: value.slice(j, k) });
    i = k;
  }
  return { words, trailing: "" };
}

/** True when a word cannot go into the header as is. */
function needsEncoding(word: string, allowLong: boolean): boolean {
  if (!allowLong && word.length > MAX_PLAIN_WORD) return true;
  for (let i = 0; i < word.length; i++) {
    const c = word.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return true;
  }
  return word.includes("=?");
}

/**
 * Appends unstructured text (RFC 5322 `unstructured`): printable ASCII words stay readable;
 * runs of words that need encoding (non-ASCII, controls, `=?`, very long words) become RFC 2047
 * encoded words together with the whitespace between them. Leading and trailing whitespace is
 * encoded too, so that the value survives unfolding and trimming exactly.
 */
function addUnstructured(folder: HeaderFolder, value: string, allowLong: boolean): void {
  const { words, trailing } = splitWords(value);
  if (words.length === 0) {
    if (value !== "") folder.addEncoded(" ", value);
    return;
  }
  const encode = words.map((word, i) =>
    needsEncoding(word.text, allowLong) || (i === 0 && word.space !== "") ||
    word.space.length > MAX_PLAIN_SPACE
  );
  if (trailing !== "") encode[words.length - 1] = true;
  let i = 0;
  while (i < words.length) {
    const word = words[i]!;
    if (!encode[i]) {
      folder.add(i === 0 ? " " : word.space, word.text);
      i++;
      continue;
    }
    let space: string;
    let text: string;
    if (i === 0) {
      space = " ";
      text = word.space + word.text;
    } else if (word.space.length > MAX_PLAIN_SPACE) {
      space = word.space.slice(0, 1);
      text = word.space.slice(1) + word.text;
    } else {
      space = word.space;
      text = word.text;
    }
    i++;
    while (i < words.length && encode[i]) {
      text += words[i]!.space + words[i]!.text;
      i++;
    }
    if (i === words.length) text += trailing;
    folder.addEncoded(space, text);
  }
}

/**
 * Formats an unstructured header such as `Subject`, folded, with CRLF.
 *
 * @param allowLong Keep long ASCII words as they are (custom headers, where encoding a URL
 *   would break it); such a header fails if a line still exceeds 998 octets.
 */
export function formatUnstructured(name: string, value: string, allowLong = false): string {
  checkHeaderValue(name, value);
  const folder = new HeaderFolder(name);
  addUnstructured(folder, value, allowLong);
  return folder.toString();
}

/** Formats an address header (`From`, `To`, ...), folded between and inside mailboxes. */
export function formatAddresses(name: string, mailboxes: readonly Mailbox[]): string {
  const folder = new HeaderFolder(name);
  mailboxes.forEach((mailbox, index) => {
    const comma = index < mailboxes.length - 1 ? "," : "";
    const address = headerAddress(mailbox.address);
    if (mailbox.name === "") {
      folder.add(" ", address + comma);
      return;
    }
    const form = displayNameForm(mailbox.name);
    if (form.kind === "encoded") {
      folder.addEncoded(" ", form.text);
    } else {
      const { words } = splitWords(form.text);
      words.forEach((word, i) => folder.add(i === 0 ? " " : word.space, word.text));
    }
    folder.add(" ", `<${address}>${comma}`);
  });
  return folder.toString();
}

/**
 * Checks a message id and returns it with angle brackets. Accepts `id@domain` or
 * `<id@domain>`; rejects whitespace, line breaks, brackets inside and non-ASCII.
 */
export function normalizeMessageId(field: string, id: string): string {
  checkHeaderValue(field, id);
  const bare = id.startsWith("<") && id.endsWith(">") ? id.slice(1, -1) : id;
  if (bare === "" || !/^[\x21-\x7e]+$/.test(bare) || /[<>]/.test(bare)) {
    throw new TypeError(
      `Cannot compose message: ${field} ${JSON.stringify(id)} is not a valid message id`,
    );
  }
  return `<${bare}>`;
}

/** Formats a header holding message ids (`Message-ID`, `In-Reply-To`, `References`). */
export function formatIds(name: string, ids: readonly string[]): string {
  const folder = new HeaderFolder(name);
  for (const id of ids) folder.add(" ", id);
  return folder.toString();
}

/** RFC 2045 `token` characters. */
function isToken(text: string): boolean {
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(text);
}

/** The length of each byte in an RFC 2231 extended value: 1 for an `attribute-char`, else 3. */
const PERCENT_LENGTH: Uint8Array = Uint8Array.from(
  { length: 256 },
  (_, b) => /[0-9A-Za-z!#$&+\-.^_`|~]/.test(String.fromCharCode(b)) ? 1 : 3,
);
/** `0123456789ABCDEF` as bytes. */
const HEX_DIGITS: Uint8Array = new TextEncoder().encode("0123456789ABCDEF");
const decoder = new TextDecoder();

/** The length of the UTF-8 sequence that starts with `lead`. */
function sequenceLength(lead: number): number {
  return lead < 0x80 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
}
const encoder = new TextEncoder();

/** How a parameter value that is not plain ASCII is written. */
export type ParameterStyle = "rfc2231" | "rfc2047";

/** One `key=value` parameter of a MIME header. */
export interface Parameter {
  readonly key: string;
  readonly value: string;
  /** How to write a value that needs encoding. @default {"rfc2231"} */
  readonly style?: ParameterStyle;
}

/** The longest parameter (or continuation, with its `;`) on a line after one space. */
const MAX_SIMPLE_PARAMETER = 76;

/**
 * The tokens of one parameter, each of which may go on a line of its own; every token but the
 * last carries its own separator (`;` between RFC 2231 continuations, nothing between words).
 */
function parameterSegments(parameter: Parameter): string[] {
  const { key, value } = parameter;
  const plain = `${key}=${value}`;
  if (isToken(value) && plain.length <= MAX_SIMPLE_PARAMETER) return [plain];
  const printable = /^[\x20-\x7e]*$/.test(value) && !value.includes("=?");
  const quoted = `${key}="${value.replace(/[\\"]/g, "\\$&")}"`;
  if (printable && quoted.length <= MAX_SIMPLE_PARAMETER) return [quoted];
  if (parameter.style === "rfc2047") {
    // Common practice for `name=` (not a standard): encoded words inside a quoted string.
    const words = encodeWordsForParameter(value);
    return words.map((word, i) =>
      (i === 0 ? `${key}="` : "") + word + (i === words.length - 1 ? '"' : "")
    );
  }
  // RFC 2231: percent-encoded UTF-8, cut into continuations on character boundaries, each
  // sized so that ` key*N*=...;` fits on a 78-column line. The encoded text is written once
  // into one ASCII string and the continuations are slices of it: linear in the value.
  const bytes = encoder.encode(value);
  const out = new Uint8Array(bytes.length * 3);
  const cuts: number[] = [];
  const first = `${key}*0*=UTF-8''`.length;
  let o = 0;
  let segmentStart = 0;
  let room = MAX_SIMPLE_PARAMETER - first;
  let i = 0;
  while (i < bytes.length) {
    const end = Math.min(i + sequenceLength(bytes[i]!), bytes.length);
    let length = 0;
    for (let j = i; j < end; j++) length += PERCENT_LENGTH[bytes[j]!]!;
    if (o > segmentStart && o - segmentStart + length > room) {
      cuts.push(o);
      segmentStart = o;
      room = MAX_SIMPLE_PARAMETER - `${key}*${cuts.length}*=`.length;
    }
    for (; i < end; i++) {
      const b = bytes[i]!;
      if (PERCENT_LENGTH[b] === 1) {
        out[o++] = b;
      } else {
        out[o++] = 0x25;
        out[o++] = HEX_DIGITS[b >>> 4]!;
        out[o++] = HEX_DIGITS[b & 15]!;
      }
    }
  }
  const encoded = decoder.decode(out.subarray(0, o));
  const whole = `${key}*=UTF-8''${encoded}`;
  if (whole.length <= MAX_SIMPLE_PARAMETER) return [whole];
  const segments: string[] = [];
  let start = 0;
  for (const cut of cuts) {
    const prefix = segments.length === 0 ? `${key}*0*=UTF-8''` : `${key}*${segments.length}*=`;
    segments.push(`${prefix}${encoded.slice(start, cut)};`);
    start = cut;
  }
  const prefix = segments.length === 0 ? `${key}*0*=UTF-8''` : `${key}*${segments.length}*=`;
  segments.push(prefix + encoded.slice(start));
  return segments;
}

/** Encoded words short enough that `name="` plus a word fits on one folded line. */
function encodeWordsForParameter(value: string): string[] {
  const writer = new EncodedWordWriter(value);
  const words: string[] = [];
  while (!writer.done) words.push(writer.take(60));
  return words;
}

/**
 * Formats a MIME header with parameters, e.g.
 * `Content-Type: text/plain; charset=UTF-8` or `Content-Disposition: attachment; filename*=...`.
 */
export function formatWithParameters(
  name: string,
  value: string,
  parameters: readonly Parameter[],
): string {
  checkHeaderValue(name, value);
  const tokens: string[] = [];
  parameters.forEach((parameter, i) => {
    checkHeaderValue(name, parameter.value);
    const segments = parameterSegments(parameter);
    if (i < parameters.length - 1) segments[segments.length - 1] += ";";
    for (const segment of segments) tokens.push(segment);
  });
  const folder = new HeaderFolder(name);
  folder.add(" ", value + (tokens.length > 0 ? ";" : ""));
  for (const token of tokens) folder.add(" ", token);
  return folder.toString();
}

/** Formats a date as RFC 5322 `date-time` in UTC, e.g. `Tue, 01 Jul 2025 09:05:00 +0000`. */
export function formatDate(date: Date): string {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw new RangeError("Cannot compose message: date is not a valid Date");
  }
  const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const months = [
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
  ];
  const pad = (n: number) => String(n).padStart(2, "0");
  const year = date.getUTCFullYear();
  if (year < 1900 || year > 9999) {
    throw new RangeError(`Cannot compose message: date year ${year} is out of range`);
  }
  return `${days[date.getUTCDay()]}, ${pad(date.getUTCDate())} ${
    months[date.getUTCMonth()]
  } ${year} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${
    pad(date.getUTCSeconds())
  } +0000`;
}
