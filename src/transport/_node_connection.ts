/**
 * A Node socket behind the pull-style {@linkcode Connection} interface. Node sockets push data
 * through events (or the `onread` callback), while {@linkcode Connection.read} is pull-style:
 * incoming chunks are queued until they are read, and the socket is paused while more than
 * {@linkcode MAX_QUEUED_BYTES} wait in the queue.
 *
 * @module
 */

import type { Socket } from "node:net";
import { SmtpConnectionError } from "../errors.ts";
import { AbortListener } from "./_abort_listener.ts";
import { bytesBeforeHandshake } from "./_race.ts";
import type { Connection, TlsInfo } from "./types.ts";

/** Bytes queued by a connection before it pauses the socket (backpressure). */
const MAX_QUEUED_BYTES = 1024 * 1024;
/** Size of the buffer that a plain TCP socket reads into. */
const READ_BUFFER_SIZE = 64 * 1024;

/** A pending `read()`: settled by the next chunk, the end of the stream or an error. */
interface Waiter {
  resolve(chunk: Uint8Array | null): void;
  reject(error: unknown): void;
  /** The signal the read was given. */
  readonly signal: AbortSignal | undefined;
}

/**
 * A `write()` whose bytes the socket still holds: settled once the socket's write callbacks
 * (one per write, in order) have counted up to its own.
 */
interface PendingWrite {
  readonly seq: number;
  readonly signal: AbortSignal | undefined;
  resolve(): void;
  reject(error: unknown): void;
}

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * The reads of a plain TCP socket opened with `onread`: Node reads into one buffer and calls
 * back with the byte count, without the stream machinery (no `push()`, no `data` event, no
 * `maybeReadMore` tick per read). The bytes go to the connection over the socket, once there
 * is one; until then they wait here.
 */
export class ReadRelay {
  readonly buffer = new Uint8Array(READ_BUFFER_SIZE);
  #connection: NodeConnection | undefined;
  #early: Uint8Array[] = [];

  /** Node's callback: `false` stops reading until `socket.resume()`. */
  readonly callback = (nread: number, buffer: Uint8Array): boolean => {
    const bytes = buffer.slice(0, nread);
    if (this.#connection) return this.#connection.receive(bytes);
    this.#early.push(bytes);
    return true;
  };

  /** Sends the bytes to `connection` from now on (none when undefined). */
  attach(connection: NodeConnection | undefined): void {
    this.#connection = connection;
    if (!connection) return;
    for (const bytes of this.#early.splice(0)) connection.receive(bytes);
  }
}

/** An error as text, with its Node error code. */
export function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && !error.message.includes(code)
    ? `${error.message} (${code})`
    : error.message;
}

/**
 * A `net.Socket` or `tls.TLSSocket` behind the pull-style {@linkcode Connection} interface.
 *
 * One set of socket listeners per connection, not per call: data (or the socket's `onread`
 * callback, for plain TCP sockets the transport opened), end, error and close are listened to
 * from the start, every write shares one callback, and an abort listener sits on
 * the signal that the calls carry (a session passes the same one every time) until another
 * signal comes or the connection closes. A write that the socket hands to the kernel at once
 * (the common case: `write()` returns true with nothing left buffered) resolves without
 * waiting for anything.
 */
export class NodeConnection implements Connection {
  #socket: Socket;
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  #paused = false;
  #ended = false;
  #error: unknown;
  #waiter: Waiter | undefined;
  #closed = false;
  /** Writes handed to the socket, and write callbacks received: both count up. */
  #issued = 0;
  #flushed = 0;
  #writes: PendingWrite[] = [];
  /** The abort listener on the signal that the calls carry. */
  #abort = new AbortListener((signal) => this.#onAbort(signal));
  /** Set when the socket reads with `onread` (no `data` events). */
  #relay: ReadRelay | undefined;
  readonly tls?: TlsInfo;
  readonly localAddress?: string;

