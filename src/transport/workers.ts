/**
 * The Cloudflare Workers transport: TCP sockets from `cloudflare:sockets`, for sending mail from
 * a Worker (or anything else that runs on `workerd`). A Worker imports it explicitly and passes
 * it as `ClientOptions.transport`; everything else (the client, the pool, `sendMail`,
 * MIME, DKIM) is the same code as on Deno and Node.js.
 *
 * - Implicit TLS (`tls: "implicit"`, port 465): `connect(address, { secureTransport: "on" })`.
 * - STARTTLS (`tls: "starttls"`, port 587): `connect(address, { secureTransport: "starttls" })`,
 *   then `socket.startTls()` after the server's `220` reply to `STARTTLS`.
 * - Clear text (`tls: "none"`): the same socket, never upgraded.
 *
 * What a Worker cannot do is refused with an error that says so, before any connection:
 * attachments given as `{ path }` and `ClientOptions.path` (a Worker has no file
 * system), port 25 (the platform blocks it), `tlsOptions.caCerts` and
 * `tlsOptions.clientCertificate` (a Worker's sockets trust the public CAs only and present no
 * certificate), and a `tlsOptions.serverName` other than `hostname` (the certificate is checked
 * for the name connected to).
 *
 * The Worker needs the `nodejs_compat` compatibility flag: postie uses `node:crypto` (CRAM-MD5,
 * DKIM) and `node:dns` (proxies), which `workerd` provides with it.
 *
 * @example Send from a Worker
 * ```ts ignore
 * import { sendMail } from "@postie/smtp";
 * import { workersTransport } from "@postie/smtp/workers";
 *
 * export default {
 *   async fetch(_request: Request, env: { SMTP_USER: string; SMTP_PASS: string }) {
 *     const result = await sendMail(
 *       {
 *         hostname: "smtp.example.com",
 *         port: 587,
 *         auth: { username: env.SMTP_USER, password: env.SMTP_PASS },
 *         transport: workersTransport,
 *       },
 *       { from: "app@example.com", to: "you@example.com", subject: "Hi", text: "Hello" },
 *     );
 *     return Response.json({ accepted: result.accepted.map((r) => r.address) });
 *   },
 * };
 * ```
 *
 * @module
 */

// @ts-ignore: `cloudflare:sockets` exists only on workerd; the part used is typed below
import { connect as cloudflareConnect } from "cloudflare:sockets";
import { SmtpConnectionError, SmtpTlsError, SmtpUnsupportedError } from "../errors.ts";
import { connectionLost, describe, raceAbort } from "./_race.ts";
import type {
  Connection,
  ConnectOptions,
  FileOpener,
  TlsConnectOptions,
  TlsInfo,
  Transport,
} from "./types.ts";

/** What `socket.opened` tells. */
interface SocketInfo {
  readonly remoteAddress?: string | null;
  readonly localAddress?: string | null;
}

/** The part of a `cloudflare:sockets` `Socket` that the transport uses. */
interface WorkersSocket {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  readonly opened: Promise<SocketInfo>;
  close(): Promise<void>;
  /**
   * Upgrades to TLS; the certificate is checked for the name given to `connect()`. No
   * `expectedServerHostname`: Cloudflare's runtime refuses that option.
   */
  startTls(): WorkersSocket;
}

type SecureTransport = "off" | "on" | "starttls";

const connectSocket = cloudflareConnect as (
  address: { hostname: string; port: number },
  options: { secureTransport: SecureTransport; allowHalfOpen: boolean },
) => WorkersSocket;

/** The port that Cloudflare blocks for outbound connections. */
const BLOCKED_PORT = 25;

function closeSocket(socket: WorkersSocket): void {
  socket.close().catch(() => {});
}

/**
 * A `cloudflare:sockets` socket behind the {@linkcode Connection} interface. The reader and the
 * writer are taken on first use and given back by {@linkcode WorkersConnection.detach}, since
 * `startTls()` needs both streams unlocked. An aborted call closes the socket.
 */
class WorkersConnection implements Connection {
  #socket: WorkersSocket;
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #closed = false;
  /** The name connected to: the name the certificate is checked for after `startTls()`. */
  readonly hostname: string;
  readonly tls?: TlsInfo;
  readonly localAddress?: string;

