/**
 * The HTTP CONNECT handshake (RFC 9110 section 9.3.6) with Basic proxy authentication
 * (RFC 7617): the tunnel is open after a 2xx answer; bytes after its header stay for the session.
 *
 * @module
 */

import { printable, proxyError, type ProxyName, type ProxyReader } from "./_proxy_reader.ts";
import type { Connection } from "./types.ts";

const encoder = new TextEncoder();
const MAX_HEADER_BYTES = 16 * 1024;

/** What some HTTP status codes mean for a tunnel, in words. */
const HINTS: Readonly<Record<number, string>> = {
  400: "the proxy did not understand the request",
  403: "the proxy does not allow a tunnel to this host or port",
  405: "the proxy does not allow CONNECT",
  407: "", // depends on whether credentials were given
  502: "the proxy could not reach the server",
  503: "the proxy or the server is unavailable",
  504: "the proxy timed out reaching the server",
};

function base64(text: string): string {
  const bytes = encoder.encode(text);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** Runs the CONNECT handshake; the tunnel is open when it returns. */
export async function httpConnectHandshake(
  connection: Connection,
  reader: ProxyReader,
  proxy: ProxyName,
  target: { host: string; port: number },
  credentials: { username: string; password: string } | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  const host = target.host.includes(":") ? `[${target.host}]` : target.host;
  const authority = `${host}:${target.port}`;
  let request = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
  if (credentials) {
    request += `Proxy-Authorization: Basic ${
      base64(`${credentials.username}:${credentials.password}`)
    }\r\n`;
  }
  await connection.write(encoder.encode(`${request}\r\n`), signal);
  const header = await reader.headers(MAX_HEADER_BYTES, "the HTTP CONNECT answer");
  const end = header.indexOf(13);
  const statusLine = printable(header.subarray(0, end === -1 ? header.length : end));
  const match = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
  if (!match) {
    throw proxyError(proxy, `did not answer as an HTTP proxy (got "${statusLine}")`);
  }
  const status = Number(match[1]);
  if (status >= 200 && status < 300) return;
  const reason = match[2] ? ` ${match[2]}` : "";
  let hint = HINTS[status] ?? "";
  if (status === 407) {
    hint = credentials
      ? "the proxy refused the credentials given: check the user and password in the proxy URL"
      : "the proxy requires credentials: give them in the proxy URL (http://user:password@host:port)";
  }
  throw proxyError(
    proxy,
    `refused the tunnel to ${authority}: HTTP ${status}${reason}${hint ? ` (${hint})` : ""}`,
  );
}