  /**
   * @param socket The connected socket.
   * @param tls Its TLS session, when secured.
   * @param relay Where the socket's `onread` callback delivers (plain TCP sockets opened by
   *   the transport); without it, `data` events are listened to.
   */
  constructor(socket: Socket, tls?: TlsInfo, relay?: ReadRelay) {
    this.#socket = socket;
    if (tls) this.tls = tls;
    if (socket.localAddress) this.localAddress = socket.localAddress;
    if (relay) {
      this.#relay = relay;
      relay.attach(this);
    } else {
      socket.on("data", this.#onData);
    }
    socket.on("end", this.#onEnd);
    socket.on("error", this.#onError);
    socket.on("close", this.#onClose);
  }

  get closed(): boolean {
    return this.#closed || this.#ended;
  }

  #onData = (chunk: Uint8Array): void => {
    // A plain Uint8Array view: Buffer's slice() shares memory, which callers do not expect.
    if (!this.receive(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))) {
      this.#socket.pause();
    }
  };

  /**
   * Takes bytes that arrived: to the pending read, or into the queue. Returns false when the
   * queue holds too much: the socket must stop reading until {@linkcode read} resumes it.
   */
  receive(bytes: Uint8Array): boolean {
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter.resolve(bytes);
      return true;
    }
    this.#queue.push(bytes);
    this.#queuedBytes += bytes.length;
    if (this.#queuedBytes <= MAX_QUEUED_BYTES) return true;
    this.#paused = true;
    return false;
  }

  #onEnd = (): void => {
    this.#ended = true;
    const waiter = this.#waiter;
    if (!waiter) return;
    this.#waiter = undefined;
    if (this.#error === undefined) {
      waiter.resolve(null);
    } else {
      waiter.reject(this.#takeError());
    }
  };

  #onClose = (): void => {
    this.#failWrites(this.#error ?? new Error("the connection was closed"));
    this.#onEnd();
  };

  #onError = (error: unknown): void => {
    if (this.#closed) return;
    this.#error ??= error;
    this.#failWrites(error);
    const waiter = this.#waiter;
    if (!waiter) return;
    this.#waiter = undefined;
    waiter.reject(this.#takeError());
  };

  /** The socket's callback for every write, in order; an error fails every pending write. */
  #onWritten = (error?: Error | null): void => {
    this.#flushed++;
    if (error) {
      this.#failWrites(error);
      return;
    }
    const writes = this.#writes;
    while (writes.length > 0 && writes[0]!.seq <= this.#flushed) writes.shift()!.resolve();
  };

  #failWrites(cause: unknown): void {
    if (this.#writes.length === 0) return;
    const writes = this.#writes;
    this.#writes = [];
    for (const write of writes) {
      write.reject(
        new SmtpConnectionError(`Connection lost while writing: ${describe(cause)}`, "command", {
          cause,
        }),
      );
    }
  }

  /** The listened signal aborted: the calls that carry it reject with its reason, and close. */
  #onAbort(signal: AbortSignal): void {
    let hit = false;
    const waiter = this.#waiter;
    if (waiter?.signal === signal) {
      this.#waiter = undefined;
      waiter.reject(signal.reason);
      hit = true;
    }
    if (this.#writes.some((write) => write.signal === signal)) {
      const writes = this.#writes;
      this.#writes = writes.filter((write) => write.signal !== signal);
      for (const write of writes) if (write.signal === signal) write.reject(signal.reason);
      hit = true;
    }
    if (hit) this.close();
  }

  /** Turns the stored socket error into the error a read reports, and closes. */
  #takeError(): SmtpConnectionError {
    const error = this.#error;
    this.#error = undefined;
    this.close();
    return new SmtpConnectionError(`Connection lost: ${describe(error)}`, "command", {
      cause: error,
    });
  }

