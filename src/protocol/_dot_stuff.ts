/**
 * CRLF normalisation and dot-stuffing for the DATA command, as a small state machine that keeps
 * its state across chunk boundaries and runs in linear time.
 *
 * @module
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const END_OF_DATA = new Uint8Array([DOT, CR, LF]);
const ONE_DOT = new Uint8Array([DOT]);

/**
 * Turns message bytes into what goes on the wire: every line end becomes CRLF (bare LF and bare
 * CR included) and, when `dotStuffing` is on, a `.` that starts a line is doubled (RFC 5321
 * section 4.5.2). {@linkcode DataEncoder.finish} returns the end-of-data mark.
 *
 * Input known to end every line with CRLF already (what the MIME composer writes) takes a fast
 * path: no line is looked at, only dots are searched for, and chunks without a dot to double
 * pass through uncopied.
 */
export class DataEncoder {
  readonly #dotStuffing: boolean;
  readonly #keepLineEnds: boolean;
  readonly #binary: boolean;
  #lineStart = true;
  #pendingCR = false;

  /**
   * @param dotStuffing True for DATA, false for BDAT (which only needs CRLF line ends).
   * @param keepLineEnds True to leave line ends as they are: the input's lines end in CRLF
   *   already, or the input is binary MIME (BDAT only).
   * @param binary True for binary MIME (BDAT only): the bytes go exactly as given, without
   *   the final CRLF that every other message gets when it lacks one.
   */
  constructor(dotStuffing: boolean, keepLineEnds = false, binary = false) {
    this.#dotStuffing = dotStuffing;
    this.#keepLineEnds = keepLineEnds || binary;
    this.#binary = binary;
  }

  /** Encodes one chunk. The result may be the input itself when nothing needed changing. */
  push(chunk: Uint8Array): Uint8Array {
    const n = chunk.length;
    if (n === 0) return chunk;
    if (this.#keepLineEnds) {
      if (this.#dotStuffing) return this.#stuffDots(chunk);
      this.#lineStart = chunk[n - 1] === LF;
      return chunk;
    }
    const out = new Uint8Array(n * 2 + 2);
    let o = 0;
    let i = 0;
    if (this.#pendingCR) {
      this.#pendingCR = false;
      out[o++] = CR;
      out[o++] = LF;
      if (chunk[0] === LF) i = 1;
      this.#lineStart = true;
    }
    let nextLF = -2;
    let nextCR = -2;
    while (i < n) {
      if (this.#lineStart) {
        this.#lineStart = false;
        if (this.#dotStuffing && chunk[i] === DOT) out[o++] = DOT;
      }
      if (nextLF !== -1 && nextLF < i) nextLF = chunk.indexOf(LF, i);
      if (nextCR !== -1 && nextCR < i) nextCR = chunk.indexOf(CR, i);
      const stop = Math.min(nextLF === -1 ? n : nextLF, nextCR === -1 ? n : nextCR);
      if (stop > i) {
        out.set(chunk.subarray(i, stop), o);
        o += stop - i;
      }
      if (stop === n) break;
      if (chunk[stop] === CR) {
        if (stop + 1 === n) {
          this.#pendingCR = true;
          break;
        }
        i = chunk[stop + 1] === LF ? stop + 2 : stop + 1;
      } else {
        i = stop + 1;
      }
      out[o++] = CR;
      out[o++] = LF;
      this.#lineStart = true;
    }
    return o === n && !this.#pendingCR ? chunk : out.subarray(0, o);
  }

  /** Doubles every dot that starts a line, in input whose line ends are CRLF already. */
  #stuffDots(chunk: Uint8Array): Uint8Array {
    let parts: Uint8Array[] | undefined;
    let from = 0;
    let doubled = 0;
    for (let p = chunk.indexOf(DOT); p !== -1; p = chunk.indexOf(DOT, p + 1)) {
      if (p === 0 ? !this.#lineStart : chunk[p - 1] !== LF) continue;
      (parts ??= []).push(chunk.subarray(from, p), ONE_DOT);
      from = p;
      doubled++;
    }
    this.#lineStart = chunk[chunk.length - 1] === LF;
    if (!parts) return chunk;
    parts.push(chunk.subarray(from));
    const out = new Uint8Array(chunk.length + doubled);
    let o = 0;
    for (const part of parts) {
      out.set(part, o);
      o += part.length;
    }
    return out;
  }

  /**
   * Ends the message: completes a pending line end, adds the CRLF that ends the last line when
   * the message did not end with one (so that DATA and BDAT deliver the same message; not for
   * binary MIME) and, for DATA, returns the `.` line.
   */
  finish(): Uint8Array {
    const tail: number[] = [];
    if (this.#pendingCR) {
      this.#pendingCR = false;
      tail.push(CR, LF);
      this.#lineStart = true;
    }
    if (!this.#lineStart && !this.#binary) tail.push(CR, LF);
    if (!this.#dotStuffing) return new Uint8Array(tail);
    if (tail.length === 0) return END_OF_DATA.slice();
    return new Uint8Array([...tail, ...END_OF_DATA]);
  }
}
