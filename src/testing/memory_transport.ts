/**
 * An in-memory {@linkcode Transport}: every `connect()` makes a pair of ends joined by two
 * queues of bytes, with no socket and no timer. The client end is an ordinary
 * {@linkcode Connection}; the other end, a {@linkcode MemoryPeer}, is what a test (or
 * {@linkcode MockSmtpServer}) reads the client's bytes from and writes replies to.
 *
 * Each `write()` of the client arrives at the peer as one chunk, so a test can state exactly
 * which bytes went out together (one write for a pipelined MAIL, RCPT and DATA).
 *
 * TLS is simulated: `connectTls()` and `startTls()` mark the connection as secured with the
 * {@linkcode MemoryTransportOptions.tls} details, but nothing is encrypted and no certificate
 * is checked. Use a real loopback port ({@linkcode MockSmtpServer.listen}) to test TLS itself.
 *
 * @module
 */

import type {
  Connection,
  ConnectOptions,
  TlsConnectOptions,
  TlsInfo,
  Transport,
} from "../transport/types.ts";
import { MemoryConnection, Pair, PeerEnd } from "./_memory_pipe.ts";

/**
 * What a simulated TLS session reports by default: clearly not a real protocol or cipher.
 */
export const SIMULATED_TLS: TlsInfo = Object.freeze({
  protocol: "simulated",
  cipher: "none (in memory, not encrypted)",
});

/**
 * The server's end of an in-memory connection: reads what the client wrote, writes replies.
 *
 * @example Play a server by hand
 * ```ts
 * import { MemoryTransport } from "@postie/smtp/testing";
 * import assert from "node:assert/strict";
 *
 * const transport = new MemoryTransport();
 * const client = await transport.connect({ hostname: "mx.example.com", port: 25 });
 * const peer = await transport.accept();
 * assert.equal(peer.hostname, "mx.example.com");
 * await peer.write("220 mx.example.com ESMTP\r\n");
 * await client.write(new TextEncoder().encode("EHLO me\r\n"));
 * assert.equal(await peer.readLine(), "EHLO me");
 * client.close();
 * assert.equal(await peer.readLine(), null);
 * ```
 */
export interface MemoryPeer {
  /** Where the client asked to connect. */
  readonly hostname: string;
  /** The port the client asked for. */
  readonly port: number;
  /** True when the client connected with `connectTls()` (implicit TLS). */
  readonly implicitTls: boolean;
  /** The simulated TLS details, once the client secured the connection; else `undefined`. */
  readonly tls: TlsInfo | undefined;
  /** True once either end closed the connection. */
  readonly closed: boolean;
  /** Bytes the client wrote that were not read yet. */
  readonly buffered: number;
  /**
   * Reads the next chunk: the bytes of one `write()` of the client, exactly (or what a
   * `readLine()` or `readBytes()` left of it).
   *
   * @returns The bytes, or `null` once the client closed and everything was read.
   */
  read(): Promise<Uint8Array | null>;
  /**
   * Reads one line, decoded as UTF-8, without its line end (CRLF or a bare LF).
   *
   * @returns The line, or `null` when the client closed first. An unfinished last line is
   *   returned as it is.
   */
  readLine(): Promise<string | null>;
  /**
   * Reads exactly `length` bytes.
   *
   * @param length How many.
   * @returns The bytes, or `null` when the client closed before sending them all.
   */
  readBytes(length: number): Promise<Uint8Array | null>;
  /**
   * Sends bytes to the client; a string is encoded as UTF-8 and sent as is (give the CRLF).
   * Writing after either end closed does nothing.
   *
   * @param data What to send.
   */
  write(data: string | Uint8Array): Promise<void>;
  /** Closes the server's end: the client reads what was written, then the end of the stream. */
  close(): void;
  /**
   * Waits until the client closes the connection.
   *
   * @returns When it did.
   */
  clientClosed(): Promise<void>;
}

/** Options of {@linkcode MemoryTransport}. */
export interface MemoryTransportOptions {
  /**
   * Called with the server's end of each new connection, before `connect()` resolves. Without
   * it, connections wait to be taken with {@linkcode MemoryTransport.accept}.
   */
  readonly onConnection?: (peer: MemoryPeer) => void;
  /**
   * What the simulated TLS session reports (`Connection.tls`) after `connectTls()` or
   * `startTls()`. Nothing is encrypted.
   * @default {SIMULATED_TLS}
   */
  readonly tls?: TlsInfo;
  /**
   * The client end's local address (the client's default EHLO name is derived from it).
   * @default {"127.0.0.1"}
   */
  readonly localAddress?: string;
}

