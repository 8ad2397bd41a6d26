/**
 * OAUTHBEARER (RFC 7628): the standard OAuth 2.0 bearer token mechanism.
 *
 * @module
 */

import { assertNoControl, saslName, text, utf8 } from "./_codec.ts";
import type { SaslMechanism } from "./types.ts";

class OAuthBearer implements SaslMechanism {
  readonly name = "OAUTHBEARER";
  readonly #message: Uint8Array;
  /** The server's JSON error, when it sent one. */
  error: string | undefined;

  constructor(username: string, token: string, host: string, port: number) {
    assertNoControl(username, "username");
    assertNoControl(token, "token");
    assertNoControl(host, "host");
    this.#message = utf8(
      `n,a=${saslName(username)},\x01host=${host}\x01port=${port}\x01auth=Bearer ${token}\x01\x01`,
    );
  }

  start(): Promise<Uint8Array> {
    return Promise.resolve(this.#message);
  }

  next(challenge: Uint8Array): Promise<Uint8Array> {
    // An error challenge is answered with a lone ^A; the server then fails the exchange.
    this.error = text(challenge);
    return Promise.resolve(new Uint8Array([1]));
  }

  toJSON(): { name: string } {
    return { name: this.name };
  }
}

/**
 * The OAUTHBEARER mechanism.
 *
 * @param username The mailbox.
 * @param token An OAuth 2.0 access token.
 * @param host The server's host name.
 * @param port The server's port.
 * @returns The mechanism.
 *
 * @example
 * ```ts
 * import { oauthBearer } from "@postie/smtp";
 * import assert from "node:assert/strict";
 *
 * const initial = await oauthBearer("me@example.com", "t0ken", "smtp.example.com", 587).start();
 * assert.match(new TextDecoder().decode(initial!), /^n,a=me@example\.com,\x01host=smtp/);
 * ```
 */
export function oauthBearer(
  username: string,
  token: string,
  host: string,
  port: number,
): SaslMechanism {
  return new OAuthBearer(username, token, host, port);
}
