/**
 * LOGIN: the obsolete but common mechanism that asks for the user name, then the password.
 * Send it only over TLS.
 *
 * @module
 */

import { Mechanism } from "./_base.ts";
import { assertNoControl, utf8 } from "./_codec.ts";
import type { SaslMechanism } from "./types.ts";

class Login extends Mechanism implements SaslMechanism {
  readonly name = "LOGIN";
  readonly #username: string;
  readonly #password: string;
  #step = 0;

  constructor(username: string, password: string) {
    super();
    assertNoControl(username, "username");
    assertNoControl(password, "password");
    this.#username = username;
    this.#password = password;
  }

  start(): Promise<null> {
    return Promise.resolve(null);
  }

  next(): Promise<Uint8Array> {
    // The prompts are "Username:" and "Password:" by convention, but servers word them
    // differently ("User Name", localised text, or nothing): answer by order, not by text.
    this.#step++;
    if (this.#step === 1) return Promise.resolve(utf8(this.#username));
    if (this.#step === 2) return Promise.resolve(utf8(this.#password));
    return Promise.reject(new Error("LOGIN expects two challenges, the server sent a third"));
  }
}

/**
 * The LOGIN mechanism: the user name answers the first challenge, the password the second,
 * whatever the prompts say.
 *
 * @param username The user name.
 * @param password The password.
 * @returns The mechanism, for `{ sasl }` in the client's `auth` option.
 * @throws {TypeError} When a value contains NUL, CR, LF or U+0001.
 *
 * @example
 * ```ts
 * import { login } from "@postie/smtp";
 * import assert from "node:assert/strict";
 *
 * const mechanism = login("me", "secret");
 * const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
 * assert.equal(await mechanism.start(), null);
 * assert.equal(decode(await mechanism.next(new TextEncoder().encode("Username:"))), "me");
 * assert.equal(decode(await mechanism.next(new TextEncoder().encode("Password:"))), "secret");
 * ```
 */
export function login(username: string, password: string): SaslMechanism {
  return new Login(username, password);
}
