/**
 * XOAUTH2: Google's and Microsoft's OAuth 2.0 bearer token mechanism.
 *
 * The initial response is `user=<user>^Aauth=Bearer <token>^A^A`. When the server refuses the
 * token it sends one challenge, a base64 JSON error such as `{"status":"401",...}`; the client
 * answers with an empty response and the server then fails the exchange (usually with 535).
 *
 * @module
 */

import { Mechanism } from "./_base.ts";
import { assertNoControl, utf8 } from "./_codec.ts";
import type { SaslMechanism } from "./types.ts";

class XOAuth2 extends Mechanism implements SaslMechanism {
  readonly name = "XOAUTH2";
  readonly #message: Uint8Array;
  #challenged = false;

  constructor(username: string, token: string) {
    super();
    assertNoControl(username, "username");
    assertNoControl(token, "token");
    if (token === "") throw new TypeError("Invalid token: must not be empty");
    this.#message = utf8(`user=${username}\x01auth=Bearer ${token}\x01\x01`);
  }

  start(): Promise<Uint8Array> {
    return Promise.resolve(this.#message.slice());
  }

  next(): Promise<Uint8Array> {
    if (this.#challenged) {
      return Promise.reject(new Error("XOAUTH2 expects at most one (error) challenge"));
    }
    // The only challenge is the JSON error: an empty answer makes the server send its failure.
    this.#challenged = true;
    return Promise.resolve(new Uint8Array());
  }
}

/**
 * The XOAUTH2 mechanism (Gmail, Outlook.com, Microsoft 365).
 *
 * @param username The mailbox, e.g. `me@gmail.com`.
 * @param token An OAuth 2.0 access token with the provider's mail scope.
 * @returns The mechanism, for `{ sasl }` in the client's `auth` option (the `{ username, token }`
 *   form of `auth` builds it for you and refreshes the token once when it is refused).
 * @throws {TypeError} When a value contains NUL, CR, LF or U+0001, or the token is empty.
 *
 * @example
 * ```ts
 * import { xoauth2 } from "@postie/smtp";
 * import assert from "node:assert/strict";
 *
 * const mechanism = xoauth2("me@example.com", "ya29.token");
 * assert.equal(
 *   new TextDecoder().decode((await mechanism.start())!),
 *   "user=me@example.com\x01auth=Bearer ya29.token\x01\x01",
 * );
 * assert.doesNotMatch(Deno.inspect(mechanism), /ya29/);
 * ```
 */
export function xoauth2(username: string, token: string): SaslMechanism {
  return new XOAuth2(username, token);
}
