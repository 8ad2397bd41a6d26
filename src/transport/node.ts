/**
 * The Node.js transport: `node:net` and `node:tls`. The npm build loads it through
 * `default_node.ts`; on Deno only the loopback listener of the test aids (`listen.ts`) uses it,
 * for the server's side of its sockets.
 *
 * Node sockets push data through events, while {@linkcode Connection.read} is pull-style: incoming
 * chunks are queued until they are read, and the socket is paused while more than
 * {@linkcode MAX_QUEUED_BYTES} wait in the queue.
 *
 * @module
 */

import type { FileHandle } from "node:fs/promises";
import { open } from "node:fs/promises";
import { connect as netConnect, isIP, type Socket } from "node:net";
import { hostname as osHostname } from "node:os";
import * as tls from "node:tls";
import { SmtpConnectionError, SmtpProtocolError, SmtpTlsError } from "../errors.ts";
import type {
  Connection,
  ConnectOptions,
  OpenedFile,
  TlsConnectOptions,
  TlsInfo,
  Transport,
} from "./types.ts";

/** Bytes queued by a connection before it pauses the socket (backpressure). */
const MAX_QUEUED_BYTES = 1024 * 1024;
/** Size of the chunks read from files. */
const FILE_CHUNK_SIZE = 512 * 1024;
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
class ReadRelay {
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

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && !error.message.includes(code)
    ? `${error.message} (${code})`
    : error.message;
}

/**
 * Runs `start` with a settle function, and rejects with the signal's reason when it aborts,
 * running `onAbort` first. The abort listener is removed on every path.
 */
function withAbort<T>(
  signal: AbortSignal | undefined,
  onAbort: () => void,
  start: (resolve: (value: T) => void, reject: (error: unknown) => void) => () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted) {
      onAbort();
      reject(signal.reason);
      return;
    }
    let cleanup = (): void => {};
    const abort = () => {
      cleanup();
      onAbort();
      reject(signal!.reason);
    };
    const settle = <A>(fn: (arg: A) => void) => (arg: A) => {
      signal?.removeEventListener("abort", abort);
      cleanup();
      fn(arg);
    };
    signal?.addEventListener("abort", abort, { once: true });
    cleanup = start(settle(resolve), settle(reject));
  });
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
  /** The signal with the abort listener on it. */
  #signal: AbortSignal | undefined;
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

  /** Puts the abort listener on `signal` (moving it from the previous one). */
  #listen(signal: AbortSignal): void {
    if (signal === this.#signal) return;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#signal = signal;
    signal.addEventListener("abort", this.#onAbort);
  }

  #unlisten(): void {
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#signal = undefined;
  }

  /** The listened signal aborted: the calls that carry it reject with its reason, and close. */
  #onAbort = (): void => {
    const signal = this.#signal;
    if (!signal) return;
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
  };

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
    this.#unlisten();
    const unread = this.#queuedBytes;
    this.#closed = true;
    this.#queue = [];
    this.#queuedBytes = 0;
    if (unread > 0) {
      socket.destroy();
      throw new SmtpProtocolError(
        `Server sent ${unread} bytes after its STARTTLS reply and before the TLS handshake ` +
          "(possible response injection): refusing to continue",
        "starttls",
      );
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
      this.#listen(signal);
    }
    return new Promise<Uint8Array | null>((resolve, reject) => {
      this.#waiter = { resolve, reject, signal };
    });
  }

  write(data: Uint8Array, signal?: AbortSignal): Promise<void> {
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
      this.#listen(signal);
    }
    const seq = ++this.#issued;
    socket.write(data, this.#onWritten);
    return this.#handedOver(socket) ? RESOLVED : this.#pending(seq, signal);
  }

  writev(chunks: readonly Uint8Array[], signal?: AbortSignal): Promise<void> {
    if (chunks.length === 1) return this.write(chunks[0]!, signal);
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
      this.#listen(signal);
    }
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
    this.#unlisten();
    this.#socket.destroy();
    this.#failWrites(new Error("the connection was closed"));
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter.resolve(null);
    }
  }
}

/** Opens a TCP connection that reads with `onread`, through `relay`. */
function connectTcp(options: ConnectOptions, relay: ReadRelay): Promise<Socket> {
  const { hostname, port, signal } = options;
  let socket: Socket | undefined;
  return withAbort<Socket>(signal, () => socket?.destroy(), (resolve, reject) => {
    const tcp = netConnect({
      ...(options.path !== undefined ? { path: options.path } : { host: hostname, port }),
      onread: { buffer: relay.buffer, callback: relay.callback },
    });
    socket = tcp;
    const onConnect = () => {
      tcp.setNoDelay(true);
      resolve(tcp);
    };
    const onError = (error: Error) => {
      tcp.destroy();
      reject(
        new SmtpConnectionError(
          `Cannot connect to ${options.path ?? `${hostname}:${port}`}: ${describe(error)}`,
          "connect",
          { cause: error },
        ),
      );
    };
    tcp.once("connect", onConnect);
    tcp.once("error", onError);
    return () => {
      tcp.off("connect", onConnect);
      tcp.off("error", onError);
    };
  });
}

/** The root certificates to trust beside `caCerts`: the store Node was configured with. */
function defaultRoots(): readonly string[] {
  const getCaCertificates = (tls as { getCACertificates?: (type?: string) => string[] })
    .getCACertificates;
  return typeof getCaCertificates === "function"
    ? getCaCertificates("default")
    : tls.rootCertificates;
}

