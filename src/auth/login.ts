/**
 * LOGIN: the obsolete but common mechanism that asks for the user name, then the password.
 *
 * @module
 */

import { assertNoControl, utf8 } from "./_codec.ts";
import type { SaslMechanism } from "./types.ts";

class Login implements SaslMechanism {
  readonly name = "LOGIN";
  readonly #username: string;
  readonly #password: string;
  #step = 0;

  constructor(username: string, password: string) {
    assertNoControl(username, "username");
    assertNoControl(password, "password");
    this.#username = username;
    this.#password = password;
  }

  start(): Promise<null> {
    return Promise.resolve(null);
  }

  next(): Promise<Uint8Array> {
    // Prompts are "Username:" and "Password:" by convention, but some servers word them
    // differently: answer by order.
    this.#step++;
    if (this.#step === 1) return Promise.resolve(utf8(this.#username));
    if (this.#step === 2) return Promise.resolve(utf8(this.#password));
    return Promise.reject(new Error("LOGIN got more than two challenges"));
  }

  toJSON(): { name: string } {
    return { name: this.name };
  }
}

/**
 * The LOGIN mechanism.
 *
 * @param username The user name.
 * @param password The password.
 * @returns The mechanism.
 *
 * @example
 * ```ts
 * import { login } from "@postie/smtp";
 * import assert from "node:assert/strict";
 *
 * const mechanism = login("me", "secret");
 * assert.equal(await mechanism.start(), null);
 * assert.equal(new TextDecoder().decode(await mechanism.next(new Uint8Array())), "me");
 * ```
 */
export function login(username: string, password: string): SaslMechanism {
  return new Login(username, password);
}
