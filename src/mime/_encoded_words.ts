/**
 * RFC 2047 encoded words (`=?UTF-8?B?...?=` and `=?UTF-8?Q?...?=`), cut on character
 * boundaries: a word never ends inside a UTF-8 sequence or between the halves of a surrogate
 * pair, so each word decodes on its own.
 *
 * @module
 */

import { encodeBase64Plain } from "./_base64.ts";

/** The longest encoded word RFC 2047 allows. */
export const MAX_WORD_LENGTH = 75;
/** `=?UTF-8?B?` plus `?=`. */
const OVERHEAD = 12;
/** The shortest room in which any one character fits as an encoded word (4 bytes in Q). */
export const MIN_WORD_ROOM = OVERHEAD + 12;

const encoder = new TextEncoder();
const HEX = "0123456789ABCDEF";

/** `B` (base64) or `Q` (quoted-printable-like) encoding. */
export type WordEncoding = "B" | "Q";

/**
 * Characters that stand for themselves in the Q encoding. This is the set RFC 2047 allows in a
 * `phrase` (section 5, rule 3), the strictest context, so the words fit anywhere.
 */
function isQLiteral(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) ||
    b === 0x21 || b === 0x2a || b === 0x2b || b === 0x2d || b === 0x2f;
}

/** The length of one byte in the Q encoding. */
function qCost(b: number): number {
  return isQLiteral(b) || b === 0x20 ? 1 : 3;
}

/** One character of the text and its UTF-8 bytes. */
interface Char {
  readonly bytes: Uint8Array;
}

/**
 * Text split into characters, ready to be cut into encoded words of any length. Lone
 * surrogates become U+FFFD, as `TextEncoder` does.
 */
export class EncodedWordWriter {
  readonly #chars: Char[] = [];
  readonly #encoding: WordEncoding;
  #next = 0;

  /** @param text The text to encode; its encoding (B or Q) is chosen for the whole text. */
  constructor(text: string) {
    let qLength = 0;
    let bytes = 0;
    for (const char of text) {
      const encoded = encoder.encode(char);
      this.#chars.push({ bytes: encoded });
      bytes += encoded.length;
      for (const b of encoded) qLength += qCost(b);
    }
    this.#encoding = qLength <= Math.ceil(bytes / 3) * 4 ? "Q" : "B";
  }

  /** True when every character has been written. */
  get done(): boolean {
    return this.#next >= this.#chars.length;
  }

  /**
   * Returns the next encoded word, as long as possible but at most `room` characters (and at
   * most 75). `room` must be at least {@linkcode MIN_WORD_ROOM}.
   */
  take(room: number): string {
    const payload = Math.min(room, MAX_WORD_LENGTH) - OVERHEAD;
    return this.#encoding === "B" ? this.#takeB(payload) : this.#takeQ(payload);
  }

  #takeB(payload: number): string {
    const maxBytes = Math.floor(payload / 4) * 3;
    const start = this.#next;
    let size = 0;
    while (this.#next < this.#chars.length) {
      const n = this.#chars[this.#next]!.bytes.length;
      if (size + n > maxBytes) break;
      size += n;
      this.#next++;
    }
    const bytes = new Uint8Array(size);
    let o = 0;
    for (let i = start; i < this.#next; i++) {
      const char = this.#chars[i]!.bytes;
      bytes.set(char, o);
      o += char.length;
    }
    return `=?UTF-8?B?${encodeBase64Plain(bytes)}?=`;
  }

  #takeQ(payload: number): string {
    let text = "";
    while (this.#next < this.#chars.length) {
      const char = this.#chars[this.#next]!.bytes;
      let piece = "";
      for (const b of char) {
        if (b === 0x20) piece += "_";
        else if (isQLiteral(b)) piece += String.fromCharCode(b);
        else piece += "=" + HEX[b >>> 4] + HEX[b & 15];
      }
      if (text.length + piece.length > payload) break;
      text += piece;
      this.#next++;
    }
    return `=?UTF-8?Q?${text}?=`;
  }
}

/**
 * Encodes `text` as encoded words of at most 75 characters each, separated by a space (which
 * decoders drop between adjacent encoded words).
 */
export function encodeWords(text: string): string {
  const writer = new EncodedWordWriter(text);
  const words: string[] = [];
  while (!writer.done) words.push(writer.take(MAX_WORD_LENGTH));
  return words.join(" ");
}
