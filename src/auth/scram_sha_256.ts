/**
 * SCRAM-SHA-256 (RFC 7677, RFC 5802): a salted challenge-response mechanism in which the server
 * proves it knows the password too. PBKDF2, HMAC and SHA-256 come from Web Crypto. No channel
 * binding (the GS2 header is `n,,`).
 *
 * The exchange: client-first `n,,n=<user>,r=<client nonce>`; server-first
 * `r=<client nonce + server nonce>,s=<salt>,i=<iterations>`; client-final `c=biws,r=...,p=<proof>`;
 * server-final `v=<server signature>`, which must match or the login is treated as failed.
 *
 * @module
 */

import { Mechanism } from "./_base.ts";
import {
  assertNoControl,
  fromBase64,
  printable,
  randomNonce,
  saslName,
  text,
  toBase64,
  utf8,
} from "./_codec.ts";
import { saslPrep } from "./_saslprep.ts";
import type { SaslMechanism } from "./types.ts";

/**
 * Iteration counts above this are refused: each one costs the client an HMAC, so a hostile
 * server could otherwise stall it. (Common server settings are 4,096 to 600,000.)
 */
const MAX_ITERATIONS = 1_000_000;

/** `a=1,b=2` to a map; `=` inside values is kept. Attribute names are single letters. */
function parseAttributes(message: string): Map<string, string> {
  const result = new Map<string, string>();
  for (const part of message.split(",")) {
    if (part.length >= 2 && part[1] === "=" && !result.has(part[0]!)) {
      result.set(part[0]!, part.slice(2));
    }
  }
  return result;
}

function bytes(data: Uint8Array): Uint8Array<ArrayBuffer> {
  return data as Uint8Array<ArrayBuffer>;
}

async function hmac(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    bytes(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, bytes(data)));
}

async function pbkdf2(password: Uint8Array, salt: Uint8Array, iterations: number) {
  const key = await crypto.subtle.importKey("raw", bytes(password), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: bytes(salt), iterations },
    key,
    256,
  );
  return new Uint8Array(bits);
}

/** Compares in time independent of where the first difference is. */
function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Options of {@linkcode scramSha256}. */
export interface ScramOptions {
  /**
   * The client nonce. Fix it only in tests.
   * @default {18 random bytes from crypto.getRandomValues, as base64 without "+/="}
   */
  readonly nonce?: string;
}

class ScramSha256 extends Mechanism implements SaslMechanism {
  readonly name = "SCRAM-SHA-256";
  readonly #password: string;
  readonly #clientFirstBare: string;
  readonly #nonce: string;
  #expectedServerSignature: Uint8Array | undefined;
  #verified = false;

  constructor(username: string, password: string, nonce: string) {
    super();
    assertNoControl(username, "username");
    assertNoControl(password, "password");
    // RFC 5802 "printable": ASCII 0x21 to 0x7E except ","
    if (nonce.length === 0 || /[^\x21-\x2b\x2d-\x7e]/.test(nonce)) {
      throw new TypeError("Invalid nonce: must be printable ASCII without commas");
    }
    this.#password = saslPrep(password, "password");
    this.#nonce = nonce;
    this.#clientFirstBare = `n=${saslName(saslPrep(username, "username"))},r=${nonce}`;
  }

  start(): Promise<Uint8Array> {
    return Promise.resolve(utf8(`n,,${this.#clientFirstBare}`));
  }

  async next(challenge: Uint8Array): Promise<Uint8Array> {
    if (this.#expectedServerSignature === undefined) {
      return await this.#clientFinal(text(challenge));
    }
    if (this.#verified) {
      throw new Error("SCRAM-SHA-256: the server sent a challenge after its final one");
    }
    this.#check(text(challenge));
    return new Uint8Array();
  }

