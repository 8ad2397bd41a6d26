/**
 * Bytes received and not yet consumed, for the test servers and clients that read lines and
 * byte counts off a socket.
 */

const decoder = new TextDecoder();

/** A growing buffer of received bytes, read from the front. */
export class ByteBuffer {
  #bytes = new Uint8Array(0);

  /** Bytes held. */
  get length(): number {
    return this.#bytes.length;
  }

  /** The bytes held, without taking them. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** Appends received bytes. */
  append(chunk: Uint8Array): void {
    const joined = new Uint8Array(this.#bytes.length + chunk.length);
    joined.set(this.#bytes);
    joined.set(chunk, this.#bytes.length);
    this.#bytes = joined;
  }

  /** Takes one line without its CRLF (or LF); `undefined` until a whole line is held. */
  takeLine(): string | undefined {
    const lf = this.#bytes.indexOf(0x0a);
    if (lf === -1) return undefined;
    const line = decoder.decode(this.#bytes.subarray(0, lf)).replace(/\r$/, "");
    this.#bytes = this.#bytes.slice(lf + 1);
    return line;
  }

  /** Takes the first `n` bytes (all of them when fewer are held). */
  take(n: number): Uint8Array {
    const taken = this.#bytes.slice(0, n);
    this.#bytes = this.#bytes.slice(n);
    return taken;
  }
}

/** Reads one chunk of at most 64 KiB from `conn`; `null` when it ended or failed. */
export async function readChunk(conn: Deno.Conn): Promise<Uint8Array | null> {
  const chunk = new Uint8Array(64 * 1024);
  const n = await conn.read(chunk).catch(() => null);
  return n === null ? null : chunk.subarray(0, n);
}
