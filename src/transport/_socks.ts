/**
 * The SOCKS handshakes: SOCKS5 (RFC 1928) with username and password (RFC 1929), SOCKS4 and
 * SOCKS4a. Each writes its request and reads the answer exactly, through a {@linkcode ProxyReader}.
 *
 * @module
 */

import { printable, proxyError, type ProxyName, type ProxyReader } from "./_proxy_reader.ts";
import type { Connection } from "./types.ts";

const encoder = new TextEncoder();

/** The words for the SOCKS5 reply codes (RFC 1928 section 6). */
export const SOCKS5_REPLIES: Readonly<Record<number, string>> = {
  1: "general SOCKS server failure",
  2: "connection not allowed by ruleset",
  3: "network unreachable",
  4: "host unreachable",
  5: "connection refused",
  6: "TTL expired",
  7: "command not supported",
  8: "address type not supported",
};

/** The words for the SOCKS4 reply codes. */
export const SOCKS4_REPLIES: Readonly<Record<number, string>> = {
  91: "request rejected or failed",
  92: "request rejected: the proxy cannot reach the identd service on the client",
  93: "request rejected: identd reported a different user id",
};

/** What to connect to through the proxy. */
export interface SocksTarget {
  /** An IP address, or a host name for the proxy to resolve (SOCKS5h, SOCKS4a). */
  readonly host: string;
  readonly port: number;
}

/** Parses an IPv4 literal into 4 bytes, or `undefined`. */
export function ipv4Bytes(host: string): Uint8Array | undefined {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!match) return undefined;
  const bytes = match.slice(1).map(Number);
  if (bytes.some((b) => b > 255)) return undefined;
  return new Uint8Array(bytes);
}

/** Parses an IPv6 literal (brackets allowed) into 16 bytes, or `undefined`. */
export function ipv6Bytes(host: string): Uint8Array | undefined {
  const text = host.replace(/^\[(.*)\]$/, "$1");
  if (!text.includes(":")) return undefined;
  try {
    // The WHATWG URL parser normalises IPv6 literals (and embedded IPv4) to 8 hex groups.
    const normal = new URL(`http://[${text}]/`).hostname.slice(1, -1);
    const halves = normal.split("::");
    const head = halves[0] ? halves[0].split(":") : [];
    const tail = halves.length > 1 && halves[1] ? halves[1].split(":") : [];
    const groups = [...head, ...Array(8 - head.length - tail.length).fill("0"), ...tail];
    const bytes = new Uint8Array(16);
    groups.forEach((group, i) => {
      const value = parseInt(group, 16);
      bytes[2 * i] = value >> 8;
      bytes[2 * i + 1] = value & 0xff;
    });
    return bytes;
  } catch {
    return undefined;
  }
}

function portBytes(port: number): number[] {
  return [port >> 8, port & 0xff];
}

/** The SOCKS5 address of the target: IPv4, IPv6 or a domain name for the proxy to resolve. */
function socks5Address(host: string, proxy: ProxyName): number[] {
  const v4 = ipv4Bytes(host);
  if (v4) return [1, ...v4];
  const v6 = ipv6Bytes(host);
  if (v6) return [4, ...v6];
  const name = encoder.encode(host);
  if (name.length === 0 || name.length > 255) {
    throw proxyError(proxy, `cannot name host "${host}" in SOCKS5: longer than 255 bytes`);
  }
  return [3, name.length, ...name];
}

/** Runs the SOCKS5 handshake (RFC 1928, RFC 1929); the tunnel is open when it returns. */
export async function socks5Handshake(
  connection: Connection,
  reader: ProxyReader,
  proxy: ProxyName,
  target: SocksTarget,
  credentials: { username: string; password: string } | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  const methods = credentials ? [0x00, 0x02] : [0x00];
  await connection.write(new Uint8Array([5, methods.length, ...methods]), signal);
  const choice = await reader.take(2, "the SOCKS5 greeting");
  if (choice[0] !== 5) {
    throw proxyError(
      proxy,
      `did not answer as a SOCKS5 server (got "${printable(choice)}", version byte ${choice[0]})`,
    );
  }
  const method = choice[1]!;
  if (method === 0xff) {
    throw proxyError(
      proxy,
      credentials
        ? "accepted none of the authentication methods offered (none, username/password)"
        : "requires authentication: give a username and password in the proxy URL",
    );
  }
  if (!methods.includes(method)) {
    throw proxyError(
      proxy,
      `chose authentication method ${method}, which was not offered (offered: ${
        methods.join(", ")
      })`,
    );
  }
  if (method === 0x02 && credentials) {
    const user = encoder.encode(credentials.username);
    const pass = encoder.encode(credentials.password);
    await connection.write(
      new Uint8Array([1, user.length, ...user, pass.length, ...pass]),
      signal,
    );
    const status = await reader.take(2, "SOCKS5 username/password authentication");
    if (status[0] !== 1) {
      throw proxyError(proxy, `sent a malformed authentication answer (version ${status[0]})`);
    }
    if (status[1] !== 0) {
      throw proxyError(
        proxy,
        `refused the username and password (status ${status[1]}): check the proxy credentials`,
      );
    }
  }
  await connection.write(
    new Uint8Array([5, 1, 0, ...socks5Address(target.host, proxy), ...portBytes(target.port)]),
    signal,
  );
  const step = "the SOCKS5 CONNECT reply";
  const head = await reader.take(4, step);
  if (head[0] !== 5) {
    throw proxyError(proxy, `sent a malformed CONNECT reply (version byte ${head[0]})`);
  }
  const reply = head[1]!;
  if (reply !== 0) {
    const words = SOCKS5_REPLIES[reply] ?? "unknown reply code";
    throw proxyError(
      proxy,
      `could not connect to ${target.host}:${target.port}: ${words} (SOCKS5 reply ${reply})`,
    );
  }
  const type = head[3];
  const length = type === 1
    ? 4
    : type === 4
    ? 16
    : type === 3
    ? (await reader.take(1, step))[0]!
    : undefined;
  if (length === undefined) {
    throw proxyError(proxy, `sent a CONNECT reply with unknown address type ${type}`);
  }
  await reader.take(length + 2, step);
}

/** Runs the SOCKS4 (IPv4 `host`) or SOCKS4a (a name for the proxy to resolve) handshake. */
export async function socks4Handshake(
  connection: Connection,
  reader: ProxyReader,
  proxy: ProxyName,
  target: SocksTarget,
  userId: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  const v4 = ipv4Bytes(target.host);
  const user = encoder.encode(userId);
  let request: number[];
  if (v4) {
    request = [4, 1, ...portBytes(target.port), ...v4, ...user, 0];
  } else {
    // SOCKS4a: the address 0.0.0.1 says the name follows the user id.
    request = [
      4,
      1,
      ...portBytes(target.port),
      0,
      0,
      0,
      1,
      ...user,
      0,
      ...encoder.encode(target.host),
      0,
    ];
  }
  await connection.write(new Uint8Array(request), signal);
  const reply = await reader.take(8, "the SOCKS4 reply");
  if (reply[0] !== 0 && reply[0] !== 4) {
    throw proxyError(
      proxy,
      `did not answer as a SOCKS4 server (got "${printable(reply)}", version byte ${reply[0]})`,
    );
  }
  const code = reply[1]!;
  if (code !== 90) {
    const words = SOCKS4_REPLIES[code] ?? "unknown reply code";
    throw proxyError(
      proxy,
      `could not connect to ${target.host}:${target.port}: ${words} (SOCKS4 reply ${code})`,
    );
  }
}
