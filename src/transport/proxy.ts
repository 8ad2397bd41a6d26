/**
 * A {@linkcode Transport} that reaches the SMTP server through a proxy: SOCKS5 (RFC 1928, with
 * username and password per RFC 1929; `socks5h` lets the proxy resolve the name), SOCKS4,
 * SOCKS4a, or an HTTP proxy's CONNECT tunnel (with Basic authentication). It wraps the runtime's
 * own transport: TCP goes to the proxy, the handshake runs over that connection, and TLS (implicit
 * or STARTTLS) runs end to end through the tunnel, the certificate verified against the SMTP
 * server's name, never the proxy's.
 *
 * @module
 */

import { lookup } from "node:dns/promises";
import { SmtpConnectionError, SmtpProtocolError } from "../errors.ts";
import { httpConnectHandshake } from "./_http_connect.ts";
import { proxyError, ProxyReader } from "./_proxy_reader.ts";
import { ipv4Bytes, ipv6Bytes, socks4Handshake, socks5Handshake } from "./_socks.ts";
import type { Connection, ConnectOptions, TlsConnectOptions, Transport } from "./types.ts";

/** The kinds of proxy, by URL scheme. */
export type ProxyKind = "socks5" | "socks5h" | "socks4" | "socks4a" | "http";

const KINDS: readonly ProxyKind[] = ["socks5", "socks5h", "socks4", "socks4a", "http"];

/** A proxy URL, checked and taken apart. */
export interface ProxySpec {
  readonly kind: ProxyKind;
  readonly hostname: string;
  readonly port: number;
  /** The proxy as errors name it: scheme, host and port, never credentials. */
  readonly display: string;
  readonly credentials?: { readonly username: string; readonly password: string };
}

/**
 * Checks a proxy URL (`socks5://user:pass@host:1080`, `socks5h://`, `socks4://`, `socks4a://`,
 * `http://`); throws a `TypeError` that never shows the credentials.
 */
export function parseProxy(proxy: string | URL): ProxySpec {
  let url: URL;
  try {
    url = typeof proxy === "string" ? new URL(proxy) : new URL(proxy.href);
  } catch {
    throw new TypeError(
      "Invalid proxy: not a URL (expected e.g. socks5://host:1080 or http://host:3128)",
    );
  }
  const kind = url.protocol.slice(0, -1).toLowerCase() as ProxyKind;
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (!KINDS.includes(kind)) {
    throw new TypeError(
      `Invalid proxy: unsupported scheme "${url.protocol}" (expected socks5:, socks5h:, ` +
        `socks4:, socks4a: or http:)`,
    );
  }
  if (!hostname) throw new TypeError("Invalid proxy: no host");
  if ((url.pathname !== "" && url.pathname !== "/") || url.search || url.hash) {
    throw new TypeError(`Invalid proxy ${kind}://${url.host}: a proxy URL has no path or query`);
  }
  const port = url.port ? Number(url.port) : kind === "http" ? 80 : 1080;
  const display = `${kind}://${url.host.includes(":") ? url.host : `${url.hostname}:${port}`}`;
  let credentials: ProxySpec["credentials"];
  if (url.username || url.password) {
    let username: string;
    let password: string;
    try {
      username = decodeURIComponent(url.username);
      password = decodeURIComponent(url.password);
    } catch {
      throw new TypeError(`Invalid proxy ${display}: bad percent-encoding in the credentials`);
    }
    if (/[\r\n\0]/.test(username + password)) {
      throw new TypeError(`Invalid proxy ${display}: line break or NUL in the credentials`);
    }
    if (kind === "socks5" || kind === "socks5h") {
      const encoder = new TextEncoder();
      if (
        encoder.encode(username).length > 255 || encoder.encode(password).length > 255 ||
        !username
      ) {
        throw new TypeError(
          `Invalid proxy ${display}: SOCKS5 needs a username, and both at most 255 bytes`,
        );
      }
    }
    if ((kind === "socks4" || kind === "socks4a") && password) {
      throw new TypeError(
        `Invalid proxy ${display}: SOCKS4 has no password (only a user id: socks4://user@host)`,
      );
    }
    credentials = { username, password };
  }
  return { kind, hostname, port, display, ...(credentials ? { credentials } : {}) };
}

/** A tunnelled connection: the bytes that came after the proxy's answer are read first. */
class ProxiedConnection implements Connection {
  readonly inner: Connection;
  readonly localAddress?: string;
  #pending: Uint8Array | undefined;

  constructor(inner: Connection, pending: Uint8Array) {
    this.inner = inner;
    if (inner.localAddress !== undefined) this.localAddress = inner.localAddress;
    if (pending.length) this.#pending = pending;
  }

  /** The number of bytes the proxy passed on with its answer, not read yet. */
  get pending(): number {
    return this.#pending?.length ?? 0;
  }