/** Formats a certificate subject as `CN=mail.example.com, O=Example`. */
function formatSubject(subject: object): string {
  return (Object.entries(subject) as [string, unknown][])
    .filter(([, value]) => typeof value === "string" || Array.isArray(value))
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join("+") : value}`)
    .join(", ");
}

/** What a secured socket tells about its session: protocol, cipher, peer subject, ALPN. */
export function tlsInfo(socket: tls.TLSSocket): TlsInfo {
  const info: {
    protocol?: string;
    cipher?: string;
    peerSubject?: string;
    alpnProtocol?: string | null;
  } = {};
  const protocol = socket.getProtocol();
  if (protocol) info.protocol = protocol;
  const cipher = socket.getCipher()?.name;
  if (cipher) info.cipher = cipher;
  const subject: object | undefined = socket.getPeerCertificate()?.subject;
  if (subject) {
    const formatted = formatSubject(subject);
    if (formatted) info.peerSubject = formatted;
  }
  const alpn = socket.alpnProtocol;
  info.alpnProtocol = typeof alpn === "string" ? alpn : null;
  return info;
}

/**
 * Secures `socket` with TLS and waits for the handshake. Certificates and the host name are
 * always verified; `caCerts` are trusted in addition to the default roots.
 */
function secure(socket: Socket, options: TlsConnectOptions): Promise<NodeConnection> {
  const { serverName, caCerts, clientCertificate, signal } = options;
  let tlsSocket: tls.TLSSocket | undefined;
  const destroy = () => {
    tlsSocket?.destroy();
    socket.destroy();
  };
  // Once wrapped, the socket's failures surface through the TLS socket.
  socket.on("error", () => {});
  return withAbort<NodeConnection>(signal, destroy, (resolve, reject) => {
    const init: tls.ConnectionOptions = {
      socket,
      rejectUnauthorized: true,
      // Node checks the name given as `servername` or `host`; with neither (an IP address,
      // where SNI is not allowed) it would check "localhost". Check the name asked for.
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(serverName, cert),
    };
    if (!isIP(serverName)) init.servername = serverName;
    if (caCerts?.length) init.ca = [...defaultRoots(), ...caCerts];
    if (clientCertificate) {
      init.cert = clientCertificate.cert;
      init.key = clientCertificate.key;
    }
    let secured: tls.TLSSocket;
    try {
      secured = tls.connect(init);
    } catch (error) {
      socket.destroy();
      reject(new SmtpTlsError(`TLS setup failed: ${describe(error)}`, { cause: error }));
      return () => {};
    }
    tlsSocket = secured;
    const onSecure = () => {
      secured.setNoDelay(true);
      resolve(new NodeConnection(secured, tlsInfo(secured)));
    };
    const onError = (error: Error) => {
      destroy();
      reject(new SmtpTlsError(`TLS handshake failed: ${describe(error)}`, { cause: error }));
    };
    const onClose = () => onError(new Error("the server closed the connection"));
    secured.once("secureConnect", onSecure);
    secured.once("error", onError);
    secured.once("close", onClose);
    return () => {
      secured.off("secureConnect", onSecure);
      secured.off("error", onError);
      secured.off("close", onClose);
    };
  });
}

/** The Node.js implementation of {@linkcode Transport}. */
export const nodeTransport: Transport = {
  async connect(options: ConnectOptions): Promise<Connection> {
    const relay = new ReadRelay();
    return new NodeConnection(await connectTcp(options, relay), undefined, relay);
  },

  async connectTls(options: ConnectOptions & TlsConnectOptions): Promise<Connection> {
    // The TLS socket reads from the TCP socket's handle itself: nothing reaches the relay.
    const socket = await connectTcp(options, new ReadRelay());
    return await secure(socket, options);
  },

  async startTls(connection: Connection, options: TlsConnectOptions): Promise<Connection> {
    if (!(connection instanceof NodeConnection)) {
      throw new TypeError("Cannot start TLS: the connection was not opened by the Node transport");
    }
    return await secure(connection.detach(), options);
  },

  hostname(): string | undefined {
    try {
      return osHostname();
    } catch {
      return undefined;
    }
  },
};

/** A pull-based byte stream over an open file; the file is closed at the end, on error and on cancel. */
function fileStream(handle: FileHandle): ReadableStream<Uint8Array> {
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  // A byte stream: a reader that brings its own buffer (the MIME composer does) gets the file
  // read straight into it; others get a fresh chunk of FILE_CHUNK_SIZE per read.
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: FILE_CHUNK_SIZE,
    async pull(controller) {
      const request = controller.byobRequest!;
      const view = request.view!;
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(
          new Uint8Array(view.buffer, view.byteOffset, view.byteLength),
          0,
          view.byteLength,
          null,
        ));
      } catch (error) {
        await close().catch(() => {});
        throw error;
      }
      if (bytesRead === 0) {
        await close();
        controller.close();
        request.respond(0);
        return;
      }
      request.respond(bytesRead);
    },
    async cancel() {
      await close();
    },
  }, { highWaterMark: 0 });
}

/** Opens a file with `node:fs`; rejects when it is missing, not a file, or unreadable. */
export const nodeOpenFile = async (path: string): Promise<OpenedFile> => {
  const handle = await open(path, "r");
  let size: number;
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new TypeError(`Not a file: ${path}`);
    size = info.size;
  } catch (error) {
    await handle.close();
    throw error;
  }
  return { stream: fileStream(handle), size };
};
