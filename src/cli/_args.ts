/**
 * Command-line parsing for `postie`: flags (through `node:util` `parseArgs`) and environment
 * variables become a checked configuration. Nothing here reads a file or opens a socket.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { PasswordMechanism } from "../auth/types.ts";
import type { TlsMode } from "../options.ts";
import { parseProxy } from "../transport/proxy.ts";
import { UsageError } from "./exit_codes.ts";

/** Where to connect; `port` undefined means the library's default for the TLS mode. */
export interface ServerAddress {
  readonly hostname: string;
  readonly port?: number;
}

/** One `--attach` value: `path[;type=...][;cid=...][;name=...]`. */
export interface AttachSpec {
  readonly path: string;
  readonly contentType?: string;
  readonly contentId?: string;
  readonly filename?: string;
}

/** `--dkim-domain`, `--dkim-selector` and `--dkim-key`: one signature per key file. */
export interface DkimConfig {
  readonly domain: string;
  readonly keys: readonly { readonly path: string; readonly selector: string }[];
}

/** What both commands share. */
export interface CommonConfig {
  /** Undefined: use the embedded local server. */
  readonly server?: ServerAddress;
  readonly tls?: TlsMode;
  readonly caFiles: readonly string[];
  readonly serverName?: string;
  /** A proxy URL (`--proxy`, or `POSTIE_PROXY` when it carries a password). */
  readonly proxy?: string;
  readonly ehlo?: string;
  readonly timeoutMs?: number;
  readonly allowPlaintextAuth: boolean;
  readonly transcript: boolean;
  readonly json: boolean;
}

/** `postie send`. */
export interface SendConfig extends CommonConfig {
  readonly command: "send";
  readonly user?: string;
  readonly authMechanism?: string;
  readonly from?: string;
  readonly to: readonly string[];
  readonly cc: readonly string[];
  readonly bcc: readonly string[];
  readonly subject?: string;
  /** As given: inline text, or `@path` / `@-`. */
  readonly text?: string;
  readonly html?: string;
  readonly attach: readonly AttachSpec[];
  readonly headers: readonly { readonly key: string; readonly value: string }[];
  readonly dryRun: boolean;
  readonly dkim?: DkimConfig;
}

/** `postie check`. */
export interface CheckConfig extends CommonConfig {
  readonly command: "check";
}

/** `--help`, for the whole program or one command. */
export interface HelpRequest {
  readonly command: "help";
  readonly topic?: "send" | "check";
}

/** A parsed command line. */
export type Config = SendConfig | CheckConfig | HelpRequest;

/** The password mechanisms `--auth-mechanism` accepts. */
export const PASSWORD_MECHANISMS: readonly PasswordMechanism[] = [
  "SCRAM-SHA-256",
  "CRAM-MD5",
  "PLAIN",
  "LOGIN",
  "DIGEST-MD5",
];
/** The token mechanisms `--auth-mechanism` accepts. */
export const TOKEN_MECHANISMS: readonly ("XOAUTH2" | "OAUTHBEARER")[] = ["XOAUTH2", "OAUTHBEARER"];

