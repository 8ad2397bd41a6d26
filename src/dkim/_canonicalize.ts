/**
 * RFC 6376 section 3.4 canonicalization: of one header field (a string with one character per
 * byte), and of the body as a stream, in linear time whatever the chunk boundaries, without
 * holding more than a few bytes of state between chunks.
 *
 * @module
 */

/** One half of `c=`: how the header or the body is canonicalized. */
export type Canonicalization = "simple" | "relaxed";

/** Where canonical body bytes go (a hash). */
export interface ByteSink {
  update(bytes: Uint8Array): void;
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const TAB = 0x09;
const CRLF = new Uint8Array([CR, LF]);
const ONE_CR = new Uint8Array([CR]);

/**
 * Canonicalizes one header field, given as it appears in the message (name, colon, value and
 * folding, with its final CRLF), one character per byte.
 *
 * - `simple`: unchanged.
 * - `relaxed`: the name in lower case without whitespace before the colon; the value unfolded,
 *   each run of spaces and tabs made one space, none at its start or end; then CRLF.
 *
 * @param field The field, CRLF included.
 * @param mode The header canonicalization.
 * @returns The canonical field, ending in CRLF.
 */
export function canonicalizeHeader(field: string, mode: Canonicalization): string {
  if (mode === "simple") return field;
  const colon = field.indexOf(":");
  const name = field.slice(0, colon).replace(/[ \t]+$/, "").replace(
    /[A-Z]+/g,
    (upper) => upper.toLowerCase(),
  );
  const value = field.slice(colon + 1).replace(/\r\n/g, "").replace(/[ \t]+/g, " ")
    .replace(/^ /, "").replace(/ $/, "");
  return `${name}:${value}\r\n`;
}

/** Writes CRLFs to `sink` in blocks: a long run of empty lines costs few calls. */
const CRLF_BLOCK = new Uint8Array(8192).map((_, i) => (i % 2 === 0 ? CR : LF));

/**
 * Canonicalizes a message body chunk by chunk into a {@linkcode ByteSink}.
 *
 * - `simple`: the body as it is, except that empty lines at its end are left out, and it ends
 *   with exactly one CRLF (an empty body is one CRLF).
 * - `relaxed`: also, each run of spaces and tabs in a line becomes one space, and none is left
 *   at a line's end; an empty body stays empty (RFC 6376 section 3.4.4, with erratum 1384).
 *
 * Line ends are CRLF (what SMTP delivers); a CR alone is an ordinary byte. The CRLFs of empty
 * lines are held back, as a count, until a byte that is not one follows: only then are they
 * known not to be trailing.
 */
export class BodyCanonicalizer {
  readonly #relaxed: boolean;
  readonly #sink: ByteSink;
  /** CRLFs seen since the last byte of content, not yet written. */
  #pendingCrlfs = 0;
  /** The chunk ended with a CR: whether it starts a CRLF depends on the next byte. */
  #pendingCr = false;
  /** Relaxed: spaces or tabs seen in the line since its last content, not yet written. */
  #pendingSpace = false;
  /** Whether any content was written (relaxed: an empty body stays empty). */
  #written = false;
  /** Relaxed: output of the current chunk, written to the sink in one call. */
  #out = new Uint8Array(0);
  #o = 0;

  /**
   * @param mode The body canonicalization.
   * @param sink Receives the canonical bytes.
   */
  constructor(mode: Canonicalization, sink: ByteSink) {
    this.#relaxed = mode === "relaxed";
    this.#sink = sink;
  }

  /**
   * Canonicalizes the next chunk of the body. A chunk without a space or a tab (base64 lines)
   * comes out of relaxed canonicalization as out of simple, which passes it on uncopied.
   */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (!this.#relaxed) {
      this.#pushSimple(chunk);
    } else if (!this.#pendingSpace && chunk.indexOf(SP) === -1 && chunk.indexOf(TAB) === -1) {
      this.#pushSimple(chunk);
    } else {
      this.#pushRelaxed(chunk);
    }
  }

