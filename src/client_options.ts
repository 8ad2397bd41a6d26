/**
 * Client options: defaults applied and every value checked before any network I/O.
 *
 * @module
 */

import type { AuthOptions } from "./auth/types.ts";
import { resolveDkim, type ResolvedSigner } from "./dkim/_signer.ts";
import type { ClientOptions, SendOptions, TlsMode } from "./options.ts";
import { checkFields, CLIENT_FIELDS, NODEMAILER_AUTH, NODEMAILER_OPTIONS } from "./_fields.ts";
import * as commands from "./protocol/_commands.ts";
import type { ResolvedTimeouts } from "./protocol/_transaction.ts";
import { defaultTransport, openFile } from "./transport/default.ts";
import { parseProxy, proxyTransport } from "./transport/proxy.ts";
import type { Connection, FileOpener, Transport } from "./transport/types.ts";

export const DEFAULT_TIMEOUTS: ResolvedTimeouts = {
  connectMs: 15_000,
  greetingMs: 30_000,
  commandMs: 60_000,
  dataEndMs: 300_000,
  quitMs: 5_000,
  totalMs: 900_000,
};

/** Options after defaults were applied and input was checked. */
export interface ResolvedOptions {
  readonly hostname: string;
  readonly port: number;
  /** A Unix domain socket to connect to instead of `hostname:port`. */
  readonly path: string | undefined;
  readonly tls: TlsMode;
  /** SMTP, or LMTP (RFC 2033). */
  readonly protocol: "smtp" | "lmtp";
  readonly serverName: string;
  readonly caCerts: readonly string[] | undefined;
  readonly clientCertificate: { readonly cert: string; readonly key: string } | undefined;
  readonly clientName: string | undefined;
  readonly auth: AuthOptions | undefined;
  readonly timeouts: ResolvedTimeouts;
  readonly pipelining: boolean;
  readonly chunking: boolean;
  readonly transport: Transport;
  /** Who signs every message with DKIM (empty: nobody). */
  readonly dkim: readonly ResolvedSigner[];
  readonly options: ClientOptions;
}

function defaultPort(tls: TlsMode | undefined): number {
  return tls === "implicit" ? 465 : tls === "none" ? 25 : 587;
}

function checkTimeout(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
    throw new RangeError(`Invalid timeouts.${name}: must be a positive number, got ${value}`);
  }
}

/**
 * Who opens `{ path }` attachments: the file opener of the caller's transport (Workers refuse),
 * else the runtime's own.
 */
export function fileOpener(options: ClientOptions): FileOpener {
  return options.transport?.openFile ?? openFile;
}

/** Applies defaults and rejects bad input before any network I/O. */
export function resolveOptions(options: ClientOptions): ResolvedOptions {
  checkClientFields(options, CLIENT_FIELDS, "client options");
  const { hostname } = options;
  if (typeof hostname !== "string" || hostname.trim() === "") {
    throw new TypeError("Invalid hostname: must be a non-empty string");
  }
  commands.assertNoLineBreak(hostname, "hostname");
  const port = options.port ?? defaultPort(options.tls);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`Invalid port: ${port}`);
  }
  const tls: TlsMode = options.tls ?? (port === 465 ? "implicit" : "starttls");
  if (tls !== "implicit" && tls !== "starttls" && tls !== "none") {
    const hint = typeof tls === "object"
      ? ": postie takes TLS settings as tlsOptions (caCerts, serverName); certificates are " +
        "always verified"
      : ' (expected "implicit", "starttls" or "none")';
    throw new TypeError(`Invalid tls mode: ${JSON.stringify(tls)}${hint}`);
  }
  if (options.clientName !== undefined) checkClientName(options.clientName);
  const auth = options.auth || undefined;
  if (auth && tls === "none") checkPlaintextAuth(options);
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  for (const [name, value] of Object.entries(timeouts)) checkTimeout(name, value);
  const inner = options.transport ?? defaultTransport;
  const proxy = options.proxy === undefined ? undefined : parseProxy(options.proxy);
  const protocol = options.protocol ?? "smtp";
  if (protocol !== "smtp" && protocol !== "lmtp") {
    throw new TypeError(
      `Invalid protocol: ${JSON.stringify(protocol)} (expected "smtp" or "lmtp")`,
    );
  }
  const path = options.path;
  if (path !== undefined) {
    if (typeof path !== "string" || path === "" || path.includes("\0")) {
      throw new TypeError("Invalid path: must be the non-empty path of a Unix domain socket");
    }
    if (proxy) throw new TypeError("Invalid options: give path or proxy, not both");
  }
  const serverName = options.tlsOptions?.serverName ?? hostname;
  commands.assertNoLineBreak(serverName, "tlsOptions.serverName");
  return {
    hostname,
    port,
    path,
    tls,
    protocol,
    serverName,
    caCerts: options.tlsOptions?.caCerts,
    clientCertificate: options.tlsOptions?.clientCertificate,
    clientName: options.clientName,
    auth,
    timeouts,
    pipelining: options.pipelining ?? true,
    // LMTP (RFC 2033) defines one reply per recipient after DATA; BDAT is not part of it.
    chunking: protocol === "lmtp" ? false : options.chunking ?? true,
    transport: proxy ? proxyTransport(proxy, inner) : inner,
    dkim: options.dkim === undefined ? [] : resolveDkim(options.dkim),
    options,
  };
}