/**
 * A {@linkcode Transport} that connects in memory: pass it as `transport` in the client's
 * options, and play the server on the {@linkcode MemoryPeer} of each connection. The host name
 * and port are not used to route anything; the peer tells what they were.
 *
 * @example Exact bytes of a pipelined transaction
 * ```ts
 * import { SmtpClient } from "@postie/smtp";
 * import { MemoryTransport } from "@postie/smtp/testing";
 * import assert from "node:assert/strict";
 *
 * const transport = new MemoryTransport();
 * const connecting = SmtpClient.connect({
 *   hostname: "mx.example.com",
 *   tls: "none",
 *   clientName: "client.example.com",
 *   transport,
 * });
 * const server = await transport.accept();
 * await server.write("220 mx.example.com ESMTP\r\n");
 * assert.equal(await server.readLine(), "EHLO client.example.com");
 * await server.write("250-mx.example.com\r\n250 PIPELINING\r\n");
 * const client = await connecting;
 *
 * const sending = client.send({
 *   raw: "Subject: Hi\r\n\r\nHello\r\n",
 *   envelope: { from: "a@example.com", to: ["b@example.com"] },
 * });
 * const envelope = new TextDecoder().decode((await server.read())!);
 * assert.equal(envelope, "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
 * await server.write("250 OK\r\n250 OK\r\n354 Go ahead\r\n");
 * while ((await server.readLine()) !== ".");
 * await server.write("250 Queued\r\n");
 * assert.equal((await sending).accepted.length, 1);
 * client.close();
 * ```
 */
export class MemoryTransport implements Transport {
  readonly #onConnection: ((peer: MemoryPeer) => void) | undefined;
  readonly #tls: TlsInfo;
  readonly #localAddress: string;
  #waiting: MemoryPeer[] = [];
  #acceptors: ((peer: MemoryPeer) => void)[] = [];
  #connections = 0;

  /**
   * Makes a transport.
   *
   * @param options Where new connections go, and the simulated TLS details.
   */
  constructor(options: MemoryTransportOptions = {}) {
    this.#onConnection = options.onConnection;
    this.#tls = options.tls ?? SIMULATED_TLS;
    this.#localAddress = options.localAddress ?? "127.0.0.1";
  }

  /** How many connections were opened so far. */
  get connections(): number {
    return this.#connections;
  }

  /**
   * Opens an in-memory connection.
   *
   * @param options Host name and port (told to the peer); `signal` aborts before anything.
   * @returns The client end.
   */
  connect(options: ConnectOptions): Promise<Connection> {
    return this.#open(options, false);
  }

  /**
   * Opens an in-memory connection that reports simulated TLS from the start (implicit TLS).
   * No certificate is checked.
   *
   * @param options Host name and port (told to the peer); `signal` aborts before anything.
   * @returns The client end.
   */
  connectTls(options: ConnectOptions & TlsConnectOptions): Promise<Connection> {
    return this.#open(options, true);
  }

  /**
   * Marks a connection as secured (STARTTLS): returns a new client end over the same pair
   * that reports {@linkcode MemoryTransportOptions.tls}; the old one must not be used again.
   * Like a real transport, fails when the server sent bytes after its STARTTLS reply.
   *
   * @param connection A connection of this transport.
   * @param options `signal` aborts before anything; nothing else is used.
   * @returns The secured client end.
   */
  startTls(connection: Connection, options: TlsConnectOptions): Promise<Connection> {
    if (!(connection instanceof MemoryConnection)) {
      return Promise.reject(
        new TypeError("Cannot start TLS: the connection was not opened by a MemoryTransport"),
      );
    }
    if (options.signal?.aborted) {
      connection.close();
      return Promise.reject(options.signal.reason);
    }
    let pair: Pair;
    try {
      pair = connection.detach(this);
    } catch (error) {
      return Promise.reject(error);
    }
    pair.tls = { ...this.#tls, peerSubject: `CN=${options.serverName}` };
    return Promise.resolve(new MemoryConnection(pair, this, this.#localAddress, pair.tls));
  }

  /**
   * Waits for the next connection and returns its server end (when no `onConnection` was
   * given).
   *
   * @returns The server's end of the next connection.
   */
  accept(): Promise<MemoryPeer> {
    const peer = this.#waiting.shift();
    if (peer) return Promise.resolve(peer);
    return new Promise((resolve) => this.#acceptors.push(resolve));
  }

  #open(options: ConnectOptions, implicitTls: boolean): Promise<Connection> {
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    const pair = new Pair();
    if (implicitTls) {
      const serverName = (options as Partial<TlsConnectOptions>).serverName ?? options.hostname;
      pair.tls = { ...this.#tls, peerSubject: `CN=${serverName}` };
    }
    const connection = new MemoryConnection(pair, this, this.#localAddress, pair.tls);
    const peer = new PeerEnd(pair, options, implicitTls);
    this.#connections++;
    if (this.#onConnection) {
      this.#onConnection(peer);
    } else {
      const acceptor = this.#acceptors.shift();
      if (acceptor) acceptor(peer);
      else this.#waiting.push(peer);
    }
    return Promise.resolve(connection);
  }
}
