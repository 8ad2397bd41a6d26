/**
 * DIGEST-MD5 (RFC 2831): a legacy challenge-response mechanism, obsoleted by RFC 6331, used only
 * when the caller names it. Authentication only (`qop=auth`), no integrity or privacy layer.
 * The server proves it knows the password with `rspauth`, which is checked. MD5 comes from
 * `node:crypto`.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { concat } from "../_bytes.ts";
import { Mechanism } from "./_base.ts";
import {
  assertNoControl,
  assertString,
  isLatin1,
  latin1,
  randomNonce,
  text,
  utf8,
} from "./_codec.ts";
import type { SaslMechanism } from "./types.ts";

/**
 * Parses `key=value, key="quoted \"value\""` directives into a map from the lower-case key to
 * every value given for it, in order. Linear; no regular expression backtracking.
 */
export function parseDirectives(input: string): Map<string, string[]> {
  const result = new Map<string, string[]>();
  let i = 0;
  while (i < input.length) {
    while (i < input.length && (input[i] === "," || input[i] === " " || input[i] === "\t")) i++;
    const eq = input.indexOf("=", i);
    if (eq === -1) break;
    const key = input.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    while (input[i] === " " || input[i] === "\t") i++;
    let value = "";
    if (input[i] === '"') {
      i++;
      while (i < input.length && input[i] !== '"') {
        if (input[i] === "\\" && i + 1 < input.length) i++;
        value += input[i];
        i++;
      }
      i++;
    } else {
      const comma = input.indexOf(",", i);
      const end = comma === -1 ? input.length : comma;
      value = input.slice(i, end).trim();
      i = end;
    }
    const values = result.get(key);
    if (values) values.push(value);
    else result.set(key, [value]);
  }
  return result;
}

