/**
 * The checks of one address: its local part (dot-atom or quoted string), its domain (labels,
 * lengths, IDN), and no line break of any kind, in linear time; valid addresses are split once
 * and cached.
 *
 * @module
 */

import { isAscii, utf8Length } from "./_text.ts";

/** RFC 5321 limits, in octets. */
const MAX_LOCAL_OCTETS = 64;

const MAX_DOMAIN_OCTETS = 255;

const MAX_LABEL_OCTETS = 63;

/** `JSON.stringify`, with the Unicode line breaks it leaves raw escaped as well. */
export function quote(text: string): string {
  return JSON.stringify(text).replace(
    UNICODE_LINE_BREAK_G,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR: line breaks to a receiver that decodes UTF-8
 * before it splits lines, so an address carrying one could end a command or a header early.
 */
const UNICODE_LINE_BREAK = /[\u0085\u2028\u2029]/;

const UNICODE_LINE_BREAK_G = /[\u0085\u2028\u2029]/g;

export function invalid(input: string, reason: string): TypeError {
  return new TypeError(`Invalid address ${quote(input)}: ${reason}`);
}

/** CR, LF or NUL. */
const LINE_BREAK_OR_NUL = /[\r\n\0]/;

/** Throws when `text` contains CR, LF or NUL (header injection). */
export function assertSingleLine(text: string, original: string, what: string): void {
  // A regular expression runs as machine code from its first use, a loop here does not: this
  // check runs for every address of every message.
  if (!LINE_BREAK_OR_NUL.test(text)) return;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0d || c === 0x0a) throw invalid(original, `${what} contains a line break`);
    if (c === 0) throw invalid(original, `${what} contains a NUL character`);
  }
}

/** RFC 5322 atext, plus any non-ASCII character (RFC 6532). */
export function isAtext(c: number): boolean {
  if (c >= 0x80) return c >= 0xa0; // not C1 controls
  if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) {
    return true;
  }
  return "!#$%&'*+-/=?^_`{|}~".includes(String.fromCharCode(c));
}

/** Valid addresses seen recently, split: bulk mail repeats the same sender on every message. */
const splitCache = new Map<string, { readonly local: string; readonly domain: string }>();

const SPLIT_CACHE_SIZE = 1024;

/** Splits an address into local part and domain and checks both; `original` is for errors. */
export function splitAddress(address: string, original: string): { local: string; domain: string } {
  const known = splitCache.get(address);
  if (known) return known;
  const split = checkAndSplitAddress(address, original);
  if (splitCache.size >= SPLIT_CACHE_SIZE) splitCache.clear();
  splitCache.set(address, split);
  return split;
}

function checkAndSplitAddress(
  address: string,
  original: string,
): { local: string; domain: string } {
  if (address === "") throw invalid(original, "empty address");
  const lineBreak = UNICODE_LINE_BREAK.exec(address);
  if (lineBreak) {
    const code = lineBreak[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0");
    throw invalid(original, `address contains a line break (U+${code})`);
  }
  let at: number;
  if (address.startsWith('"')) {
    let i = 1;
    for (; i < address.length; i++) {
      const c = address.charCodeAt(i);
      if (c === 0x5c) {
        i++;
        const escaped = address.charCodeAt(i);
        if (!(escaped >= 0x20 && escaped !== 0x7f)) {
          throw invalid(original, "bad escape in quoted local part");
        }
      } else if (c === 0x22) {
        break;
      } else if (c < 0x20 || c === 0x7f) {
        throw invalid(original, "control character in quoted local part");
      }
    }
    if (i >= address.length) throw invalid(original, "unterminated quoted local part");
    at = i + 1;
    if (at >= address.length || address[at] !== "@") {
      throw invalid(original, address.includes("@") ? "text after quoted local part" : "missing @");
    }
    if (at === 2) throw invalid(original, "empty local part");
  } else {
    at = address.lastIndexOf("@");
    if (at < 0) throw invalid(original, "missing @");
    if (at === 0) throw invalid(original, "empty local part");
    checkDotAtom(address.slice(0, at), original, "local part");
  }
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (utf8Length(local) > MAX_LOCAL_OCTETS) {
    throw invalid(original, `local part is longer than ${MAX_LOCAL_OCTETS} octets`);
  }
  checkDomain(domain, original);
  return { local, domain };
}

function checkDotAtom(text: string, original: string, what: string): void {
  if (text.startsWith(".") || text.endsWith(".") || text.includes("..")) {
    throw invalid(original, `${what} has an empty dot-separated part`);
  }
  for (const char of text) {
    const c = char.codePointAt(0)!;
    if (c !== 0x2e && !isAtext(c)) {
      throw invalid(original, `${what} contains ${quote(char)}`);
    }
  }
}

function checkDomain(domain: string, original: string): void {
  if (domain === "") throw invalid(original, "empty domain");
  if (utf8Length(domain) > MAX_DOMAIN_OCTETS) {
    throw invalid(original, `domain is longer than ${MAX_DOMAIN_OCTETS} octets`);
  }
  if (domain.startsWith("[")) {
    if (!domain.endsWith("]") || domain.length < 3) {
      throw invalid(original, "unterminated domain literal");
    }
    for (let i = 1; i < domain.length - 1; i++) {
      const c = domain.charCodeAt(i);
      if (c <= 0x20 || c >= 0x7f || c === 0x5b || c === 0x5c || c === 0x5d) {
        throw invalid(original, `domain literal contains ${quote(domain[i]!)}`);
      }
    }
    return;
  }
  const labels = domain.split(".");
  for (const label of labels) {
    if (label === "") throw invalid(original, "domain has an empty label");
    for (const char of label) {
      const c = char.codePointAt(0)!;
      const ok = c >= 0xa0 || c === 0x2d || c === 0x5f || (c >= 0x30 && c <= 0x39) ||
        (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
      if (!ok) throw invalid(original, `domain contains ${quote(char)}`);
    }
    if (isAscii(label) && label.length > MAX_LABEL_OCTETS) {
      throw invalid(original, `domain label is longer than ${MAX_LABEL_OCTETS} octets`);
    }
  }
  if (!isAscii(domain)) toAsciiDomain(domain, original);
}

/** Converts an internationalised domain to its ASCII (punycode) form. */
export function toAsciiDomain(domain: string, original: string): string {
  let ascii: string;
  try {
    ascii = new URL(`http://${domain}`).hostname;
  } catch (error) {
    throw new TypeError(
      `Invalid address ${quote(original)}: domain is not a valid internationalised domain name`,
      { cause: error },
    );
  }
  if (ascii.length > MAX_DOMAIN_OCTETS || ascii.split(".").some((l) => l.length > 63)) {
    throw invalid(original, "domain is too long once converted to ASCII");
  }
  return ascii;
}
