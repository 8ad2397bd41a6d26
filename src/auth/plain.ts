/**
 * PLAIN (RFC 4616): the authorization identity, the user name and the password in one message.
 * Send it only over TLS.
 *
 * @module
 */

import { Mechanism } from "./_base.ts";
import { assertNoControl, assertString, utf8 } from "./_codec.ts";
import type { SaslMechanism } from "./types.ts";

class Plain extends Mechanism implements SaslMechanism {
  readonly name = "PLAIN";
  readonly #message: Uint8Array;

  constructor(username: string, password: string, authzid: string) {
    super();
    for (const [what, value] of Object.entries({ username, password, authzid })) {
      assertString(value, what);
      if (value.includes("\0")) throw new TypeError(`Invalid ${what}: contains NUL`);
    }
    assertNoControl(username, "username");
    if (username === "") throw new TypeError("Invalid username: must not be empty");
    if (password === "") throw new TypeError("Invalid password: PLAIN needs a non-empty password");
    this.#message = utf8(`${authzid}\0${username}\0${password}`);
  }

  start(): Promise<Uint8Array> {
    return Promise.resolve(this.#message.slice());
  }

  next(): Promise<Uint8Array> {
    return Promise.reject(new Error("PLAIN expects no challenge"));
  }
}

/**
 * The PLAIN mechanism (RFC 4616). Its initial response is `authzid NUL username NUL password`.
 *
 * @param username The authentication identity.
 * @param password The password (UTF-8, no NUL).
 * @param authzid The identity to act as, when it differs from `username`.
 * @default {""} for `authzid`
 * @returns The mechanism, for `{ sasl }` in the client's `auth` option.
 * @throws {TypeError} When a value contains NUL, the user name contains CR, LF or U+0001, or
 *   the user name or password is empty.
 *
 * @example RFC 4616's example, acting as another user
 * ```ts
 * import { plain } from "@postie/smtp";
 * import assert from "node:assert/strict";
 *
 * const mechanism = plain("Kurt", "xipj3plmq", "Ursel");
 * const initial = await mechanism.start();
 * assert.equal(new TextDecoder().decode(initial!), "Ursel\0Kurt\0xipj3plmq");
 * assert.equal(JSON.stringify(mechanism), '{"name":"PLAIN"}');
 * ```
 */
export function plain(username: string, password: string, authzid = ""): SaslMechanism {
  return new Plain(username, password, authzid);
}
