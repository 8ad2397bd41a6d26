/**
 * CRAM-MD5 (RFC 2195): the server sends a challenge, the client answers with the user name and
 * an HMAC-MD5 of it keyed with the password. MD5 comes from `node:crypto`.
 *
 * @module
 */

import { createHmac } from "node:crypto";
import { assertNoControl, utf8 } from "./_codec.ts";
import type { SaslMechanism } from "./types.ts";

class CramMd5 implements SaslMechanism {
  readonly name = "CRAM-MD5";
  readonly #username: string;
  readonly #password: string;

  constructor(username: string, password: string) {
    assertNoControl(username, "username");
    this.#username = username;
    this.#password = password;
  }

  start(): Promise<null> {
    return Promise.resolve(null);
  }

  next(challenge: Uint8Array): Promise<Uint8Array> {
    const digest = createHmac("md5", this.#password).update(challenge).digest("hex");
    return Promise.resolve(utf8(`${this.#username} ${digest}`));
  }

  toJSON(): { name: string } {
    return { name: this.name };
  }
}

/**
 * The CRAM-MD5 mechanism.
 *
 * @param username The user name.
 * @param password The password.
 * @returns The mechanism.
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
