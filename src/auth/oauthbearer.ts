/**
 * OAUTHBEARER (RFC 7628): the standard OAuth 2.0 bearer token mechanism.
 *
 * The initial response is the GS2 header `n,a=<user>,` followed by `^Ahost=<host>^Aport=<port>
 * ^Aauth=Bearer <token>^A^A`. When the server refuses the token it sends one challenge, a
 * base64 JSON error; the client answers with a lone `^A` (RFC 7628 section 3.2.3) and the
 * server then fails the exchange.
 *
 * @module
 */

import { Mechanism } from "./_base.ts";
import { assertNoControl, saslName, utf8 } from "./_codec.ts";
import type { SaslMechanism } from "./types.ts";

class OAuthBearer extends Mechanism implements SaslMechanism {
  readonly name = "OAUTHBEARER";
  readonly #message: Uint8Array;
  #challenged = false;

  constructor(username: string, token: string, host: string, port: number) {
    super();
    assertNoControl(username, "username");
    assertNoControl(token, "token");
    assertNoControl(host, "host");
    if (token === "") throw new TypeError("Invalid token: must not be empty");
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new RangeError(`Invalid port: ${port}`);
    }
    this.#message = utf8(
      `n,a=${saslName(username)},\x01host=${host}\x01port=${port}\x01auth=Bearer ${token}\x01\x01`,
    );
  }

  start(): Promise<Uint8Array> {
    return Promise.resolve(this.#message.slice());
  }

  next(): Promise<Uint8Array> {
    if (this.#challenged) {
      return Promise.reject(new Error("OAUTHBEARER expects at most one (error) challenge"));
    }
    this.#challenged = true;
    return Promise.resolve(new Uint8Array([0x01]));
  }
}

/**
 * The OAUTHBEARER mechanism (RFC 7628).
 *
 * @param username The mailbox; sent as the GS2 authorization identity (`,` and `=` escaped).
 * @param token An OAuth 2.0 access token.
 * @param host The server's host name.
 * @param port The server's port.
 * @returns The mechanism, for `{ sasl }` in the client's `auth` option (the `{ username, token,
 *   mechanism: "OAUTHBEARER" }` form of `auth` builds it for you).
 * @throws {TypeError} When a value contains NUL, CR, LF or U+0001, or the token is empty.
 * @throws {RangeError} When the port is not an integer from 1 to 65535.
 *
 * @example
 * ```ts
 * import { oauthBearer } from "@postie/smtp";
 * import assert from "node:assert/strict";
 *
 * const initial = await oauthBearer("me@example.com", "t0ken", "smtp.example.com", 587).start();
 * assert.equal(
 *   new TextDecoder().decode(initial!),
 *   "n,a=me@example.com,\x01host=smtp.example.com\x01port=587\x01auth=Bearer t0ken\x01\x01",
 * );
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
