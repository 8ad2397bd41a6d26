/**
 * The mock server's reader of what the client sends: command lines, BDAT chunks of an exact
 * size, and DATA up to its final dot (dot-stuffing removed). One buffer, filled on demand.
 *
 * @module
 */

/** A byte source: one end of a connection. */
export interface ByteSource {
  read(): Promise<Uint8Array | null>;
}

/** A line longer than the limit was read (and skipped up to its end). */
export const LINE_TOO_LONG: unique symbol = Symbol("line too long");

const decoder = new TextDecoder();

/** Reads lines and bytes from a {@linkcode ByteSource}. */
export class LineReader {
  #source: ByteSource;
  #buffer: Uint8Array = new Uint8Array(0);
  #offset = 0;

  constructor(source: ByteSource) {
    this.#source = source;
  }

  /** Reads from another source from now on (after a TLS upgrade). */
  set source(source: ByteSource) {
    this.#source = source;
  }

  /** Bytes received and not read yet. */
  get buffered(): number {
    return this.#buffer.length - this.#offset;
  }

  async #fill(): Promise<boolean> {
    const chunk = await this.#source.read();
    if (chunk === null) return false;
    const rest = this.#buffer.subarray(this.#offset);
    if (rest.length === 0) {
      this.#buffer = chunk;
    } else {
      const joined = new Uint8Array(rest.length + chunk.length);
      joined.set(rest);
      joined.set(chunk, rest.length);
      this.#buffer = joined;
    }
    this.#offset = 0;
    return true;
  }

  /** The next line's bytes with its line end, or `null` at the end of the stream. */
  async #rawLine(): Promise<Uint8Array | null> {
    let searched = this.#offset;
    while (true) {
      const lf = this.#buffer.indexOf(0x0a, searched);
      if (lf !== -1) {
        const line = this.#buffer.subarray(this.#offset, lf + 1);
        this.#offset = lf + 1;
        return line;
      }
      searched = this.#buffer.length;
      const before = this.#offset;
      if (!await this.#fill()) {
        if (this.buffered === 0) return null;
        const rest = this.#buffer.subarray(this.#offset);
        this.#offset = this.#buffer.length;
        return rest;
      }
      searched -= before;
    }
  }

  /**
   * Reads one command line, without its line end.
   *
   * @param maxLength The longest line accepted, in bytes.
   * @returns The line; {@linkcode LINE_TOO_LONG} when it was longer (it is skipped); `null` at
   *   the end of the stream.
   */
  async line(maxLength: number): Promise<string | typeof LINE_TOO_LONG | null> {
    let searched = this.#offset;
    while (true) {
      const lf = this.#buffer.indexOf(0x0a, searched);
      if (lf !== -1) {
        const bytes = this.#buffer.subarray(this.#offset, lf);
        this.#offset = lf + 1;
        if (bytes.length > maxLength + 1) return LINE_TOO_LONG;
        return decoder.decode(bytes).replace(/\r$/, "");
      }
      if (this.buffered > maxLength + 1) {
        // Skip the rest of the overlong line.
        while (true) {
          const line = await this.#rawLine();
          if (line === null || line.at(-1) === 0x0a) return LINE_TOO_LONG;
        }
      }
      searched = this.#buffer.length;
      const before = this.#offset;
      if (!await this.#fill()) return null;
      searched -= before;
    }
  }

  /**
   * Reads exactly `length` bytes (a BDAT chunk).
   *
   * @returns The bytes, or `null` when the stream ended first.
   */
  async bytes(length: number): Promise<Uint8Array | null> {
    while (this.buffered < length) if (!await this.#fill()) return null;
    const bytes = this.#buffer.slice(this.#offset, this.#offset + length);
    this.#offset += length;
    return bytes;
  }

  /**
   * Reads message data up to the line with a single dot, removing dot-stuffing. Keeps at most
   * `maxSize` bytes; the rest is read and dropped.
   *
   * @returns The data (line ends as sent) and whether it was longer than `maxSize`; `null`
   *   when the stream ended first.
   */
  async data(maxSize: number): Promise<{ data: Uint8Array; tooBig: boolean } | null> {
    const parts: Uint8Array[] = [];
    let size = 0;
    let tooBig = false;
    while (true) {
      let line = await this.#rawLine();
      if (line === null || line.at(-1) !== 0x0a) return null;
      if (line[0] === 0x2e) {
        const rest = line.length - 1;
        if (rest === 1 || (rest === 2 && line[1] === 0x0d)) break; // "." CRLF or "." LF
        line = line.subarray(1);
      }
      size += line.length;
      if (size > maxSize) tooBig = true;
      else parts.push(line.slice());
    }
    const data = new Uint8Array(tooBig ? 0 : size);
    if (!tooBig) {
      let offset = 0;
      for (const part of parts) {
        data.set(part, offset);
        offset += part.length;
      }
    }
    return { data, tooBig };
  }
}
