/**
 * The Deno transport: `Deno.connect`, `Deno.connectTls` and `Deno.startTls`.
 *
 * @module
 */

import { SmtpConnectionError, SmtpTlsError, SmtpUnsupportedError } from "../errors.ts";
import { AbortListener } from "./_abort_listener.ts";
import { connectionLost, describe, raceAbort } from "./_race.ts";
import type {
  Connection,
  ConnectOptions,
  OpenedFile,
  TlsConnectOptions,
  TlsInfo,
  Transport,
} from "./types.ts";

const READ_BUFFER_SIZE = 64 * 1024;
/** {@linkcode DenoConnection.writev} joins chunks smaller than this into one write. */
const JOIN_BELOW = 16 * 1024;

/**
 * A `Deno.Conn` or `Deno.TlsConn` behind the {@linkcode Connection} interface. An abort
 * listener sits on the signal that the calls carry (a session passes the same one every time)
 * until another signal comes or the connection closes: when it aborts while a call that carries
 * it is pending, the connection closes (which ends the pending calls) and they reject with the
 * signal's reason.
 */
class DenoConnection implements Connection {
  #conn: Deno.Conn;
  #closed = false;
  #buffer = new Uint8Array(READ_BUFFER_SIZE);
  /** The abort listener on the calls' signal; the signals of the pending calls. */
  #abort = new AbortListener((signal) => {
    if (this.#reading === signal || this.#writing === signal) this.close();
  });
  #reading: AbortSignal | undefined;
  #writing: AbortSignal | undefined;
  readonly tls?: TlsInfo;
  readonly localAddress?: string;

  constructor(conn: Deno.Conn, tls?: TlsInfo) {
    this.#conn = conn;
    if (tls) this.tls = tls;
    const local = conn.localAddr;
    if (local.transport === "tcp") this.localAddress = local.hostname;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Hands the underlying connection over to `Deno.startTls`. */
  detach(): Deno.TcpConn {
    this.#closed = true;
    this.#abort.stop();
    return this.#conn as Deno.TcpConn;
  }

  async read(signal?: AbortSignal): Promise<Uint8Array | null> {
    if (this.#closed) return null;
    if (signal) {
      if (signal.aborted) {
        this.close();
        throw signal.reason;
      }
      this.#abort.listen(signal);
    }
    let n: number | null;
    this.#reading = signal;
    try {
      n = await this.#conn.read(this.#buffer);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (this.#closed) return null;
      this.close();
      throw connectionLost("", error);
    } finally {
      this.#reading = undefined;
    }
    if (signal?.aborted) throw signal.reason;
    if (n === null) {
      this.close();
      return null;
    }
    return this.#buffer.slice(0, n);
  }

  async write(data: Uint8Array, signal?: AbortSignal): Promise<void> {
    if (this.#closed) {
      throw new SmtpConnectionError("Cannot write: the connection is closed", "command");
    }
    if (signal) {
      if (signal.aborted) {
        this.close();
        throw signal.reason;
      }
      this.#abort.listen(signal);
    }
    this.#writing = signal;
    try {
      let offset = 0;
      while (offset < data.length) {
        const view = offset === 0 ? data : data.subarray(offset);
        offset += await this.#conn.write(view);
        if (signal?.aborted) throw signal.reason;
      }
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      this.close();
      throw connectionLost("while writing", error);
    } finally {
      this.#writing = undefined;
    }
  }

  /**
   * Writes the chunks in order: small neighbours joined into one write (a command and the
   * start of the data go out together), large ones as they are, without a copy.
   */
  async writev(chunks: readonly Uint8Array[], signal?: AbortSignal): Promise<void> {
    let small: Uint8Array[] = [];
    let smallBytes = 0;
    const flush = async () => {
      if (small.length === 0) return;
      const joined = small.length === 1 ? small[0]! : new Uint8Array(smallBytes);
      if (small.length > 1) {
        let offset = 0;
        for (const part of small) {
          joined.set(part, offset);
          offset += part.length;
        }
      }
      small = [];
      smallBytes = 0;
      await this.write(joined, signal);
    };
    for (const chunk of chunks) {
      if (chunk.length < JOIN_BELOW) {
        small.push(chunk);
        smallBytes += chunk.length;
        if (smallBytes < JOIN_BELOW) continue;
      } else {
        await flush();
        await this.write(chunk, signal);
        continue;
      }
      await flush();
    }
    await flush();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.stop();
    try {
      this.#conn.close();
    } catch {
      // already closed by the peer or the runtime
    }
  }
}

async function handshake(conn: Deno.TlsConn, signal: AbortSignal | undefined): Promise<TlsInfo> {
  try {
    const info = await raceAbort(conn.handshake(), signal, () => {
      try {
        conn.close();
      } catch { /* closed */ }
    });
    return { alpnProtocol: info.alpnProtocol };
  } catch (error) {
    if (signal?.aborted && error === signal.reason) throw error;
    try {
      conn.close();
    } catch { /* closed */ }
    throw new SmtpTlsError(`TLS handshake failed: ${describe(error)}`, { cause: error });
  }
}

function tlsOptions(options: TlsConnectOptions) {
  const result: { hostname: string; caCerts?: string[] } = { hostname: options.serverName };
  if (options.caCerts?.length) result.caCerts = [...options.caCerts];
  return result;
}

async function connectTcp(options: ConnectOptions): Promise<Deno.TcpConn> {
  if (options.path !== undefined) return await connectUnix(options, options.path);
  const conn = await connecting(
    options,
    Deno.connect({ hostname: options.hostname, port: options.port }),
  );
  conn.setNoDelay(true);
  return conn;
}

/**
 * Connects to a Unix domain socket. Typed as TCP for the callers' sake: `secure()` refuses to
 * start TLS on it (Deno.startTls takes TCP connections only).
 */
async function connectUnix(options: ConnectOptions, path: string): Promise<Deno.TcpConn> {
  if (Deno.build.os === "windows") {
    throw new SmtpUnsupportedError(
      `Cannot connect to ${path}: Deno has no Unix domain sockets on Windows`,
      "connect",
      "Unix domain socket",
    );
  }
  const attempt = Deno.connect({ transport: "unix", path });
  return await connecting(options, attempt) as unknown as Deno.TcpConn;
}

/**
 * Waits for a connection attempt within the caller's signal; a connection that arrives after
 * an abort is closed, and a failure becomes an {@linkcode SmtpConnectionError}.
 */
async function connecting<T extends Deno.Conn>(
  options: ConnectOptions,
  attempt: Promise<T>,
): Promise<T> {
  try {
    return await raceAbort(attempt, options.signal, () => {
      attempt.then((c) => c.close(), () => {});
    });
  } catch (error) {
    if (options.signal?.aborted && error === options.signal.reason) throw error;
    throw new SmtpConnectionError(
      `Cannot connect to ${options.path ?? `${options.hostname}:${options.port}`}: ${
        describe(error)
      }`,
      "connect",
      { cause: error },
    );
  }
}

/**
 * Starts TLS on an open TCP connection and completes the handshake; `what` names the step in
 * the error. The TCP connection is closed when TLS cannot even start.
 */
async function secure(
  tcp: Deno.TcpConn,
  options: TlsConnectOptions,
  what: string,
): Promise<DenoConnection> {
  if ((tcp.localAddr as Deno.Addr).transport === "unix") {
    try {
      tcp.close();
    } catch { /* closed */ }
    throw new SmtpUnsupportedError(
      `${what} is not possible on a Unix domain socket under Deno (Deno.startTls takes TCP ` +
        'connections only): use tls: "none" for a local socket, or run on Node.js',
      "tls",
      "TLS over a Unix domain socket",
    );
  }
  let tls: Deno.TlsConn;
  try {
    tls = await Deno.startTls(tcp, tlsOptions(options));
  } catch (error) {
    try {
      tcp.close();
    } catch { /* closed */ }
    throw new SmtpTlsError(`${what} failed: ${describe(error)}`, { cause: error });
  }
  return new DenoConnection(tls, await handshake(tls, options.signal));
}

/** The Deno implementation of {@linkcode Transport}. */
export const denoTransport: Transport = {
  async connect(options: ConnectOptions): Promise<Connection> {
    return new DenoConnection(await connectTcp(options));
  },

  async connectTls(options: ConnectOptions & TlsConnectOptions): Promise<Connection> {
    if (options.clientCertificate) {
      // Deno.startTls takes no client certificate; Deno.connectTls does, but verifies the name
      // it connects to.
      if (options.serverName !== options.hostname) {
        throw new SmtpTlsError(
          `Deno cannot present a client certificate while verifying a name ("${options.serverName}") ` +
            `other than the host it connects to ("${options.hostname}"): connect by that name, ` +
            "or run on Node.js",
        );
      }
      const tls = await connecting(
        options,
        Deno.connectTls({
          ...tlsOptions(options),
          port: options.port,
          cert: options.clientCertificate.cert,
          key: options.clientCertificate.key,
        }),
      );
      return new DenoConnection(tls, await handshake(tls, options.signal));
    }
    return await secure(await connectTcp(options), options, "TLS setup");
  },

  async startTls(connection: Connection, options: TlsConnectOptions): Promise<Connection> {
    if (!(connection instanceof DenoConnection)) {
      throw new TypeError("Cannot start TLS: the connection was not opened by the Deno transport");
    }
    if (options.clientCertificate) {
      throw new SmtpTlsError(
        "Deno cannot present a client certificate after STARTTLS (Deno.startTls takes none): " +
          'use tls: "implicit", or run on Node.js',
      );
    }
    return await secure(connection.detach(), options, "STARTTLS upgrade");
  },

  hostname(): string | undefined {
    try {
      return Deno.hostname();
    } catch {
      return undefined;
    }
  },
};

/**
 * Opens a file with `Deno.open`; rejects when it is missing, not a file, or unreadable. It is
 * `openFile` of `@postie/smtp` on Deno (on Node, the same with `node:fs`): the client, the pool
 * and `sendMail` use it for `{ path }` attachments; give it to `composeMessage` to compose a
 * message with files yourself.
 *
 * @param path The file's path.
 * @returns The file's bytes as a stream, and its size.
 *
 * @example Compose a message with a file attachment
 * ```ts
 * import { composeMessage, openFile } from "@postie/smtp";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile({ suffix: ".csv" });
 * await Deno.writeTextFile(path, "a,b\n1,2\n");
 * const composed = await composeMessage(
 *   { from: "me@example.com", to: "you@example.com", attachments: [{ path }] },
 *   { openFile },
 * );
 * const text = await new Response(composed.body).text();
 * assert.match(text, /Content-Type: text\/csv/);
 * await Deno.remove(path);
 * ```
 */
export const denoOpenFile = async (path: string): Promise<OpenedFile> => {
  const file = await Deno.open(path, { read: true });
  let info: Deno.FileInfo;
  try {
    info = await file.stat();
    if (!info.isFile) throw new TypeError(`Not a file: ${path}`);
  } catch (error) {
    file.close();
    throw error;
  }
  // A byte stream: the composer reads it into its own reused buffer, 512 KiB at a time.
  return { stream: file.readable, size: info.size };
};