  /**
   * Hands the socket over to `tls.connect`. Fails when bytes arrived that nobody read: a server
   * must send nothing between its reply to STARTTLS and the handshake.
   */
  detach(): Socket {
    if (this.#waiter) {
      throw new TypeError("Cannot start TLS: a read is pending on the connection");
    }
    const socket = this.#socket;
    if (this.#relay) this.#relay.attach(undefined);
    else socket.off("data", this.#onData);
    socket.off("end", this.#onEnd);
    socket.off("error", this.#onError);
    socket.off("close", this.#onClose);
    this.#abort.stop();
    const unread = this.#queuedBytes;
    this.#closed = true;
    this.#queue = [];
    this.#queuedBytes = 0;
    if (unread > 0) {
      socket.destroy();
      throw bytesBeforeHandshake(unread);
    }
    if (this.#error !== undefined || this.#ended) {
      const error = this.#error;
      socket.destroy();
      throw new SmtpConnectionError(
        `Connection lost before the TLS handshake${error ? `: ${describe(error)}` : ""}`,
        "starttls",
        { cause: error },
      );
    }
    if (this.#paused) socket.resume();
    return socket;
  }

  read(signal?: AbortSignal): Promise<Uint8Array | null> {
    const chunk = this.#queue.shift();
    if (chunk) {
      this.#queuedBytes -= chunk.length;
      if (this.#paused && this.#queuedBytes <= MAX_QUEUED_BYTES / 2) {
        this.#paused = false;
        this.#socket.resume();
      }
      return Promise.resolve(chunk);
    }
    if (this.#error !== undefined) return Promise.reject(this.#takeError());
    if (this.#closed || this.#ended) {
      this.close();
      return Promise.resolve(null);
    }
    if (this.#waiter) {
      return Promise.reject(new TypeError("Cannot read: another read is pending"));
    }
    if (signal) {
      if (signal.aborted) {
        this.close();
        return Promise.reject(signal.reason);
      }
      this.#abort.listen(signal);
    }
    return new Promise<Uint8Array | null>((resolve, reject) => {
      this.#waiter = { resolve, reject, signal };
    });
  }

  /**
   * A rejected write when the connection cannot take one (closed, or `signal` aborted: then it
   * closes); else undefined, with the abort listener on `signal`.
   */
  #refuseWrite(signal: AbortSignal | undefined): Promise<void> | undefined {
    const socket = this.#socket;
    if (this.#closed || socket.destroyed || !socket.writable) {
      return Promise.reject(
        new SmtpConnectionError("Cannot write: the connection is closed", "command"),
      );
    }
    if (signal) {
      if (signal.aborted) {
        this.close();
        return Promise.reject(signal.reason);
      }
      this.#abort.listen(signal);
    }
    return undefined;
  }

  write(data: Uint8Array, signal?: AbortSignal): Promise<void> {
    const refused = this.#refuseWrite(signal);
    if (refused) return refused;
    const socket = this.#socket;
    const seq = ++this.#issued;
    socket.write(data, this.#onWritten);
    return this.#handedOver(socket) ? RESOLVED : this.#pending(seq, signal);
  }

  writev(chunks: readonly Uint8Array[], signal?: AbortSignal): Promise<void> {
    if (chunks.length === 1) return this.write(chunks[0]!, signal);
    const refused = this.#refuseWrite(signal);
    if (refused) return refused;
    const socket = this.#socket;
    // Corked, the chunks go out together in one writev() when uncorked.
    socket.cork();
    for (const chunk of chunks) socket.write(chunk, this.#onWritten);
    this.#issued += chunks.length;
    socket.uncork();
    return this.#handedOver(socket) ? RESOLVED : this.#pending(this.#issued, signal);
  }

  /**
   * Whether everything written so far was handed to the kernel: the socket holds nothing back
   * and no write failed (a failed write is reported to the write callbacks).
   */
  #handedOver(socket: Socket): boolean {
    return socket.writableLength === 0 && socket.errored === null && !socket.destroyed;
  }

  /** A write that waits for the socket's callback number `seq`. */
  #pending(seq: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#writes.push({ seq, signal, resolve, reject });
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#abort.stop();
    this.#socket.destroy();
    this.#failWrites(new Error("the connection was closed"));
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter.resolve(null);
    }
  }
}
