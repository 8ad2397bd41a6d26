/**
 * DIGEST-MD5 (RFC 2831): a legacy challenge-response mechanism, used only when the caller
 * names it. MD5 comes from `node:crypto`. Authentication only (`qop=auth`), no integrity layer.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { assertNoControl, concat, randomNonce, text, utf8 } from "./_codec.ts";
import type { SaslMechanism } from "./types.ts";

/** Parses `key=value, key="quoted value"` directives. Linear, no regex backtracking. */
export function parseDirectives(input: string): Map<string, string> {
  const result = new Map<string, string>();
  let i = 0;
  while (i < input.length) {
    while (i < input.length && (input[i] === "," || input[i] === " " || input[i] === "\t")) i++;
    const eq = input.indexOf("=", i);
    if (eq === -1) break;
    const key = input.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
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
    if (!result.has(key)) result.set(key, value);
  }
  return result;
}

const md5 = (data: Uint8Array | string) => createHash("md5").update(data).digest();
const md5Hex = (data: Uint8Array | string) => createHash("md5").update(data).digest("hex");
const quote = (value: string) => `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;

class DigestMd5 implements SaslMechanism {
  readonly name = "DIGEST-MD5";
  readonly #username: string;
  readonly #password: string;
  readonly #service: string;
  readonly #host: string;
  readonly #cnonce: string;
  #expectedRspauth: string | undefined;
  #verified = false;

  constructor(
    username: string,
    password: string,
    host: string,
    cnonce: string,
    service: string,
  ) {
    assertNoControl(username, "username");
    this.#username = username;
    this.#password = password;
    this.#service = service;
    this.#host = host;
    this.#cnonce = cnonce;
  }

  start(): Promise<null> {
    return Promise.resolve(null);
  }

  next(challenge: Uint8Array): Promise<Uint8Array> {
    const directives = parseDirectives(text(challenge));
    if (this.#expectedRspauth !== undefined) {
      const rspauth = directives.get("rspauth");
      if (rspauth !== this.#expectedRspauth) {
        return Promise.reject(new Error("DIGEST-MD5: the server's rspauth is wrong"));
      }
      this.#verified = true;
      return Promise.resolve(new Uint8Array());
    }
    const nonce = directives.get("nonce");
    if (!nonce) return Promise.reject(new Error("DIGEST-MD5: the challenge has no nonce"));
    const qops = (directives.get("qop") ?? "auth").split(",").map((q) => q.trim());
    if (!qops.includes("auth")) {
      return Promise.reject(new Error("DIGEST-MD5: the server does not offer qop=auth"));
    }
    const realm = directives.get("realm") ?? "";
    const digestUri = `${this.#service}/${this.#host}`;
    const nc = "00000001";
    const a1 = concat(
      md5(`${this.#username}:${realm}:${this.#password}`),
      utf8(`:${nonce}:${this.#cnonce}`),
    );
    const ha1 = md5Hex(a1);
    const response = md5Hex(
      `${ha1}:${nonce}:${nc}:${this.#cnonce}:auth:${md5Hex(`AUTHENTICATE:${digestUri}`)}`,
    );
    this.#expectedRspauth = md5Hex(
      `${ha1}:${nonce}:${nc}:${this.#cnonce}:auth:${md5Hex(`:${digestUri}`)}`,
    );
    const fields = [
      ...(directives.get("charset")?.toLowerCase() === "utf-8" ? ["charset=utf-8"] : []),
      `username=${quote(this.#username)}`,
      ...(directives.has("realm") ? [`realm=${quote(realm)}`] : []),
      `nonce=${quote(nonce)}`,
      `nc=${nc}`,
      `cnonce=${quote(this.#cnonce)}`,
      `digest-uri=${quote(digestUri)}`,
      `response=${response}`,
      "qop=auth",
    ];
    return Promise.resolve(utf8(fields.join(",")));
  }

  verify(): Promise<void> {
    return this.#verified
      ? Promise.resolve()
      : Promise.reject(new Error("DIGEST-MD5: the server never proved it knows the password"));
  }

  toJSON(): { name: string } {
    return { name: this.name };
  }
}

/**
 * The DIGEST-MD5 mechanism (legacy; prefer SCRAM-SHA-256 or CRAM-MD5 over TLS).
 *
 * @param username The user name.
 * @param password The password.
 * @param host The server's host name, for the digest URI `smtp/<host>`.
 * @param options `cnonce` fixes the client nonce (for tests); `service` for other protocols.
 * @returns The mechanism.
 *
 * @example
 * ```ts
 * import { digestMd5 } from "@postie/smtp";
 * import assert from "node:assert/strict";
 *
 * const mechanism = digestMd5("chris", "secret", "elwood.innosoft.com");
 * assert.equal(mechanism.name, "DIGEST-MD5");
 * ```
 */
export function digestMd5(
  username: string,
  password: string,
  host: string,
  options: { cnonce?: string; service?: string } = {},
): SaslMechanism {
  return new DigestMd5(
    username,
    password,
    host,
    options.cnonce ?? randomNonce(),
    options.service ?? "smtp",
  );
}
