/**
 * The inside of {@linkcode MemoryTransport}: two byte queues joined into a pair, the client's
 * {@linkcode Connection} end and the {@linkcode MemoryPeer} end.
 *
 * @module
 */

import { SmtpConnectionError } from "../errors.ts";
import { concat } from "../_bytes.ts";
import { bytesBeforeHandshake } from "../transport/_race.ts";
import type { Connection, ConnectOptions, TlsInfo } from "../transport/types.ts";
import type { MemoryPeer, MemoryTransport } from "./memory_transport.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One direction of a pair: chunks in the order written, one reader at a time, then the end. */
class Pipe {
  #chunks: Uint8Array[] = [];
  #ended = false;
  #waiter: ((chunk: Uint8Array | null) => void) | undefined;

  /** Bytes written and not yet read. */
  get buffered(): number {
    return this.#chunks.reduce((n, chunk) => n + chunk.length, 0);
  }

  get ended(): boolean {
    return this.#ended;
  }

  push(chunk: Uint8Array): void {
    if (this.#ended || chunk.length === 0) return;
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter(chunk);
    } else {
      this.#chunks.push(chunk);
    }
  }

  /** Puts back the unread rest of a chunk, to be read first. */
  unshift(chunk: Uint8Array): void {
    if (chunk.length > 0) this.#chunks.unshift(chunk);
  }

  /** No more chunks: readers get what is queued, then `null`. */
  end(): void {
    this.#ended = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.(null);
  }

  /** Ends and forgets what was queued (the reading side closed). */
  discard(): void {
    this.#chunks = [];
    this.end();
  }