const OPTIONS = {
  server: { type: "string" },
  tls: { type: "string" },
  "ca-file": { type: "string", multiple: true },
  "server-name": { type: "string" },
  proxy: { type: "string" },
  ehlo: { type: "string" },
  timeout: { type: "string" },
  "allow-plaintext-auth": { type: "boolean" },
  transcript: { type: "boolean" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  // send only
  user: { type: "string" },
  "auth-mechanism": { type: "string" },
  from: { type: "string" },
  to: { type: "string", multiple: true },
  cc: { type: "string", multiple: true },
  bcc: { type: "string", multiple: true },
  subject: { type: "string" },
  text: { type: "string" },
  html: { type: "string" },
  attach: { type: "string", multiple: true },
  header: { type: "string", multiple: true },
  "dry-run": { type: "boolean" },
  "dkim-domain": { type: "string" },
  "dkim-selector": { type: "string", multiple: true },
  "dkim-key": { type: "string", multiple: true },
} as const;

const SEND_ONLY = [
  "user",
  "auth-mechanism",
  "from",
  "to",
  "cc",
  "bcc",
  "subject",
  "text",
  "html",
  "attach",
  "header",
  "dry-run",
  "dkim-domain",
  "dkim-selector",
  "dkim-key",
] as const;

/** Reads an environment variable; an empty value counts as unset. */
/**
 * `--proxy URL`, else `POSTIE_PROXY`: checked here, so that a bad URL is a usage error. A
 * password belongs in `POSTIE_PROXY` only: command lines are visible to other users.
 */
function proxyOption(flag: string | undefined, env: string | undefined): { proxy?: string } {
  const value = flag ?? env;
  if (value === undefined) return {};
  try {
    const spec = parseProxy(value);
    if (flag !== undefined && spec.credentials?.password) {
      throw new TypeError(
        `Refusing a password in --proxy ${spec.display} (command lines are visible to other ` +
          "users): give the URL in the environment variable POSTIE_PROXY instead",
      );
    }
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  return { proxy: value };
}

function fromEnv(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
): string | undefined {
  const value = env[name];
  return value === undefined || value === "" ? undefined : value;
}

/**
 * Parses `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
 *
 * @param value The `--server` value.
 * @returns The host name and, when given, the port.
 */
export function parseServer(value: string): ServerAddress {
  const bad = (why: string) => new UsageError(`Invalid --server ${JSON.stringify(value)}: ${why}`);
  let hostname: string;
  let portText: string | undefined;
  if (value.startsWith("[")) {
    const end = value.indexOf("]");
    if (end === -1) throw bad("missing ]");
    hostname = value.slice(1, end);
    const rest = value.slice(end + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) throw bad("expected :port after ]");
      portText = rest.slice(1);
    }
  } else {
    const colons = value.split(":").length - 1;
    if (colons === 1) [hostname, portText] = value.split(":") as [string, string];
    else hostname = value;
  }
  if (hostname === "" || /\s/.test(hostname)) throw bad("expected host or host:port");
  if (portText === undefined) return { hostname };
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
    throw bad("the port must be a number from 1 to 65535");
  }
  return { hostname, port };
}

/**
 * Parses one `--attach` value: a path, then optional `;type=`, `;cid=` and `;name=` parameters.
 *
 * @param value The `--attach` value.
 * @returns The file and its settings.
 */
export function parseAttach(value: string): AttachSpec {
  const [path = "", ...params] = value.split(";");
  if (path.trim() === "") throw new UsageError(`Invalid --attach ${JSON.stringify(value)}`);
  const spec: { path: string; contentType?: string; contentId?: string; filename?: string } = {
    path,
  };
  for (const param of params) {
    const eq = param.indexOf("=");
    const key = param.slice(0, eq).trim().toLowerCase();
    const val = param.slice(eq + 1).trim();
    if (eq === -1 || val === "") {
      throw new UsageError(
        `Invalid --attach ${JSON.stringify(value)}: expected path;type=...;cid=...;name=...`,
      );
    }
    if (key === "type") spec.contentType = val;
    else if (key === "cid") spec.contentId = val;
    else if (key === "name") spec.filename = val;
    else {
      throw new UsageError(
        `Invalid --attach ${JSON.stringify(value)}: unknown parameter ${JSON.stringify(key)} ` +
          `(type, cid or name)`,
      );
    }
  }
  return spec;
}

function parseHeader(value: string): { key: string; value: string } {
  const colon = value.indexOf(":");
  const key = value.slice(0, colon).trim();
  if (colon === -1 || key === "") {
    throw new UsageError(`Invalid --header ${JSON.stringify(value)}: expected "Name: value"`);
  }
  return { key, value: value.slice(colon + 1).trim() };
}

function parseTimeout(value: string): number {
  const seconds = Number(value);
  if (value.trim() === "" || !Number.isFinite(seconds) || seconds <= 0) {
    throw new UsageError(`Invalid --timeout ${JSON.stringify(value)}: expected seconds, e.g. 30`);
  }
  return Math.round(seconds * 1000);
}

/**
 * Pairs `--dkim-key` files with selectors: one `--dkim-selector` for every key, or one per key
 * in the same order.
 */
function parseDkim(
  domain: string | undefined,
  selectors: readonly string[],
  keys: readonly string[],
): DkimConfig | undefined {
  if (domain === undefined && selectors.length === 0 && keys.length === 0) return undefined;
  if (domain === undefined) throw new UsageError("DKIM signing needs --dkim-domain");
  if (keys.length === 0) throw new UsageError("DKIM signing needs --dkim-key FILE");
  if (selectors.length !== 1 && selectors.length !== keys.length) {
    throw new UsageError(
      selectors.length === 0
        ? "DKIM signing needs --dkim-selector"
        : `Give one --dkim-selector for all --dkim-key files, or one per file (${keys.length})`,
    );
  }
  return {
    domain,
    keys: keys.map((path, i) => ({ path, selector: selectors[selectors.length === 1 ? 0 : i]! })),
  };
}

