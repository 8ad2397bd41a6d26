/**
 * Header fields: validation against header injection, and formatting of unstructured text,
 * address lists, message ids and MIME parameters (RFC 2231), all folded.
 *
 * @module
 */

import { headerAddress, type Mailbox } from "./address.ts";
import { EncodedWordWriter, sequenceLength } from "./_encoded_words.ts";
import { FOLD_WIDTH, HeaderFolder, MAX_LINE_OCTETS } from "./_fold.ts";

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

/** The characters that {@linkcode checkText} looks at closely: controls up to CR, surrogates. */
const SUSPECT_IN_TEXT = /[\0-\r\ud800-\udfff]/;

/**
 * Throws unless `value` is a string that a header can carry exactly: no CR or LF (header
 * injection), no NUL, and no lone surrogate (which is not Unicode text: UTF-8 cannot encode it,
 * so it would arrive as U+FFFD). `field` names the input in the error, e.g. `header "Subject"`.
 */
export function checkText(field: string, value: string): void {
  if (typeof value !== "string") {
    throw new TypeError(`Cannot compose message: ${field} is not a string`);
  }
  if (!SUSPECT_IN_TEXT.test(value)) return;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c > 0x0d && c < 0xd800) continue;
    if (c === 0x0d || c === 0x0a) {
      throw new TypeError(`Cannot compose message: ${field} contains a line break`);
    }
    if (c === 0) {
      throw new TypeError(`Cannot compose message: ${field} contains a NUL character`);
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      if (c <= 0xdbff && (value.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
        i++;
        continue;
      }
      throw new TypeError(
        `Cannot compose message: ${field} contains a lone surrogate (U+${
          c.toString(16).toUpperCase()
        } at index ${i}), which is not Unicode text`,
      );
    }
  }
}

/** Throws when a header value contains CR, LF, NUL or a lone surrogate. */
export function checkHeaderValue(name: string, value: string): void {
  checkText(`header "${name}"`, value);
}

/** True for space and tab. */
function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/**
 * Splits a value at its fold points: the single spaces between two characters that are not
 * whitespace. Only there may a header fold: parsers that unfold CRLF plus whitespace into one
 * space (mailparser does) would turn a fold before a tab, or before a run of spaces, into a
 * single space. The segments keep any other whitespace; only the first can start with
 * whitespace and only the last can end with it.
 */
function segments(value: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 1; i < value.length - 1; i++) {
    if (
      value.charCodeAt(i) === 0x20 && !isSpace(value.charCodeAt(i - 1)) &&
      !isSpace(value.charCodeAt(i + 1))
    ) {
      out.push(value.slice(start, i));
      start = i + 1;
    }
  }
  out.push(value.slice(start));
  return out;
}

/**
 * True when a segment can go into an unstructured header as it is: printable ASCII (spaces and
 * tabs inside), no surrounding whitespace (parsers trim a value), no `=?` (which a decoder
 * could take for the start of an encoded word) and at most `max` characters.
 */
function isPlainSegment(segment: string, max: number): boolean {
  const n = segment.length;
  if (n === 0 || n > max) return false;
  if (isSpace(segment.charCodeAt(0)) || isSpace(segment.charCodeAt(n - 1))) return false;
  return !NOT_PLAIN.test(segment);
}

/** What keeps a segment from staying plain: a character outside tab and printable ASCII, `=?`. */
const NOT_PLAIN = /[^\t\x20-\x7e]|=\?/;

/**
 * Appends unstructured text (RFC 5322 `unstructured`) so that every decoder gives back exactly
 * `value`: segments of printable ASCII that fit a line stay readable; every run of other
 * segments (non-ASCII, controls, Unicode line separators, `=?`, surrounding whitespace, words
 * too long to fold) becomes RFC 2047 encoded words together with the spaces between them.
 *
 * @param maxLine The longest line a plain segment may make: 78, or 998 for custom headers,
 *   whose long words (URLs) stay as they are while a line can hold them.
 */
function addUnstructured(
  folder: HeaderFolder,
  name: string,
  value: string,
  maxLine: number,
): void {
  if (value === "") return;
  const parts = segments(value);
  // The first segment must fit after `Name: `, the others after the folding space.
  const firstMax = maxLine - name.length - 2;
  let i = 0;
  while (i < parts.length) {
    if (isPlainSegment(parts[i]!, i === 0 ? firstMax : maxLine - 1)) {
      folder.add(" ", parts[i]!);
      i++;
      continue;
    }
    let text = parts[i]!;
    i++;
    while (i < parts.length && !isPlainSegment(parts[i]!, maxLine - 1)) {
      text += " " + parts[i]!;
      i++;
    }
    folder.addEncoded(" ", text);
  }
}

/**
 * Formats an unstructured header such as `Subject`, folded, with CRLF.
 *
 * @param allowLong Keep long ASCII words as they are while a line can hold them (custom
 *   headers, where encoding a URL would break it); longer ones are encoded.
 */
