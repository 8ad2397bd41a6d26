/**
 * The EHLO reply as a typed value, parsed once per EHLO (and again after STARTTLS).
 *
 * @module
 */

import type { SmtpReply } from "../types.ts";

/**
 * The limits a server announces with `LIMITS` (RFC 9422) that postie applies. A limit the
 * server did not announce, or announced with a value that is not a positive integer, is absent.
 */
export interface ServerLimits {
  /** `MAILMAX`: transactions (MAIL commands) per connection. */
  readonly mailMax?: number;
  /** `RCPTMAX`: recipients (RCPT commands) per transaction. */
  readonly rcptMax?: number;
  /** `RCPTDOMAINMAX`: distinct recipient domains per transaction. */
  readonly rcptDomainMax?: number;
}

const LIMIT_NAMES = {
  MAILMAX: "mailMax",
  RCPTMAX: "rcptMax",
  RCPTDOMAINMAX: "rcptDomainMax",
} as const satisfies Record<string, keyof ServerLimits>;

/**
 * Parses the parameters of `LIMITS`: `NAME=value` each. Other names, and values that are not
 * positive integers, are ignored; a limit given twice counts with its lower value.
 */
function parseLimits(params: readonly string[]): ServerLimits {
  const limits: { -readonly [K in keyof ServerLimits]: number } = {};
  for (const param of params) {
    const match = /^([A-Za-z0-9_-]+)=(\d{1,15})$/.exec(param);
    if (!match) continue;
    const name = match[1]!.toUpperCase();
    const value = Number(match[2]);
    if (!Object.hasOwn(LIMIT_NAMES, name) || value < 1) continue;
    const key = LIMIT_NAMES[name as keyof typeof LIMIT_NAMES];
    limits[key] = Math.min(value, limits[key] ?? Infinity);
  }
  return limits;
}

/** What the server said it supports in its EHLO reply. Keywords are case-insensitive. */
export class Capabilities {
  /** The server's name from the first EHLO line. */
  readonly serverName: string;
  /** Whether the server answered EHLO (false after the HELO fallback: no extensions). */
  readonly esmtp: boolean;
  /** The limits announced with `LIMITS` (RFC 9422); empty when the server announced none. */
  readonly limits: ServerLimits;
  readonly #extensions: Map<string, readonly string[]>;
  readonly #auth: readonly string[];

  /**
   * Creates capabilities from parsed parts; most code uses {@linkcode Capabilities.fromEhlo}.
   *
   * @param serverName The server's name from the greeting line of the reply.
   * @param extensions Keyword (upper case) to parameters.
   * @param esmtp Whether the server answered EHLO.
   */
  constructor(serverName: string, extensions: Map<string, readonly string[]>, esmtp = true) {
    this.serverName = serverName;
    this.esmtp = esmtp;
    this.#extensions = extensions;
    const auth = new Set<string>();
    for (const name of extensions.get("AUTH") ?? []) auth.add(name.toUpperCase());
    this.#auth = [...auth];
    this.limits = parseLimits(extensions.get("LIMITS") ?? []);
  }

  /** Parses an EHLO reply. */
  static fromEhlo(reply: SmtpReply): Capabilities {
    const [first = "", ...rest] = reply.lines;
    const extensions = new Map<string, string[]>();
    for (const line of rest) {
      const trimmed = line.trim();
      if (trimmed === "") continue;
      // The old `AUTH=LOGIN PLAIN` form (some servers send both forms).
      const [word = "", ...params] = trimmed.split(/\s+/);
      const eq = word.indexOf("=");
      const keyword = (eq > 0 ? word.slice(0, eq) : word).toUpperCase();
      const values = eq > 0 ? [word.slice(eq + 1), ...params] : params;
      const existing = extensions.get(keyword);
      if (existing) existing.push(...values.filter((v) => !existing.includes(v)));
      else extensions.set(keyword, values);
    }
    return new Capabilities(first.split(/\s+/, 1)[0] ?? "", extensions);
  }

  /** The capabilities of a server that only answered HELO: none. */
  static none(serverName: string): Capabilities {
    return new Capabilities(serverName, new Map(), false);
  }

  /** Whether the server offered `keyword` (case-insensitive). */
  has(keyword: string): boolean {
    return this.#extensions.has(keyword.toUpperCase());
  }

  /** The parameters of `keyword`, or `undefined` when it was not offered. */
  params(keyword: string): readonly string[] | undefined {
    return this.#extensions.get(keyword.toUpperCase());
  }

  /** The SASL mechanisms offered with AUTH, upper case. */
  get authMechanisms(): readonly string[] {
    return this.#auth;
  }

  /** The SIZE limit in bytes; `undefined` when no limit was announced (or `SIZE 0`). */
  get maxSize(): number | undefined {
    const value = Number(this.params("SIZE")?.[0]);
    return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  }

  /** All offered keywords, upper case. */
  get keywords(): readonly string[] {
    return [...this.#extensions.keys()];
  }
}