const DOMAIN =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

const ADDRESS_LITERAL = /^\[(?:\d{1,3}(?:\.\d{1,3}){3}|IPv6:[0-9A-Fa-f:.]+)\]$/;

function checkClientName(name: string): void {
  commands.assertNoLineBreak(name, "clientName");
  if (!DOMAIN.test(name) && !ADDRESS_LITERAL.test(name)) {
    throw new TypeError(
      `Invalid clientName ${JSON.stringify(name)}: must be a domain name or an address literal ` +
        `such as [192.0.2.1]`,
    );
  }
}

/** The EHLO name: the host name when it is a valid domain, else the local address literal. */
export function defaultClientName(transport: Transport, connection: Connection): string {
  const host = transport.hostname?.();
  if (host && DOMAIN.test(host)) return host;
  const address = connection.localAddress;
  if (address && address.includes(":")) return `[IPv6:${address}]`;
  if (address && /^\d{1,3}(?:\.\d{1,3}){3}$/.test(address)) return `[${address}]`;
  return "[127.0.0.1]";
}

const NOTIFY = new Set(["SUCCESS", "FAILURE", "DELAY"]);

/** Throws a `TypeError` or `RangeError` for send options that cannot be used. */
export function checkSendOptions(options: SendOptions): void {
  if (typeof options === "function") {
    throw new TypeError(
      "Invalid send options: a function (postie takes no callback: await the promise instead)",
    );
  }
  checkFields(options, SEND_FIELDS, "send options");
  if (options.beforeTerminator !== undefined && typeof options.beforeTerminator !== "function") {
    throw new TypeError("Invalid send options: beforeTerminator must be a function");
  }
  const dsn = options.dsn;
  if (!dsn) return;
  checkFields(dsn, ["ret", "envid", "notify", "orcpt"], "dsn");
  if (dsn.ret !== undefined && dsn.ret !== "FULL" && dsn.ret !== "HDRS") {
    throw new TypeError(`Invalid dsn.ret: ${JSON.stringify(dsn.ret)}`);
  }
  if (dsn.envid !== undefined) {
    commands.assertNoLineBreak(dsn.envid, "dsn.envid");
    if (commands.encodeXtext(dsn.envid).length > 100) {
      throw new RangeError("Invalid dsn.envid: longer than 100 characters once encoded as xtext");
    }
  }
  if (dsn.notify) {
    const notify: readonly string[] = dsn.notify;
    const valid = notify.length > 0 &&
      (notify.length === 1 && notify[0] === "NEVER" || notify.every((n) => NOTIFY.has(n)));
    if (!valid) throw new TypeError(`Invalid dsn.notify: ${JSON.stringify(notify)}`);
  }
}

const SEND_FIELDS = [
  "signal",
  "rejectOnPartialFailure",
  "envelope",
  "dsn",
  "requireTls",
  "dkim",
  "beforeTerminator",
];

/**
 * Refuses unknown fields in client (or pool) options and in their nested objects, naming the
 * field meant: a typo's closest field, or postie's name for one of nodemailer's.
 */
export function checkClientFields(
  options: ClientOptions,
  known: readonly string[],
  what: string,
): void {
  checkFields(options, known, what, NODEMAILER_OPTIONS);
  checkFields(options.tlsOptions, ["caCerts", "serverName", "clientCertificate"], "tlsOptions", {
    rejectUnauthorized: "certificates are always verified; trust a private CA with caCerts",
    ca: 'postie calls it "caCerts" (PEM strings)',
    servername: 'postie calls it "serverName"',
  });
  checkFields(
    options.timeouts,
    ["connectMs", "greetingMs", "commandMs", "dataEndMs", "quitMs", "totalMs"],
    "timeouts",
  );
  checkFields(options.limits, ["maxLineLength", "maxLines"], "limits");
  const auth = options.auth;
  if (auth && typeof auth === "object" && !("sasl" in auth)) {
    checkFields(
      auth,
      ["username", "password", "mechanisms", "token", "mechanism"],
      "auth",
      NODEMAILER_AUTH,
    );
  }
}

/**
 * The one rule for credentials without TLS: refused, unless the host is listed by name in
 * `allowPlaintextAuth`. Checked when the options are read (`tls: "none"`) and again before
 * AUTH, on the connection as it is.
 */
export function checkPlaintextAuth(options: ClientOptions): void {
  if ((options.allowPlaintextAuth ?? []).includes(options.hostname)) return;
  throw new TypeError(
    `Refusing to authenticate to ${options.hostname} without TLS: credentials would travel in ` +
      `clear text. Use tls: "starttls" or "implicit", or list the host in allowPlaintextAuth ` +
      `for local testing`,
  );
}