  /** Ends the body: writes the final CRLF where one is due. */
  end(): void {
    if (this.#relaxed) {
      this.#reserve(2);
      if (this.#pendingCr) this.#content(CR);
      this.#pendingCr = false;
      this.#flush();
      if (this.#written) this.#sink.update(CRLF);
      return;
    }
    if (this.#pendingCr) {
      this.#pendingCr = false;
      this.#writeCrlfs();
      this.#sink.update(ONE_CR);
    }
    this.#sink.update(CRLF);
  }

  /** Writes the held-back CRLFs to the sink. */
  #writeCrlfs(): void {
    let bytes = this.#pendingCrlfs * 2;
    this.#pendingCrlfs = 0;
    while (bytes > 0) {
      const n = Math.min(bytes, CRLF_BLOCK.length);
      this.#sink.update(CRLF_BLOCK.subarray(0, n));
      bytes -= n;
    }
  }

  /**
   * Simple (and relaxed without spaces or tabs): the chunk goes to the sink as it is, less the
   * CRLFs at its end (held back) and the CRLFs held back from before it (written first when
   * content follows).
   */
  #pushSimple(chunk: Uint8Array): void {
    let start = 0;
    if (this.#pendingCr) {
      this.#pendingCr = false;
      if (chunk[0] === LF) {
        this.#pendingCrlfs++;
        start = 1;
      } else {
        this.#writeCrlfs();
        this.#sink.update(ONE_CR);
        this.#written = true;
      }
    }
    let end = chunk.length;
    let endsWithCr = false;
    if (end > start && chunk[end - 1] === CR) {
      endsWithCr = true;
      end--;
    }
    let trailing = 0;
    while (end - start >= 2 && chunk[end - 1] === LF && chunk[end - 2] === CR) {
      trailing++;
      end -= 2;
    }
    if (end > start) {
      this.#writeCrlfs();
      this.#sink.update(chunk.subarray(start, end));
      this.#written = true;
    }
    this.#pendingCrlfs += trailing;
    this.#pendingCr = endsWithCr;
  }

  /** Makes room for `n` more output bytes in the current output buffer. */
  #reserve(n: number): void {
    if (this.#out.length - this.#o >= n) return;
    this.#flush();
    if (this.#out.length < n) this.#out = new Uint8Array(Math.max(n, 64 * 1024));
  }

  #flush(): void {
    if (this.#o > 0) this.#sink.update(this.#out.subarray(0, this.#o));
    this.#o = 0;
  }

  /** Relaxed: one byte of content, after the CRLFs and the space held back before it. */
  #content(byte: number): void {
    if (this.#pendingCrlfs > 0) {
      const bytes = this.#pendingCrlfs * 2;
      this.#pendingCrlfs = 0;
      if (this.#out.length - this.#o >= bytes + 2) {
        for (let i = 0; i < bytes; i += 2) {
          this.#out[this.#o++] = CR;
          this.#out[this.#o++] = LF;
        }
      } else {
        this.#flush();
        this.#pendingCrlfs = bytes / 2;
        this.#writeCrlfs();
      }
    }
    if (this.#pendingSpace) {
      this.#pendingSpace = false;
      this.#out[this.#o++] = SP;
    }
    this.#out[this.#o++] = byte;
    this.#written = true;
  }

  /**
   * Relaxed, in one pass over the chunk with the state in local variables: runs of content
   * between the next space, tab and CR (found by the native `indexOf`, each looked up again only
   * once passed) are copied whole. This is the hot loop: a 500 MB attachment is 680 MB of
   * base64 lines, with one CR per 78 bytes and no space.
   */
  #pushRelaxed(chunk: Uint8Array): void {
    const n = chunk.length;
    // At most: every input byte, a space before each, and the CRLF of a pending CR.
    this.#reserve(2 * n + 4);
    let i = 0;
    if (this.#pendingCr) {
      this.#pendingCr = false;
      if (chunk[0] === LF) {
        this.#pendingCrlfs++;
        this.#pendingSpace = false;
        i = 1;
      } else {
        this.#content(CR);
      }
    }
    const out = this.#out;
    let o = this.#o;
    let crlfs = this.#pendingCrlfs;
    let space = this.#pendingSpace;
    let written = this.#written;
    let nextSp = -2;
    let nextTab = -2;
    let nextCr = -2;
    while (i < n) {
      if (nextSp !== -1 && nextSp < i) nextSp = chunk.indexOf(SP, i);
      if (nextTab !== -1 && nextTab < i) nextTab = chunk.indexOf(TAB, i);
      if (nextCr !== -1 && nextCr < i) nextCr = chunk.indexOf(CR, i);
      let end = n;
      if (nextSp !== -1 && nextSp < end) end = nextSp;
      if (nextTab !== -1 && nextTab < end) end = nextTab;
      if (nextCr !== -1 && nextCr < end) end = nextCr;
      if (end === i) {
        if (chunk[i] !== CR) {
          space = true;
          i++;
          continue;
        }
        if (i + 1 === n) {
          this.#pendingCr = true;
          break;
        }
        if (chunk[i + 1] === LF) {
          crlfs++;
          space = false;
          i += 2;
          continue;
        }
        end = i + 1; // a CR alone is content
      }
      // Content from i to end: the held-back line ends and space go first.
      if (crlfs > 0) {
        if (out.length - o >= crlfs * 2 + (end - i) + 1) {
          for (; crlfs > 0; crlfs--) {
            out[o++] = CR;
            out[o++] = LF;
          }
        } else {
          this.#o = o;
          this.#flush();
          this.#pendingCrlfs = crlfs;
          this.#writeCrlfs();
          crlfs = 0;
          o = 0;
        }
      }
      if (space) {
        out[o++] = SP;
        space = false;
      }
      out.set(chunk.subarray(i, end), o);
      o += end - i;
      written = true;
      i = end;
    }
    this.#o = o;
    this.#pendingCrlfs = crlfs;
    this.#pendingSpace = space;
    this.#written = written;
    this.#flush();
  }
}
