/**
 * Quoted-printable (RFC 2045 section 6.7) as a streaming encoder over bytes.
 *
 * Rules: printable ASCII except `=` goes as is; everything else as `=XX`; CRLF is a hard line
 * break and goes as is; a bare CR or LF is encoded; a space or tab that ends a line (or the
 * data) is encoded; lines are at most 76 characters, soft breaks (`=` CRLF) are placed between
 * tokens so that an `=XX` escape is never split.
 *
 * @module
 */

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const TAB = 0x09;
const EQ = 0x3d;
const HEX = new TextEncoder().encode("0123456789ABCDEF");

/** Characters before a soft break: 75 plus the `=` makes the 76 that RFC 2045 allows. */
const MAX_COLUMN = 75;

/** True for bytes that may stand for themselves (printable ASCII other than `=`). */
function isLiteral(b: number): boolean {
  return b > SP && b < 0x7f && b !== EQ;
}

/**
 * A streaming quoted-printable encoder. It holds back a trailing space or tab and a CR until it
 * sees the next byte, so chunk boundaries do not change the output.
 */
export class QuotedPrintableEncoder {
  #column = 0;
  #pendingSpace = -1;
  #pendingCR = false;
  #out: Uint8Array = new Uint8Array(0);
  #o = 0;

  /** Encodes `chunk` and returns what can be written now. */
  push(chunk: Uint8Array): Uint8Array {
    this.#reserve(chunk.length);
    for (let i = 0; i < chunk.length; i++) this.#byte(chunk[i]!);
    return this.#take();
  }

  /** Encodes what was held back and resets the encoder. */
  end(): Uint8Array {
    this.#reserve(0);
    if (this.#pendingCR) {
      this.#pendingCR = false;
      this.#flushSpace(false);
      this.#escape(CR);
    } else {
      this.#flushSpace(true);
    }
    const out = this.#take();
    this.#column = 0;
    return out;
  }

  #reserve(n: number): void {
    // At most 3 characters per byte, plus a soft break (3 bytes) every 25 escapes, plus what
    // is held back.
    this.#out = new Uint8Array(Math.ceil(n * 3.4) + 16);
    this.#o = 0;
  }

  #take(): Uint8Array {
    return this.#out.subarray(0, this.#o);
  }

  #byte(b: number): void {
    if (this.#pendingCR) {
      this.#pendingCR = false;
      if (b === LF) {
        this.#flushSpace(true);
        this.#out[this.#o++] = CR;
        this.#out[this.#o++] = LF;
        this.#column = 0;
        return;
      }
      this.#flushSpace(false);
      this.#escape(CR);
    }
    if (isLiteral(b)) {
      if (this.#pendingSpace >= 0) this.#flushSpace(false);
      if (this.#column >= MAX_COLUMN) this.#softBreak();
      this.#out[this.#o++] = b;
      this.#column++;
    } else if (b === SP || b === TAB) {
      if (this.#pendingSpace >= 0) this.#flushSpace(false);
      this.#pendingSpace = b;
    } else if (b === CR) {
      this.#pendingCR = true;
    } else {
      this.#flushSpace(false);
      this.#escape(b);
    }
  }

  /** Writes a held-back space or tab: encoded when it ends a line, else as is. */
  #flushSpace(atLineEnd: boolean): void {
    const b = this.#pendingSpace;
    if (b < 0) return;
    this.#pendingSpace = -1;
    if (atLineEnd) {
      this.#escape(b);
    } else {
      if (this.#column >= MAX_COLUMN) this.#softBreak();
      this.#out[this.#o++] = b;
      this.#column++;
    }
  }

  #escape(b: number): void {
    if (this.#column + 3 > MAX_COLUMN) this.#softBreak();
    const out = this.#out;
    out[this.#o] = EQ;
    out[this.#o + 1] = HEX[b >>> 4]!;
    out[this.#o + 2] = HEX[b & 15]!;
    this.#o += 3;
    this.#column += 3;
  }

  #softBreak(): void {
    this.#out[this.#o++] = EQ;
    this.#out[this.#o++] = CR;
    this.#out[this.#o++] = LF;
    this.#column = 0;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Encodes bytes (or the UTF-8 bytes of a string) as quoted-printable (RFC 2045). CRLF in the
 * input is kept as a line break; a bare CR or LF is encoded as `=0D` / `=0A`.
 *
 * @param data The bytes to encode; a string is encoded as UTF-8 first.
 * @returns The encoded text; no line is longer than 76 characters.
 *
 * @example Encode non-ASCII text
 * ```ts
 * import { encodeQuotedPrintable } from "@postie/smtp/mime";
 * import assert from "node:assert/strict";
 *
 * assert.equal(encodeQuotedPrintable("Grüße = hi \r\nbye"), "Gr=C3=BC=C3=9Fe =3D hi=20\r\nbye");
 * ```
 */
export function encodeQuotedPrintable(data: Uint8Array | string): string {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  const qp = new QuotedPrintableEncoder();
  const head = qp.push(bytes);
  const tail = qp.end();
  return decoder.decode(head) + decoder.decode(tail);
}

/**
 * A `TransformStream` that quoted-printable-encodes bytes (RFC 2045), keeping its state across
 * chunk boundaries, so the output is the same however the input is split.
 *
 * @example Encode a stream
 * ```ts
 * import { QuotedPrintableEncoderStream } from "@postie/smtp/mime";
 * import assert from "node:assert/strict";
 *
 * const input = ReadableStream.from([new TextEncoder().encode("caf"), new TextEncoder().encode("é ")]);
 * const text = await new Response(input.pipeThrough(new QuotedPrintableEncoderStream())).text();
 * assert.equal(text, "caf=C3=A9=20");
 * ```
 */
export class QuotedPrintableEncoderStream extends TransformStream<Uint8Array, Uint8Array> {
  /** Creates the stream. */
  constructor() {
    const qp = new QuotedPrintableEncoder();
    super({
      transform(chunk, controller) {
        const out = qp.push(chunk);
        if (out.length > 0) controller.enqueue(out);
      },
      flush(controller) {
        const out = qp.end();
        if (out.length > 0) controller.enqueue(out);
      },
    });
  }
}