const md5 = (data: Uint8Array | string) => createHash("md5").update(data).digest();
const md5Hex = (data: Uint8Array | string) => createHash("md5").update(data).digest("hex");
const quote = (value: string) => `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;

/** Options of {@linkcode digestMd5}. */
export interface DigestMd5Options {
  /**
   * The client nonce. Fix it only in tests.
   * @default {18 random bytes from crypto.getRandomValues, as base64 without "+/="}
   */
  readonly cnonce?: string;
  /**
   * The service name in the digest URI `<service>/<host>`.
   * @default {"smtp"}
   */
  readonly service?: string;
  /**
   * The realm to use. By default the first realm the server offers, or none when it offers
   * none.
   */
  readonly realm?: string;
}

class DigestMd5 extends Mechanism implements SaslMechanism {
  readonly name = "DIGEST-MD5";
  readonly #username: string;
  readonly #password: string;
  readonly #host: string;
  readonly #options: DigestMd5Options;
  #expectedRspauth: string | undefined;
  #verified = false;

  constructor(username: string, password: string, host: string, options: DigestMd5Options) {
    super();
    assertNoControl(username, "username");
    assertString(password, "password");
    assertNoControl(host, "host");
    for (const [what, value] of Object.entries(options)) {
      if (value !== undefined) assertNoControl(value, what);
    }
    this.#username = username;
    this.#password = password;
    this.#host = host;
    this.#options = options;
  }

  start(): Promise<null> {
    return Promise.resolve(null);
  }

  next(challenge: Uint8Array): Promise<Uint8Array> {
    try {
      return Promise.resolve(
        this.#expectedRspauth === undefined
          ? this.#respond(parseDirectives(text(challenge)))
          : this.#checkRspauth(parseDirectives(text(challenge))),
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #respond(directives: Map<string, string[]>): Uint8Array {
    const one = (key: string) => directives.get(key)?.[0];
    const nonce = one("nonce");
    if (!nonce) throw new Error("DIGEST-MD5: the server's challenge has no nonce");
    const qops = (one("qop") ?? "auth").split(",").map((q) => q.trim().toLowerCase());
    if (!qops.includes("auth")) {
      throw new Error("DIGEST-MD5: the server does not offer qop=auth");
    }
    const algorithm = one("algorithm");
    if (algorithm !== undefined && algorithm.toLowerCase() !== "md5-sess") {
      throw new Error(`DIGEST-MD5: unsupported algorithm ${JSON.stringify(algorithm)}`);
    }
    const utf8Allowed = one("charset")?.toLowerCase() === "utf-8";
    const realm = this.#options.realm ?? one("realm");
    const cnonce = this.#options.cnonce ?? randomNonce();
    const digestUri = `${this.#options.service ?? "smtp"}/${this.#host}`;
    const nc = "00000001";

    // RFC 2831 2.1.2.1: with charset=utf-8, a value that fits ISO 8859-1 is hashed as ISO 8859-1
    // all the same; without it, everything is ISO 8859-1.
    const encode = (value: string, what: string) => {
      if (isLatin1(value)) return latin1(value);
      if (utf8Allowed) return utf8(value);
      throw new Error(
        `DIGEST-MD5: the ${what} is not ISO 8859-1 and the server lacks charset=utf-8`,
      );
    };
    const a1 = concat([
      md5(concat([
        encode(this.#username, "username"),
        latin1(":"),
        encode(realm ?? "", "realm"),
        latin1(":"),
        encode(this.#password, "password"),
      ])),
      utf8(`:${nonce}:${cnonce}`),
    ]);
    const ha1 = md5Hex(a1);
    const digest = (a2: string) => md5Hex(`${ha1}:${nonce}:${nc}:${cnonce}:auth:${md5Hex(a2)}`);
    this.#expectedRspauth = digest(`:${digestUri}`);
    const fields = [
      ...(utf8Allowed ? ["charset=utf-8"] : []),
      `username=${quote(this.#username)}`,
      ...(realm !== undefined ? [`realm=${quote(realm)}`] : []),
      `nonce=${quote(nonce)}`,
      `nc=${nc}`,
      `cnonce=${quote(cnonce)}`,
      `digest-uri=${quote(digestUri)}`,
      `response=${digest(`AUTHENTICATE:${digestUri}`)}`,
      "qop=auth",
    ].join(",");
    return utf8Allowed ? utf8(fields) : latin1(fields);
  }

  #checkRspauth(directives: Map<string, string[]>): Uint8Array {
    if (this.#verified) {
      throw new Error("DIGEST-MD5 expects two challenges, the server sent a third");
    }
    const rspauth = directives.get("rspauth")?.[0];
    if (rspauth === undefined) {
      throw new Error("DIGEST-MD5: the server's final challenge has no rspauth");
    }
    if (rspauth.toLowerCase() !== this.#expectedRspauth) {
      throw new Error("DIGEST-MD5: the server's rspauth is wrong: it does not know the password");
    }
    this.#verified = true;
    return new Uint8Array();
  }

  verify(success: Uint8Array): Promise<void> {
    if (this.#verified) return Promise.resolve();
    try {
      if (this.#expectedRspauth !== undefined && success.length > 0) {
        const directives = parseDirectives(text(success));
        if (directives.has("rspauth")) {
          this.#checkRspauth(directives);
          return Promise.resolve();
        }
      }
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.reject(
      new Error("DIGEST-MD5: the server accepted the login without proving it knows the password"),
    );
  }
}

/**
 * The DIGEST-MD5 mechanism (RFC 2831; obsolete, prefer SCRAM-SHA-256). The client checks the
 * server's `rspauth`, so a server that does not know the password cannot fake a success.
 *
 * @param username The user name.
 * @param password The password.
 * @param host The server's host name, for the digest URI `smtp/<host>`.
 * @param options A fixed client nonce (tests), another service name or a realm.
 * @returns The mechanism, for `{ sasl }` in the client's `auth` option.
 * @throws {TypeError} When the user name, host or an option contains NUL, CR, LF or U+0001.
 *
 * @example RFC 2831's example (an IMAP login, hence the service)
 * ```ts
 * import { digestMd5 } from "@postie/smtp";
 * import assert from "node:assert/strict";
 *
 * const mechanism = digestMd5("chris", "secret", "elwood.innosoft.com", {
 *   cnonce: "OA6MHXh6VqTrRk",
 *   service: "imap",
 * });
 * const challenge = 'realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",' +
 *   "algorithm=md5-sess,charset=utf-8";
 * const response = await mechanism.next(new TextEncoder().encode(challenge));
 * assert.match(new TextDecoder().decode(response), /response=d388dad90d4bbd760a152321f2143af7/);
 * await mechanism.next(new TextEncoder().encode("rspauth=ea40f60335c427b5527b84dbabcdfffd"));
 * await mechanism.verify!(new Uint8Array());
 * ```
 */
export function digestMd5(
  username: string,
  password: string,
  host: string,
  options: DigestMd5Options = {},
): SaslMechanism {
  return new DigestMd5(username, password, host, options);
}
