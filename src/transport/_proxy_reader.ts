/**
 * Reads a proxy's answer off a connection exactly: what follows the answer stays for the SMTP
 * session. Failures name the proxy and the step.
 *
 * @module
 */

import { SmtpConnectionError } from "../errors.ts";
import type { Connection } from "./types.ts";

/** A proxy as errors name it: scheme, host and port, never credentials. */
export interface ProxyName {
  /** e.g. `socks5://127.0.0.1:1080`. */
  readonly display: string;
}

/** Throws the error for a proxy that failed during `step`. */
export function proxyError(
  proxy: ProxyName,
  message: string,
  cause?: unknown,
): SmtpConnectionError {
  return new SmtpConnectionError(
    `Proxy ${proxy.display}: ${message}`,
    "connect",
    cause === undefined ? undefined : { cause },
  );
}

/** Printable ASCII only, at most `max` characters: safe to put a proxy's words in a message. */
export function printable(bytes: Uint8Array, max = 200): string {
  let text = "";
  for (const byte of bytes.subarray(0, max)) {
    text += byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : "?";
  }
  return bytes.length > max ? `${text}...` : text;
}

/** Buffered reads of a proxy's answer, bounded by the caller's signal. */
export class ProxyReader {
  #connection: Connection;
  #proxy: ProxyName;
  #signal: AbortSignal | undefined;
  #buffer = new Uint8Array(0);

  constructor(connection: Connection, proxy: ProxyName, signal: AbortSignal | undefined) {
    this.#connection = connection;
    this.#proxy = proxy;
    this.#signal = signal;
  }

  /** Reads one more chunk; throws naming `step` when the proxy closed the connection. */
  async #fill(step: string): Promise<void> {
    let chunk: Uint8Array | null;
    try {
      chunk = await this.#connection.read(this.#signal);
    } catch (error) {
      if (this.#signal?.aborted) throw this.#signal.reason;
      throw proxyError(
        this.#proxy,
        `connection lost during ${step}: ${error instanceof Error ? error.message : error}`,
        error,
      );
    }
    if (chunk === null) {
      const got = this.#buffer.length ? ` after ${this.#buffer.length} bytes of it` : "";
      throw proxyError(this.#proxy, `closed the connection during ${step}${got}`);
    }
    const joined = new Uint8Array(this.#buffer.length + chunk.length);
    joined.set(this.#buffer);
    joined.set(chunk, this.#buffer.length);
    this.#buffer = joined;
  }

  /** Exactly `n` bytes. */
  async take(n: number, step: string): Promise<Uint8Array> {
    while (this.#buffer.length < n) await this.#fill(step);
    const bytes = this.#buffer.slice(0, n);
    this.#buffer = this.#buffer.slice(n);
    return bytes;
  }

  /** The bytes up to and including the first CRLF CRLF, at most `limit` of them. */
  async headers(limit: number, step: string): Promise<Uint8Array> {
    let from = 0;
    while (true) {
      for (let i = Math.max(0, from - 3); i + 3 < this.#buffer.length; i++) {
        if (
          this.#buffer[i] === 13 && this.#buffer[i + 1] === 10 && this.#buffer[i + 2] === 13 &&
          this.#buffer[i + 3] === 10
        ) {
          return await this.take(i + 4, step);
        }
      }
      from = this.#buffer.length;
      if (from > limit) {
        throw proxyError(this.#proxy, `answer to ${step} is longer than ${limit} bytes`);
      }
      await this.#fill(step);
    }
  }

  /** What arrived after the answer: the first bytes of the tunnel. */
  rest(): Uint8Array {
    const rest = this.#buffer;
    this.#buffer = new Uint8Array(0);
    return rest;
  }
}
