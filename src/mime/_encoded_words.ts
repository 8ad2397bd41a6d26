/**
 * RFC 2047 encoded words (`=?UTF-8?B?...?=` and `=?UTF-8?Q?...?=`), cut on character
 * boundaries: a word never ends inside a UTF-8 sequence or between the halves of a surrogate
 * pair, so each word decodes on its own.
 *
 * @module
 */

import { encodeBase64Plain } from "./base64.ts";

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

/** The length of the UTF-8 sequence that starts with `lead`. */
export function sequenceLength(lead: number): number {
  return lead < 0x80 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
}

/**
 * Text as UTF-8, ready to be cut into encoded words of any length, on character boundaries.
 * Lone surrogates become U+FFFD, as `TextEncoder` does.
 */
export class EncodedWordWriter {
  readonly #bytes: Uint8Array;
  readonly #encoding: WordEncoding;
  #next = 0;

  /** @param text The text to encode; its encoding (B or Q) is chosen for the whole text. */
  constructor(text: string) {
    this.#bytes = encoder.encode(text);
    let qLength = 0;
    for (const b of this.#bytes) qLength += qCost(b);
    this.#encoding = qLength <= Math.ceil(this.#bytes.length / 3) * 4 ? "Q" : "B";
  }

  /** True when every character has been written. */
  get done(): boolean {
    return this.#next >= this.#bytes.length;
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
    const bytes = this.#bytes;
    const limit = this.#next + Math.floor(payload / 4) * 3;
    const start = this.#next;
    let end = start;
    while (end < bytes.length) {
      const next = end + sequenceLength(bytes[end]!);
      if (next > limit) break;
      end = next;
    }
    this.#next = end;
    return `=?UTF-8?B?${encodeBase64Plain(bytes.subarray(start, end))}?=`;
  }

  #takeQ(payload: number): string {
    const bytes = this.#bytes;
    let text = "";
    let end = this.#next;
    while (end < bytes.length) {
      const next = end + sequenceLength(bytes[end]!);
      let cost = 0;
      for (let i = end; i < next; i++) cost += qCost(bytes[i]!);
      if (text.length + cost > payload) break;
      for (let i = end; i < next; i++) {
        const b = bytes[i]!;
        if (b === 0x20) text += "_";
        else if (isQLiteral(b)) text += String.fromCharCode(b);
        else text += "=" + HEX[b >>> 4] + HEX[b & 15];
      }
      end = next;
    }
    this.#next = end;
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