  async #clientFinal(serverFirst: string): Promise<Uint8Array> {
    const attributes = parseAttributes(serverFirst);
    const error = attributes.get("e");
    if (error !== undefined) {
      throw new Error(`SCRAM-SHA-256: the server reported "${printable(error)}"`);
    }
    if (attributes.has("m")) {
      throw new Error("SCRAM-SHA-256: the server requires an extension the client lacks");
    }
    const nonce = attributes.get("r");
    const salt = attributes.get("s");
    const iterations = Number(attributes.get("i"));
    if (
      nonce === undefined || !nonce.startsWith(this.#nonce) || nonce.length === this.#nonce.length
    ) {
      throw new Error("SCRAM-SHA-256: the server's nonce does not extend the client's");
    }
    if (!salt || !Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
      throw new Error("SCRAM-SHA-256: the server's salt or iteration count is invalid");
    }
    const salted = await pbkdf2(utf8(this.#password), fromBase64(salt), iterations);
    const clientKey = await hmac(salted, utf8("Client Key"));
    const storedKey = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes(clientKey)));
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = utf8(`${this.#clientFirstBare},${serverFirst},${withoutProof}`);
    const clientSignature = await hmac(storedKey, authMessage);
    const proof = clientKey.map((byte, i) => byte ^ clientSignature[i]!);
    const serverKey = await hmac(salted, utf8("Server Key"));
    this.#expectedServerSignature = await hmac(serverKey, authMessage);
    return utf8(`${withoutProof},p=${toBase64(proof)}`);
  }

  /** Checks a server-final message; throws unless its signature is the expected one. */
  #check(serverFinal: string): void {
    const attributes = parseAttributes(serverFinal);
    const error = attributes.get("e");
    if (error !== undefined) {
      throw new Error(`SCRAM-SHA-256: the server reported "${printable(error)}"`);
    }
    const signature = attributes.get("v");
    if (signature === undefined) {
      throw new Error(
        "SCRAM-SHA-256: the server accepted the login without proving it knows the password",
      );
    }
    let received: Uint8Array;
    try {
      received = fromBase64(signature);
    } catch {
      received = new Uint8Array();
    }
    if (!equal(received, this.#expectedServerSignature!)) {
      throw new Error(
        "SCRAM-SHA-256: the server's signature is wrong: it does not know the password",
      );
    }
    this.#verified = true;
  }

  verify(success: Uint8Array): Promise<void> {
    if (this.#verified) return Promise.resolve();
    try {
      if (this.#expectedServerSignature === undefined) {
        throw new Error("SCRAM-SHA-256: the server accepted the login before the client's proof");
      }
      // RFC 4954 has the server-final message in a 334 challenge; a few servers put it into the
      // success reply instead.
      this.#check(text(success));
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

/**
 * The SCRAM-SHA-256 mechanism (RFC 7677), with the server signature checked: a server that
 * does not know the password cannot fake a success. User name and password are prepared with
 * SASLprep (mapping and NFKC normalisation; see `_saslprep.ts` for the parts left out).
 *
 * @param username The user name.
 * @param password The password.
 * @param options A fixed client nonce, for tests only.
 * @returns The mechanism, for `{ sasl }` in the client's `auth` option.
 * @throws {TypeError} When the user name or password contains a character SASLprep prohibits
 *   or is empty after it, or the nonce is not printable ASCII without commas.
 *
 * @example RFC 7677's example
 * ```ts
 * import { scramSha256 } from "@postie/smtp";
 * import assert from "node:assert/strict";
 *
 * const encode = (value: string) => new TextEncoder().encode(value);
 * const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
 * const mechanism = scramSha256("user", "pencil", { nonce: "rOprNGfwEbeRWgbNEkqO" });
 * assert.equal(decode((await mechanism.start())!), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
 * const final = await mechanism.next(encode(
 *   "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
 * ));
 * assert.match(decode(final), /,p=dHzbZapWIk4jUhN\+Ute9ytag9zjfMHgsqmmiz7AndVQ=$/);
 * await mechanism.next(encode("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
 * await mechanism.verify!(new Uint8Array());
 * ```
 */
export function scramSha256(
  username: string,
  password: string,
  options: ScramOptions = {},
): SaslMechanism {
  return new ScramSha256(username, password, options.nonce ?? randomNonce());
}