function parseTls(value: string): TlsMode {
  if (value === "implicit" || value === "starttls" || value === "none") return value;
  throw new UsageError(
    `Invalid --tls ${JSON.stringify(value)}: expected implicit, starttls or none`,
  );
}

/**
 * Turns the command line and the environment into a checked configuration.
 *
 * @param args The arguments after the program name, e.g. `["send", "--to", "a@b.example"]`.
 * @param env The environment (`POSTIE_SERVER`, `POSTIE_USER`).
 * @returns The configuration.
 * @throws {UsageError} When an option is unknown, missing or has a bad value.
 */
export function parseCommandLine(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Config {
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.replace(/\.?$/, "").split(". To specify")[0]!);
  }
  const { values, positionals } = parsed;
  const [command, ...extra] = positionals;
  if (command === undefined || command === "help") {
    if (values.help || command === "help") {
      const topic = extra[0];
      return topic === "send" || topic === "check" ? { command: "help", topic } : {
        command: "help",
      };
    }
    throw new UsageError("Missing command: send or check");
  }
  if (command !== "send" && command !== "check") {
    throw new UsageError(`Unknown command ${JSON.stringify(command)}: expected send or check`);
  }
  if (values.help) return { command: "help", topic: command };
  if (extra.length > 0) {
    throw new UsageError(
      `Unexpected argument ${JSON.stringify(extra[0])} (values need an option, e.g. --to)`,
    );
  }

  const serverText = values.server ?? fromEnv(env, "POSTIE_SERVER");
  const common: CommonConfig = {
    ...(serverText !== undefined ? { server: parseServer(serverText) } : {}),
    ...(values.tls !== undefined ? { tls: parseTls(values.tls) } : {}),
    caFiles: values["ca-file"] ?? [],
    ...(values["server-name"] !== undefined ? { serverName: values["server-name"] } : {}),
    ...proxyOption(values.proxy, fromEnv(env, "POSTIE_PROXY")),
    ...(values.ehlo !== undefined ? { ehlo: values.ehlo } : {}),
    ...(values.timeout !== undefined ? { timeoutMs: parseTimeout(values.timeout) } : {}),
    allowPlaintextAuth: values["allow-plaintext-auth"] ?? false,
    transcript: values.transcript ?? false,
    json: values.json ?? false,
  };

  if (command === "check") {
    const misplaced = SEND_ONLY.find((name) => values[name] !== undefined);
    if (misplaced) throw new UsageError(`--${misplaced} is an option of send, not of check`);
    return { command: "check", ...common };
  }

  const mechanism = values["auth-mechanism"]?.toUpperCase();
  if (
    mechanism !== undefined &&
    ![...PASSWORD_MECHANISMS, ...TOKEN_MECHANISMS].includes(mechanism as PasswordMechanism)
  ) {
    throw new UsageError(
      `Invalid --auth-mechanism ${JSON.stringify(values["auth-mechanism"])}: expected one of ` +
        [...PASSWORD_MECHANISMS, ...TOKEN_MECHANISMS].join(", "),
    );
  }
  const user = values.user ?? fromEnv(env, "POSTIE_USER");
  const dkim = parseDkim(
    values["dkim-domain"],
    values["dkim-selector"] ?? [],
    values["dkim-key"] ?? [],
  );
  return {
    command: "send",
    ...common,
    ...(user !== undefined ? { user } : {}),
    ...(mechanism !== undefined ? { authMechanism: mechanism } : {}),
    ...(values.from !== undefined ? { from: values.from } : {}),
    to: values.to ?? [],
    cc: values.cc ?? [],
    bcc: values.bcc ?? [],
    ...(values.subject !== undefined ? { subject: values.subject } : {}),
    ...(values.text !== undefined ? { text: values.text } : {}),
    ...(values.html !== undefined ? { html: values.html } : {}),
    attach: (values.attach ?? []).map(parseAttach),
    headers: (values.header ?? []).map(parseHeader),
    dryRun: values["dry-run"] ?? false,
    ...(dkim ? { dkim } : {}),
  };
}
