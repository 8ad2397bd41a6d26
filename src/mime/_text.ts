/**
 * Text bodies: CRLF line ends and the choice of transfer encoding (7bit, 8bit or
 * quoted-printable) so that no line over 998 octets and no bare CR or LF leaves unencoded.
 *
 * @module
 */

import { QuotedPrintableEncoder } from "./quoted_printable.ts";
import { MAX_LINE_OCTETS } from "./_fold.ts";

const encoder = new TextEncoder();

/** A text body in its transfer encoding. */
export interface EncodedText {
  readonly encoding: "7bit" | "8bit" | "quoted-printable";
  readonly bytes: Uint8Array;
}

/** A character outside ASCII. */
const NON_ASCII = /[\u0080-\uffff]/;

/** NUL, or a character outside ASCII. */
const NUL_OR_NON_ASCII = /[\0\u0080-\uffff]/;
/** A line of more than `MAX_LINE_OCTETS` characters. */
const LONG_ASCII_LINE = new RegExp(`[^\r\n]{${MAX_LINE_OCTETS + 1}}`);

/** Whether `text` is ASCII: UTF-8 writes it one byte per character, each below 0x80. */
export function isAscii(text: string): boolean {
  return !NON_ASCII.test(text);
}

/** The UTF-8 length of `text`, without encoding it (a lone surrogate counts as U+FFFD). */
export function utf8Length(text: string): number {
  let n = text.length;
  if (isAscii(text)) return n;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      n += 1;
    } else if (c <= 0xdbff && c >= 0xd800 && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // a surrogate pair: 4 bytes for 2 code units
      i++;
    } else {
      n += 2; // 3 bytes, U+FFFD for a lone surrogate included
    }
  }
  return n;
}

/** Turns every line end (CRLF, bare CR, bare LF) into CRLF. */
export function normalizeLineEnds(text: string): string {
  return text.replace(/\r\n|\r|\n/g, "\r\n");
}

/**
 * Encodes text as UTF-8 with CRLF line ends and picks its transfer encoding: `7bit` for ASCII
 * with short lines, `8bit` for UTF-8 with short lines when `allow8bit`, otherwise
 * quoted-printable. A NUL byte always forces quoted-printable.
 */
export function encodeText(text: string, allow8bit: boolean): EncodedText {
  const normalized = normalizeLineEnds(text);
  const bytes = encoder.encode(normalized);
  // ASCII without NUL, and no line over the limit (ASCII: one byte per character): 7bit, known
  // without looking at each byte.
  if (
    !NUL_OR_NON_ASCII.test(normalized) &&
    (normalized.length <= MAX_LINE_OCTETS || !LONG_ASCII_LINE.test(normalized))
  ) {
    return { encoding: "7bit", bytes };
  }
  let eightBit = false;
  let nul = false;
  let longest = 0;
  let lineStart = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x0a) {
      longest = Math.max(longest, i - 1 - lineStart);
      lineStart = i + 1;
    } else if (b >= 0x80) {
      eightBit = true;
    } else if (b === 0) {
      nul = true;
    }
  }
  longest = Math.max(longest, bytes.length - lineStart);
  if (!nul && longest <= MAX_LINE_OCTETS) {
    if (!eightBit) return { encoding: "7bit", bytes };
    if (allow8bit) return { encoding: "8bit", bytes };
  }
  const qp = new QuotedPrintableEncoder();
  const head = qp.push(bytes);
  const tail = qp.end();
  const out = new Uint8Array(head.length + tail.length);
  out.set(head);
  out.set(tail, head.length);
  return { encoding: "quoted-printable", bytes: out };
}