export function formatUnstructured(name: string, value: string, allowLong = false): string {
  checkHeaderValue(name, value);
  const folder = new HeaderFolder(name);
  addUnstructured(folder, name, value, allowLong ? MAX_LINE_OCTETS : FOLD_WIDTH);
  return folder.toString();
}

/** RFC 5322 `atext` (section 3.2.3), by ASCII code. */
const ATEXT: Uint8Array = Uint8Array.from(
  { length: 128 },
  (_, c) => /[0-9A-Za-z!#$%&'*+\-/=?^_`{|}~]/.test(String.fromCharCode(c)) ? 1 : 0,
);

/**
 * Appends a display name so that every decoder gives back exactly `name`: atoms when it is
 * words of `atext` separated by single spaces; a quoted string (`"` and `\` escaped) when it is
 * other printable ASCII, tabs and runs of spaces included; otherwise RFC 2047 encoded words,
 * which also carry surrounding whitespace (address parsers trim a quoted string) and what is
 * not printable ASCII. It folds only at single spaces between words (see `segments`); a
 * segment longer than `maxWord` is encoded so that it can fold.
 */
function addDisplayName(folder: HeaderFolder, name: string, maxWord: number): void {
  const n = name.length;
  let encoded = isSpace(name.charCodeAt(0)) || isSpace(name.charCodeAt(n - 1));
  let quoted = false;
  let segment = 0;
  for (let i = 0; i < n && !encoded; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x20 && !isSpace(name.charCodeAt(i - 1)) && !isSpace(name.charCodeAt(i + 1))) {
      segment = 0; // a fold point
      continue;
    }
    if ((c < 0x20 && c !== 0x09) || c > 0x7e) {
      encoded = true;
      break;
    }
    segment += c === 0x22 || c === 0x5c ? 2 : 1;
    encoded = segment > maxWord || (c === 0x3d && name.charCodeAt(i + 1) === 0x3f);
    if (ATEXT[c] === 0) quoted = true;
  }
  if (encoded) {
    folder.addEncoded(" ", name);
    return;
  }
  const text = quoted ? `"${name.replace(/[\\"]/g, "\\$&")}"` : name;
  for (const part of segments(text)) folder.add(" ", part);
}

/** Formats an address header (`From`, `To`, ...), folded between and inside mailboxes. */
export function formatAddresses(name: string, mailboxes: readonly Mailbox[]): string {
  const folder = new HeaderFolder(name);
  // The longest word of a plain display name: one that fits on the first line, after `"`.
  const maxWord = FOLD_WIDTH - name.length - 3;
  mailboxes.forEach((mailbox, index) => {
    const comma = index < mailboxes.length - 1 ? "," : "";
    const address = headerAddress(mailbox.address);
    if (mailbox.name === "") {
      folder.add(" ", address + comma);
      return;
    }
    checkText(`${name} display name`, mailbox.name);
    addDisplayName(folder, mailbox.name, maxWord);
    folder.add(" ", `<${address}>${comma}`);
  });
  return folder.toString();
}

/**
 * Checks a message id and returns it with angle brackets. Accepts `id@domain` or
 * `<id@domain>`; rejects whitespace, line breaks, brackets inside and non-ASCII, and an id too
 * long for a header line (a RangeError).
 */
export function normalizeMessageId(field: string, id: string): string {
  checkHeaderValue(field, id);
  const bare = id.startsWith("<") && id.endsWith(">") ? id.slice(1, -1) : id;
  // `Field: <id>` must fit on one line: a message id cannot fold.
  const max = MAX_LINE_OCTETS - field.length - 4;
  if (bare.length > max) {
    throw new RangeError(
      `Cannot compose message: ${field} is ${bare.length} characters long, more than the ${max} that fit on a header line`,
    );
  }
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

/**
 * True when a parameter value can be written bare: RFC 2045 `token` characters except `'`, `*`
 * and `%`, which parsers read as RFC 2231 syntax (Python's `email` drops `filename=*` and
 * `filename='`).
 */
function isBareValue(text: string): boolean {
  return /^[!#$&+\-.^_`|~0-9A-Za-z]+$/.test(text);
}

/** The length of each byte in an RFC 2231 extended value: 1 for an `attribute-char`, else 3. */
const PERCENT_LENGTH: Uint8Array = Uint8Array.from(
  { length: 256 },
  (_, b) => /[0-9A-Za-z!#$&+\-.^_`|~]/.test(String.fromCharCode(b)) ? 1 : 3,
);
/** `0123456789ABCDEF` as bytes. */
const HEX_DIGITS: Uint8Array = new TextEncoder().encode("0123456789ABCDEF");
const decoder = new TextDecoder();
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
  if (isBareValue(value) && plain.length <= MAX_SIMPLE_PARAMETER) return [plain];
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