  constructor(socket: WorkersSocket, hostname: string, info: SocketInfo, tls?: TlsInfo) {
    this.#socket = socket;
    this.hostname = hostname;
    if (tls) this.tls = tls;
    if (info.localAddress) this.localAddress = info.localAddress;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Gives the socket back, its streams unlocked, for `startTls()`; this connection is done. */
  detach(): WorkersSocket {
    this.#closed = true;
    this.#reader?.releaseLock();
    this.#writer?.releaseLock();
    this.#reader = this.#writer = undefined;
    return this.#socket;
  }

  async read(signal?: AbortSignal): Promise<Uint8Array | null> {
    if (this.#closed) return null;
    this.#reader ??= this.#socket.readable.getReader();
    let result: ReadableStreamReadResult<Uint8Array>;
    try {
      result = await raceAbort(this.#reader.read(), signal, () => this.close());
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (this.#closed) return null;
      this.close();
      throw connectionLost("", error);
    }
    if (result.done) {
      this.close();
      return null;
    }
    return result.value;
  }

  async write(data: Uint8Array, signal?: AbortSignal): Promise<void> {
    if (this.#closed) {
      throw new SmtpConnectionError("Cannot write: the connection is closed", "command");
    }
    this.#writer ??= this.#socket.writable.getWriter();
    try {
      await raceAbort(this.#writer.write(data), signal, () => this.close());
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      this.close();
      throw connectionLost("while writing", error);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reader?.cancel().catch(() => {});
    closeSocket(this.#socket);
  }
}

/** Refuses what a Worker cannot connect to. */
function checkAddress(options: ConnectOptions): void {
  if (options.path !== undefined) {
    throw new SmtpUnsupportedError(
      `Cannot connect to ${options.path}: Cloudflare Workers have no file system and no Unix ` +
        "domain sockets (remove the path option and connect by hostname and port)",
      "connect",
      "Unix domain socket",
    );
  }
  if (options.port === BLOCKED_PORT) {
    throw new SmtpUnsupportedError(
      `Cannot connect to ${options.hostname}:25: Cloudflare Workers block outbound connections ` +
        "to port 25 (use the submission ports, 587 with STARTTLS or 465 with implicit TLS)",
      "connect",
      "port 25",
    );
  }
}

/** Refuses TLS settings that a Worker's sockets cannot honour. */
function checkTls(options: { readonly hostname: string }, tls: TlsConnectOptions): void {
  if (tls.caCerts?.length) {
    throw new SmtpUnsupportedError(
      "Cannot use tlsOptions.caCerts on Cloudflare Workers: their sockets trust the public CAs " +
        "only (give the server a certificate from a public CA)",
      "tls",
      "custom CA certificates",
    );
  }
  if (tls.clientCertificate) {
    throw new SmtpUnsupportedError(
      "Cannot use tlsOptions.clientCertificate on Cloudflare Workers: their sockets present no " +
        "client certificate",
      "tls",
      "client certificates",
    );
  }
  if (tls.serverName !== options.hostname) {
    throw new SmtpUnsupportedError(
      `Cannot use tlsOptions.serverName "${tls.serverName}" on Cloudflare Workers: their sockets ` +
        `check the certificate for the name connected to ("${options.hostname}"); connect by ` +
        "that name instead",
      "tls",
      "tlsOptions.serverName",
    );
  }
}

/**
 * Opens a socket and waits until it is open (for `secureTransport: "on"`, until the TLS
 * handshake is done), within the caller's signal; the socket is closed on every failure.
 */
async function open(
  options: ConnectOptions,
  secureTransport: SecureTransport,
): Promise<{ socket: WorkersSocket; info: SocketInfo }> {
  let socket: WorkersSocket;
  try {
    socket = connectSocket(
      { hostname: options.hostname, port: options.port },
      { secureTransport, allowHalfOpen: false },
    );
  } catch (error) {
    throw new SmtpConnectionError(
      `Cannot connect to ${options.hostname}:${options.port}: ${describe(error)}`,
      "connect",
      { cause: error },
    );
  }
  try {
    const info = await raceAbort(socket.opened, options.signal, () => closeSocket(socket));
    return { socket, info };
  } catch (error) {
    closeSocket(socket);
    throw error;
  }
}

/**
 * Waits for the TLS handshake of a socket upgraded with `startTls()` (its `opened` settles when
 * the handshake is done), within `signal`.
 */
async function handshake(
  socket: WorkersSocket,
  hostname: string,
  options: TlsConnectOptions,
  what: string,
): Promise<WorkersConnection> {
  let info: SocketInfo;
  try {
    info = await raceAbort(socket.opened, options.signal, () => closeSocket(socket));
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    closeSocket(socket);
    throw handshakeError(what, options.serverName, error);
  }
  return new WorkersConnection(socket, hostname, info, {});
}

/**
 * The runtime reports a failed handshake as an opaque "internal error" (the reason goes to
 * its log): say what usually causes it.
 */
function handshakeError(what: string, name: string, error: unknown): SmtpTlsError {
  return new SmtpTlsError(
    `${what} failed: Cloudflare Workers do not say why (most often the server's ` +
      `chain does not lead to a public CA, or does not name "${name}"): ${describe(error)}`,
    { cause: error },
  );
}

/**
 * Implicit TLS: a socket with `secureTransport: "on"`, whose `opened` settles once the TLS
 * handshake is done. The runtime reports a refused connection and a failed handshake alike, so
 * on failure a plain connection to the same port tells them apart.
 */
async function connectTls(options: ConnectOptions & TlsConnectOptions): Promise<Connection> {
  checkAddress(options);
  checkTls(options, options);
  try {
    const { socket, info } = await open(options, "on");
    return new WorkersConnection(socket, options.hostname, info, {});
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    if (await reachable(options)) throw handshakeError("TLS setup", options.serverName, error);
    throw new SmtpConnectionError(
      `Cannot connect to ${options.hostname}:${options.port}: ${describe(error)}`,
      "connect",
      { cause: error },
    );
  }
}

/** Whether a plain TCP connection to the address opens (within the caller's signal). */
async function reachable(options: ConnectOptions): Promise<boolean> {
  try {
    const { socket } = await open(options, "off");
    closeSocket(socket);
    return true;
  } catch {
    return false;
  }
}

/** Refuses `{ path }` attachments: a Worker has no file system. */
const refuseFile: FileOpener = (path) =>
  Promise.reject(
    new SmtpUnsupportedError(
      `Cloudflare Workers have no file system to read ${JSON.stringify(path)} from: give the ` +
        "attachment's content (a Uint8Array, a string or a ReadableStream) instead of a path",
      "data",
      "file attachments",
    ),
  );

/**
 * The Cloudflare Workers implementation of {@linkcode Transport}, on `cloudflare:sockets`. Pass
 * it as `ClientOptions.transport` (or in a pool's options) in a Worker.
 *
 * @example Choose the Workers transport
 * ```ts ignore
 * import { SmtpPool } from "@postie/smtp";
 * import { workersTransport } from "@postie/smtp/workers";
 *
 * const pool = new SmtpPool({ hostname: "smtp.example.com", transport: workersTransport });
 * ```
 */
export const workersTransport: Transport = {
  async connect(options: ConnectOptions): Promise<Connection> {
    checkAddress(options);
    // "starttls" allows `startTls()` later; a clear-text session simply never calls it.
    try {
      const { socket, info } = await open(options, "starttls");
      return new WorkersConnection(socket, options.hostname, info);
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw new SmtpConnectionError(
        `Cannot connect to ${options.hostname}:${options.port}: ${describe(error)}`,
        "connect",
        { cause: error },
      );
    }
  },

  connectTls,

  async startTls(connection: Connection, options: TlsConnectOptions): Promise<Connection> {
    if (!(connection instanceof WorkersConnection)) {
      throw new TypeError(
        "Cannot start TLS: the connection was not opened by the Workers transport",
      );
    }
    try {
      checkTls(connection, options);
    } catch (error) {
      connection.close();
      throw error;
    }
    const socket = connection.detach();
    let secured: WorkersSocket;
    try {
      secured = socket.startTls();
    } catch (error) {
      closeSocket(socket);
      throw handshakeError("STARTTLS upgrade", options.serverName, error);
    }
    return await handshake(secured, connection.hostname, options, "STARTTLS upgrade");
  },

  openFile: refuseFile,
};
