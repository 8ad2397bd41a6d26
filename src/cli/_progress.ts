/**
 * A progress bar for large messages: a transport wrapper that counts the bytes written to the
 * server, and a line on standard error redrawn at most ten times a second.
 *
 * @module
 */

import type { Connection, TlsInfo, Transport } from "../transport/types.ts";

/** Messages smaller than this (estimated) get no progress bar. */
export const PROGRESS_THRESHOLD = 1024 * 1024;

/** Formats a byte count for people: `512 B`, `3.4 kB`, `12.0 MB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(1)} kB`;
  if (bytes < 1_000_000_000) return `${(bytes / 1_000_000).toFixed(1)} MB`;
  return `${(bytes / 1_000_000_000).toFixed(2)} GB`;
}

/**
 * The size of a composed message, estimated from its parts: base64 turns 3 bytes into 4 and
 * adds CRLF every 76 characters; text and headers add a little.
 *
 * @param attachmentBytes The sizes of the attached files.
 * @param textChars The length of the text and HTML bodies and headers, in UTF-16 units.
 * @returns The estimated size in bytes.
 */
export function estimateMessageSize(attachmentBytes: readonly number[], textChars: number): number {
  const base64 = (n: number) => Math.ceil(n / 3) * 4 * 78 / 76;
  return Math.round(
    attachmentBytes.reduce((sum, n) => sum + base64(n) + 300, 0) + textChars * 1.1 + 1000,
  );
}

/** Where the bar is drawn. */
export interface ProgressSink {
  /** Redraws the bar line (the caller adds the carriage return). */
  draw(line: string): void;
  /** Ends the bar: the line stays as is and the next output starts on a new line. */
  finish(line: string): void;
}

/**
 * A progress display that counts bytes against an estimated `total`.
 *
 * @param total The estimated size in bytes.
 * @param sink Where to draw.
 * @param width The bar's width in characters.
 * @returns `add(n)` for each chunk sent, and `done(ok)` to draw the final line.
 */
export function progressBar(
  total: number,
  sink: ProgressSink,
  width = 30,
): { add(bytes: number): void; done(ok: boolean): void } {
  let sent = 0;
  let lastDraw = 0;
  let finished = false;
  const line = (final: boolean) => {
    const fraction = final ? 1 : Math.min(sent / Math.max(total, 1), 0.99);
    const filled = Math.round(fraction * width);
    const percent = String(Math.floor(fraction * 100)).padStart(3);
    const size = final ? formatBytes(sent) : `${formatBytes(sent)} of ~${formatBytes(total)}`;
    return `Sending [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${percent}% ${size}`;
  };
  return {
    add(bytes: number) {
      if (finished) return;
      sent += bytes;
      const now = Date.now();
      // Commands before the data are a few hundred bytes: start the bar with the data.
      if (sent >= 65536 && now - lastDraw >= 100) {
        lastDraw = now;
        sink.draw(line(false));
      }
    },
    done(ok: boolean) {
      if (finished) return;
      finished = true;
      if (sent === 0) return;
      sink.finish(ok ? line(true) : `${line(false)} (stopped)`);
    },
  };
}

/** A connection that reports every byte written, then passes it on. */
class CountingConnection implements Connection {
  readonly inner: Connection;
  readonly tls?: TlsInfo;
  readonly localAddress?: string;
  #onWrite: (bytes: number) => void;

  constructor(inner: Connection, onWrite: (bytes: number) => void) {
    this.inner = inner;
    this.#onWrite = onWrite;
    if (inner.tls) this.tls = inner.tls;
    if (inner.localAddress !== undefined) this.localAddress = inner.localAddress;
  }

  get closed(): boolean {
    return this.inner.closed;
  }

  read(signal?: AbortSignal): Promise<Uint8Array | null> {
    return this.inner.read(signal);
  }

  async write(data: Uint8Array, signal?: AbortSignal): Promise<void> {
    await this.inner.write(data, signal);
    this.#onWrite(data.byteLength);
  }

  close(): void {
    this.inner.close();
  }
}

/**
 * Wraps a transport so that every byte written to the server is reported: the progress of a
 * message measured where it leaves, whatever the client did to it (8BITMIME, dot-stuffing).
 *
 * @param inner The runtime's transport.
 * @param onWrite Called after each write with its size.
 * @returns The counting transport.
 */
export function countingTransport(
  inner: Transport,
  onWrite: (bytes: number) => void,
): Transport {
  const unwrap = (c: Connection) => c instanceof CountingConnection ? c.inner : c;
  return {
    connect: async (options) => new CountingConnection(await inner.connect(options), onWrite),
    connectTls: async (options) => new CountingConnection(await inner.connectTls(options), onWrite),
    startTls: async (connection, options) =>
      new CountingConnection(await inner.startTls(unwrap(connection), options), onWrite),
    ...(inner.hostname ? { hostname: () => inner.hostname!() } : {}),
  };
}