  read(signal?: AbortSignal, onAbort?: () => void): Promise<Uint8Array | null> {
    const chunk = this.#chunks.shift();
    if (chunk) return Promise.resolve(chunk);
    if (this.#ended) return Promise.resolve(null);
    if (this.#waiter) return Promise.reject(new TypeError("Cannot read: another read is pending"));
    if (signal?.aborted) {
      onAbort?.();
      return Promise.reject(signal.reason);
    }
    return new Promise<Uint8Array | null>((resolve, reject) => {
      const abort = () => {
        if (this.#waiter === settle) this.#waiter = undefined;
        onAbort?.();
        reject(signal!.reason);
      };
      const settle = (value: Uint8Array | null) => {
        signal?.removeEventListener("abort", abort);
        resolve(value);
      };
      this.#waiter = settle;
      signal?.addEventListener("abort", abort, { once: true });
    });
  }
}

/** The state both ends of one in-memory connection share. */
export class Pair {
  readonly toServer = new Pipe();
  readonly toClient = new Pipe();
  /** Set when the client secured the connection (implicitly or with STARTTLS). */
  tls: TlsInfo | undefined;
  clientClosed = false;
  serverClosed = false;
  #onClientClose: (() => void)[] = [];

  closeClient(): void {
    if (this.clientClosed) return;
    this.clientClosed = true;
    this.toServer.end();
    this.toClient.discard();
    for (const listener of this.#onClientClose.splice(0)) listener();
  }

  closeServer(): void {
    if (this.serverClosed) return;
    this.serverClosed = true;
    this.toClient.end();
    this.toServer.discard();
  }

  whenClientCloses(listener: () => void): void {
    if (this.clientClosed) listener();
    else this.#onClientClose.push(listener);
  }
}

/** The client end: what {@linkcode MemoryTransport} hands to the SMTP client. */
export class MemoryConnection implements Connection {
  readonly #pair: Pair;
  readonly #transport: MemoryTransport;
  /** Set when `startTls()` took this connection over. */
  #detached = false;
  readonly tls?: TlsInfo;
  readonly localAddress?: string;

  constructor(
    pair: Pair,
    transport: MemoryTransport,
    localAddress: string | undefined,
    tls?: TlsInfo,
  ) {
    this.#pair = pair;
    this.#transport = transport;
    if (tls) this.tls = tls;
    if (localAddress !== undefined) this.localAddress = localAddress;
  }

  get closed(): boolean {
    return this.#detached || this.#pair.clientClosed || this.#pair.serverClosed;
  }

  /** For `startTls()`: the pair, once, after checking that it may be upgraded. */
  detach(transport: MemoryTransport): Pair {
    if (transport !== this.#transport) {
      throw new TypeError("Cannot start TLS: the connection was opened by another transport");
    }
    if (this.closed) {
      throw new SmtpConnectionError("Connection lost before the TLS handshake", "starttls");
    }
    const unread = this.#pair.toClient.buffered;
    if (unread > 0) {
      this.close();
      throw bytesBeforeHandshake(unread);
    }
    this.#detached = true;
    return this.#pair;
  }

  read(signal?: AbortSignal): Promise<Uint8Array | null> {
    if (this.#detached || this.#pair.clientClosed) return Promise.resolve(null);
    return this.#pair.toClient.read(signal, () => this.close());
  }

  write(data: Uint8Array, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) {
      this.close();
      return Promise.reject(signal.reason);
    }
    if (this.closed) {
      return Promise.reject(
        new SmtpConnectionError("Cannot write: the connection is closed", "command"),
      );
    }
    // A copy: the caller may reuse its buffer once the write resolved.
    this.#pair.toServer.push(data.slice());
    return Promise.resolve();
  }

  close(): void {
    if (this.#detached) return;
    this.#pair.closeClient();
  }
}

/** The {@linkcode MemoryPeer} of one pair. */
export class PeerEnd implements MemoryPeer {
  readonly #pair: Pair;
  readonly hostname: string;
  readonly port: number;
  readonly implicitTls: boolean;

  constructor(pair: Pair, options: ConnectOptions, implicitTls: boolean) {
    this.#pair = pair;
    this.hostname = options.hostname;
    this.port = options.port;
    this.implicitTls = implicitTls;
  }

  get tls(): TlsInfo | undefined {
    return this.#pair.tls;
  }

  get closed(): boolean {
    return this.#pair.clientClosed || this.#pair.serverClosed;
  }

  get buffered(): number {
    return this.#pair.toServer.buffered;
  }

  read(): Promise<Uint8Array | null> {
    return this.#pair.toServer.read();
  }

  async readLine(): Promise<string | null> {
    const parts: Uint8Array[] = [];
    while (true) {
      const chunk = await this.read();
      if (chunk === null) return parts.length > 0 ? decoder.decode(concat(parts)) : null;
      const lf = chunk.indexOf(0x0a);
      if (lf === -1) {
        parts.push(chunk);
        continue;
      }
      parts.push(chunk.subarray(0, lf));
      this.#pair.toServer.unshift(chunk.subarray(lf + 1));
      return decoder.decode(concat(parts)).replace(/\r$/, "");
    }
  }

  async readBytes(length: number): Promise<Uint8Array | null> {
    const parts: Uint8Array[] = [];
    let have = 0;
    while (have < length) {
      const chunk = await this.read();
      if (chunk === null) return null;
      const take = Math.min(chunk.length, length - have);
      parts.push(chunk.subarray(0, take));
      this.#pair.toServer.unshift(chunk.subarray(take));
      have += take;
    }
    // A copy, not a view of the chunk the rest of which stays queued.
    return parts.length === 1 ? parts[0]!.slice() : concat(parts);
  }

  write(data: string | Uint8Array): Promise<void> {
    if (!this.closed) {
      this.#pair.toClient.push(typeof data === "string" ? encoder.encode(data) : data.slice());
    }
    return Promise.resolve();
  }

  close(): void {
    this.#pair.closeServer();
  }

  clientClosed(): Promise<void> {
    return new Promise((resolve) => this.#pair.whenClientCloses(resolve));
  }
}