  read(signal?: AbortSignal): Promise<Uint8Array | null> {
    const pending = this.#pending;
    if (pending) {
      this.#pending = undefined;
      return Promise.resolve(pending);
    }
    return this.inner.read(signal);
  }

  write(data: Uint8Array, signal?: AbortSignal): Promise<void> {
    return this.inner.write(data, signal);
  }

  close(): void {
    this.#pending = undefined;
    this.inner.close();
  }

  get closed(): boolean {
    return this.inner.closed;
  }
}

/** The target's address for a SOCKS request: resolved here, unless the proxy resolves it. */
async function socksTarget(spec: ProxySpec, hostname: string): Promise<string> {
  const bare = hostname.replace(/^\[(.*)\]$/, "$1");
  if (spec.kind === "socks5h" || spec.kind === "socks4a") return bare;
  if (ipv4Bytes(bare) || (spec.kind === "socks5" && ipv6Bytes(bare))) return bare;
  try {
    const found = await lookup(bare, spec.kind === "socks4" ? { family: 4 } : {});
    return found.address;
  } catch (error) {
    throw new SmtpConnectionError(
      `Cannot resolve ${bare} (to connect through proxy ${spec.display}; with socks5h:// or ` +
        `socks4a:// the proxy resolves it): ${error instanceof Error ? error.message : error}`,
      "connect",
      { cause: error },
    );
  }
}

/** A {@linkcode Transport} through the proxy `spec` over the transport `inner`. */
class ProxyTransport implements Transport {
  #spec: ProxySpec;
  #inner: Transport;

  constructor(spec: ProxySpec, inner: Transport) {
    this.#spec = spec;
    this.#inner = inner;
  }

  async connect(options: ConnectOptions): Promise<Connection> {
    const spec = this.#spec;
    const { signal } = options;
    const host = spec.kind === "http"
      ? options.hostname
      : await socksTarget(spec, options.hostname);
    signal?.throwIfAborted();
    let connection: Connection;
    try {
      connection = await this.#inner.connect({
        hostname: spec.hostname,
        port: spec.port,
        ...(signal ? { signal } : {}),
      });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw proxyError(
        spec,
        `cannot connect to the proxy: ${error instanceof Error ? error.message : error}`,
        error,
      );
    }
    const reader = new ProxyReader(connection, spec, signal);
    const target = { host, port: options.port };
    try {
      if (spec.kind === "http") {
        await httpConnectHandshake(connection, reader, spec, target, spec.credentials, signal);
      } else if (spec.kind === "socks4" || spec.kind === "socks4a") {
        await socks4Handshake(
          connection,
          reader,
          spec,
          target,
          spec.credentials?.username ?? "",
          signal,
        );
      } else {
        await socks5Handshake(connection, reader, spec, target, spec.credentials, signal);
      }
    } catch (error) {
      connection.close();
      if (signal?.aborted) throw signal.reason;
      throw error;
    }
    return new ProxiedConnection(connection, reader.rest());
  }

  async connectTls(options: ConnectOptions & TlsConnectOptions): Promise<Connection> {
    const tunnel = await this.connect(options) as ProxiedConnection;
    const pending = tunnel.pending;
    if (pending > 0) {
      // With implicit TLS the client speaks first: bytes before the handshake are not the
      // server's TLS answer, and must not be taken for one (nor for the SMTP greeting).
      tunnel.close();
      throw proxyError(
        this.#spec,
        `sent ${pending} bytes after its answer, before the TLS handshake: refusing to ` +
          "continue (possible injection)",
      );
    }
    return await this.#inner.startTls(tunnel.inner, options);
  }

  async startTls(connection: Connection, options: TlsConnectOptions): Promise<Connection> {
    if (!(connection instanceof ProxiedConnection)) {
      return await this.#inner.startTls(connection, options);
    }
    if (connection.pending > 0) {
      connection.close();
      throw new SmtpProtocolError(
        "Server sent data before the TLS handshake (possible response injection): refusing " +
          "to continue",
        "starttls",
      );
    }
    return await this.#inner.startTls(connection.inner, options);
  }

  hostname(): string | undefined {
    return this.#inner.hostname?.();
  }

  toString(): string {
    return `ProxyTransport(${this.#spec.display})`;
  }

  toJSON(): string {
    return this.toString();
  }
}

/**
 * Wraps `inner` (the runtime's transport, or any other) so that every connection goes through
 * the proxy `proxy`.
 *
 * @param proxy The proxy URL, e.g. `socks5h://user:pass@proxy.example.com:1080`.
 * @param inner The transport that reaches the proxy.
 * @returns A transport for `ClientOptions.transport`.
 */
export function proxyTransport(proxy: string | URL | ProxySpec, inner: Transport): Transport {
  const spec = typeof proxy === "string" || proxy instanceof URL ? parseProxy(proxy) : proxy;
  return new ProxyTransport(spec, inner);
}
