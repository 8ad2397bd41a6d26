/**
 * PLAIN (RFC 4616): the user name and password in one message. Use it only over TLS.
 *
 * @module
 */

import { assertNoControl, utf8 } from "./_codec.ts";
import type { SaslMechanism } from "./types.ts";

class Plain implements SaslMechanism {
  readonly name = "PLAIN";
  readonly #message: Uint8Array;

  constructor(username: string, password: string, authzid: string) {
    const fields: [string, string][] = [
      [username, "username"],
      [password, "password"],
      [authzid, "authzid"],
    ];
    for (const [value, what] of fields) {
      if (value.includes("\0")) throw new TypeError(`Invalid ${what}: contains NUL`);
    }
    assertNoControl(username, "username");
    this.#message = utf8(`${authzid}\0${username}\0${password}`);
  }

  start(): Promise<Uint8Array> {
    return Promise.resolve(this.#message);
  }

  next(): Promise<Uint8Array> {
    return Promise.reject(new Error("PLAIN expects no challenge"));
  }

  toJSON(): { name: string } {
    return { name: this.name };
  }
}

/**
 * The PLAIN mechanism.
 *
 * @param username The authentication identity.
 * @param password The password.
 * @param authzid The identity to act as, if different.
 * @returns The mechanism.
 *
 * @example
 * ```ts
 * import { plain } from "@postie/smtp";
 * import assert from "node:assert/strict";
 *
 * const mechanism = plain("tim", "tanstaaftanstaaf");
 * assert.equal(new TextDecoder().decode((await mechanism.start())!), "\0tim\0tanstaaftanstaaf");
 * ```
 */
export function plain(username: string, password: string, authzid = ""): SaslMechanism {
  return new Plain(username, password, authzid);
}
