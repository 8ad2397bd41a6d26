/**
 * XOAUTH2: Google's and Microsoft's OAuth 2.0 bearer token mechanism.
 *
 * @module
 */

import { assertNoControl, text, utf8 } from "./_codec.ts";
import type { SaslMechanism } from "./types.ts";

class XOAuth2 implements SaslMechanism {
  readonly name = "XOAUTH2";
  readonly #message: Uint8Array;
  /** The server's JSON error, when it sent one. */
  error: string | undefined;

  constructor(username: string, token: string) {
    assertNoControl(username, "username");
    assertNoControl(token, "token");
    this.#message = utf8(`user=${username}\x01auth=Bearer ${token}\x01\x01`);
  }

  start(): Promise<Uint8Array> {
    return Promise.resolve(this.#message);
  }

  next(challenge: Uint8Array): Promise<Uint8Array> {
    // The only challenge is a JSON error; an empty answer makes the server send its 535.
    this.error = text(challenge);
    return Promise.resolve(new Uint8Array());
  }

  toJSON(): { name: string } {
    return { name: this.name };
  }
}

/**
 * The XOAUTH2 mechanism.
 *
 * @param username The mailbox, e.g. `me@gmail.com`.
 * @param token An OAuth 2.0 access token.
 * @returns The mechanism.
 *
 * @example
 * ```ts
 * import { xoauth2 } from "@postie/smtp";
 * import assert from "node:assert/strict";
 *
 * const initial = await xoauth2("me@example.com", "ya29.token").start();
 * assert.equal(
 *   new TextDecoder().decode(initial!),
 *   "user=me@example.com\x01auth=Bearer ya29.token\x01\x01",
 * );
 * ```
 */
export function xoauth2(username: string, token: string): SaslMechanism {
  return new XOAuth2(username, token);
}
