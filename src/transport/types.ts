/**
 * The runtime seam: the only interfaces through which the library touches the network and the
 * file system. `deno.ts` and `node.ts` implement them; tests and proxies may supply their own.
 *
 * @module
 */

import type { FileOpener } from "../file_opener.ts";

export type { FileOpener, OpenedFile } from "../file_opener.ts";

/** Where to connect, and how long to wait. */
export interface ConnectOptions {
  /** Host name or IP address to connect to. */
  readonly hostname: string;
  /** TCP port. */
  readonly port: number;
  /**
   * A Unix domain socket to connect to instead of `hostname:port`; `hostname` still names the
   * server (for TLS and in messages).
   */
  readonly path?: string;
  /** Aborts the attempt; the connection (if any) is closed. Timeouts arrive through it too. */
  readonly signal?: AbortSignal;
}

/** How to secure a connection with TLS. */
export interface TlsConnectOptions {
  /** The name the certificate must be valid for (also sent as SNI when it is not an IP). */
  readonly serverName: string;
  /** Extra PEM-encoded CA certificates to trust, in addition to the system roots. */
  readonly caCerts?: readonly string[];
  /** A PEM client certificate and key for mutual TLS (implicit TLS only on Deno). */
  readonly clientCertificate?: { readonly cert: string; readonly key: string };
  /** Aborts the handshake; the connection is closed. */
  readonly signal?: AbortSignal;
}

/** What the runtime tells about an established TLS session, where it exposes it. */
export interface TlsInfo {
  /** e.g. `TLSv1.3`. */
  readonly protocol?: string;
  /** e.g. `TLS_AES_256_GCM_SHA384`. */
  readonly cipher?: string;
  /** The peer certificate's subject, e.g. `CN=mail.example.com`. */
  readonly peerSubject?: string;
  /** The ALPN protocol, if any. */
  readonly alpnProtocol?: string | null;
}

/** One open byte stream to a server. */
export interface Connection {
  /**
   * Reads the next chunk of bytes, or `null` at end of stream. The returned array is owned by
   * the caller. When `signal` aborts, the connection is closed and the promise rejects with the
   * signal's reason.
   */
  read(signal?: AbortSignal): Promise<Uint8Array | null>;
  /**
   * Writes all of `data`. When `signal` aborts, the connection is closed and the promise rejects
   * with the signal's reason.
   */
  write(data: Uint8Array, signal?: AbortSignal): Promise<void>;
  /**
   * Writes `chunks` one after another, as {@linkcode write} would write them joined, without
   * joining them (one vectored write where the runtime has it). Optional: without it, callers
   * join the chunks and call {@linkcode write}.
   */
  writev?(chunks: readonly Uint8Array[], signal?: AbortSignal): Promise<void>;
  /** Closes the connection now. Idempotent; pending reads and writes reject or end. */
  close(): void;
  /** True once `close()` was called or the peer ended the stream. */
  readonly closed: boolean;
  /** Set when the connection is encrypted. */
  readonly tls?: TlsInfo;
  /** The local IP address, used for the default EHLO name. */
  readonly localAddress?: string;
}

/** Opens connections. One implementation per runtime. */
export interface Transport {
  /** Opens a TCP connection. */
  connect(options: ConnectOptions): Promise<Connection>;
  /** Opens a TCP connection and completes a TLS handshake before returning (implicit TLS). */
  connectTls(options: ConnectOptions & TlsConnectOptions): Promise<Connection>;
  /**
   * Upgrades an open connection to TLS (STARTTLS) and completes the handshake. The old
   * connection must not be used afterwards; nothing may be reading from it when this is called.
   */
  startTls(connection: Connection, options: TlsConnectOptions): Promise<Connection>;
  /** The local machine's host name, if the runtime can tell (for the EHLO name). */
  hostname?(): string | undefined;
  /**
   * Opens `{ path }` attachments for the clients and pools that use this transport. Optional:
   * without it, the runtime's own file opener is used (`Deno.open`, `node:fs`). A transport for a
   * runtime without a file system (Cloudflare Workers) sets it to refuse with a clear error.
   */
  openFile?: FileOpener;
}
