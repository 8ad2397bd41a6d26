/**
 * CRAM-MD5 (RFC 2195): the server sends a challenge, the client answers with the user name and
 * the HMAC-MD5 of the challenge keyed with the password. MD5 comes from `node:crypto`, which
 * both Deno and Node.js have (Web Crypto has no MD5).
 *
 * @module
 */

import { createHmac } from "node:crypto";
import { Mechanism } from "./_base.ts";
import { assertNoControl, assertString, utf8 } from "./_codec.ts";
import type { SaslMechanism } from "./types.ts";

class CramMd5 extends Mechanism implements SaslMechanism {
  readonly name = "CRAM-MD5";
  readonly #username: string;
  readonly #password: string;
  #answered = false;

  constructor(username: string, password: string) {
    super();
    assertNoControl(username, "username");
    assertString(password, "password");
    this.#username = username;
    this.#password = password;
  }

  start(): Promise<null> {
    return Promise.resolve(null);
  }

  next(challenge: Uint8Array): Promise<Uint8Array> {
    if (this.#answered) {
      return Promise.reject(new Error("CRAM-MD5 expects one challenge, the server sent another"));
    }
    this.#answered = true;
    const digest = createHmac("md5", utf8(this.#password)).update(challenge).digest("hex");
    return Promise.resolve(utf8(`${this.#username} ${digest}`));
  }
}

/**
 * The CRAM-MD5 mechanism (RFC 2195). The password is not sent, but a recorded exchange allows
 * an offline guessing attack: use it over TLS like the others.
 *
 * @param username The user name.
 * @param password The password.
 * @returns The mechanism, for `{ sasl }` in the client's `auth` option.
 * @throws {TypeError} When the user name contains NUL, CR, LF or U+0001.
 *
 * @example RFC 2195's example
 * ```ts
 * import { cramMd5 } from "@postie/smtp";
 * import assert from "node:assert/strict";
 *
 * const challenge = new TextEncoder().encode("<1896.697170952@postoffice.reston.mci.net>");
 * const response = await cramMd5("tim", "tanstaaftanstaaf").next(challenge);
 * assert.equal(new TextDecoder().decode(response), "tim b913a602c7eda7a495b4e6e7334d3890");
 * ```
 */
export function cramMd5(username: string, password: string): SaslMechanism {
  return new CramMd5(username, password);
}
