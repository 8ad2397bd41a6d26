/**
 * SCRAM-SHA-256 (RFC 7677, RFC 5802): a salted challenge-response mechanism in which the server
 * proves it knows the password too. Everything comes from Web Crypto.
 *
 * @module
 */

import {
  assertNoControl,
  fromBase64,
  randomNonce,
  saslName,
  text,
  toBase64,
  utf8,
} from "./_codec.ts";
import type { SaslMechanism } from "./types.ts";

/** Iteration counts above this are refused: a hostile server could otherwise stall the client. */
const MAX_ITERATIONS = 1_000_000;

function parseAttributes(message: string): Map<string, string> {
  const result = new Map<string, string>();
  for (const part of message.split(",")) {
    const eq = part.indexOf("=");
    if (eq === 1) result.set(part[0]!, part.slice(2));
  }
  return result;
}

async function hmac(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(
    await crypto.subtle.sign("HMAC", cryptoKey, data as Uint8Array<ArrayBuffer>),
  );
}

async function pbkdf2(password: Uint8Array, salt: Uint8Array, iterations: number) {
  const key = await crypto.subtle.importKey(
    "raw",
    password as Uint8Array<ArrayBuffer>,
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: salt as Uint8Array<ArrayBuffer>, iterations },
    key,
    256,
  );
  return new Uint8Array(bits);
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * SASLprep, approximated by Unicode NFKC normalisation plus a refusal of control characters.
 * (The full RFC 4013 tables also map a few spaces and refuse unassigned code points.)
 */
function prepare(password: string): string {
  const normalized = password.normalize("NFKC");
  // deno-lint-ignore no-control-regex -- control characters are exactly what is refused
  if (/[\0-\x1f\x7f]/.test(normalized)) {
    throw new TypeError("Invalid password: contains a control character");
  }
  return normalized;
}

class ScramSha256 implements SaslMechanism {
  readonly name = "SCRAM-SHA-256";
  readonly #password: string;
  readonly #clientFirstBare: string;
  readonly #nonce: string;
  #expectedServerSignature: Uint8Array | undefined;
  #verified = false;

  constructor(username: string, password: string, nonce: string) {
    assertNoControl(username, "username");
    this.#password = prepare(password);
    this.#nonce = nonce;
    this.#clientFirstBare = `n=${saslName(username.normalize("NFKC"))},r=${nonce}`;
  }

  start(): Promise<Uint8Array> {
    return Promise.resolve(utf8(`n,,${this.#clientFirstBare}`));
  }

  next(challenge: Uint8Array): Promise<Uint8Array> {
    return this.#expectedServerSignature === undefined
      ? this.#clientFinal(text(challenge))
      : this.#serverFinal(text(challenge));
  }

  async #clientFinal(serverFirst: string): Promise<Uint8Array> {
    const attributes = parseAttributes(serverFirst);
    const error = attributes.get("e");
    if (error) throw new Error(`SCRAM-SHA-256: the server reported "${error}"`);
    const nonce = attributes.get("r");
    const salt = attributes.get("s");
    const iterations = Number(attributes.get("i"));
    if (!nonce || !nonce.startsWith(this.#nonce) || nonce.length === this.#nonce.length) {
      throw new Error("SCRAM-SHA-256: the server's nonce does not extend the client's");
    }
    if (!salt || !Number.isInteger(iterations) || iterations < 1 || iterations > MAX_ITERATIONS) {
      throw new Error("SCRAM-SHA-256: the server's salt or iteration count is invalid");
    }
    const salted = await pbkdf2(utf8(this.#password), fromBase64(salt), iterations);
    const clientKey = await hmac(salted, utf8("Client Key"));
    const storedKey = new Uint8Array(
      await crypto.subtle.digest("SHA-256", clientKey as Uint8Array<ArrayBuffer>),
    );
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = utf8(`${this.#clientFirstBare},${serverFirst},${withoutProof}`);
    const signature = await hmac(storedKey, authMessage);
    const proof = clientKey.map((byte, i) => byte ^ signature[i]!);
    const serverKey = await hmac(salted, utf8("Server Key"));
    this.#expectedServerSignature = await hmac(serverKey, authMessage);
    return utf8(`${withoutProof},p=${toBase64(proof)}`);
  }

  #serverFinal(serverFinal: string): Promise<Uint8Array> {
    try {
      this.#check(serverFinal);
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.resolve(new Uint8Array());
  }

  #check(serverFinal: string): void {
    const attributes = parseAttributes(serverFinal);
    const error = attributes.get("e");
    if (error) throw new Error(`SCRAM-SHA-256: the server reported "${error}"`);
    const signature = attributes.get("v");
    if (!signature || !equal(fromBase64(signature), this.#expectedServerSignature!)) {
      throw new Error(
        "SCRAM-SHA-256: the server's signature is wrong: it does not know the password",
      );
    }
    this.#verified = true;
  }

  verify(success: Uint8Array): Promise<void> {
    if (this.#verified) return Promise.resolve();
    // Some servers put the server-final message into the success reply instead.
    try {
      if (this.#expectedServerSignature && success.length > 0) {
        this.#check(text(success));
        return Promise.resolve();
      }
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.reject(
      new Error(
        "SCRAM-SHA-256: the server accepted the login without proving it knows the password",
      ),
    );
  }

  toJSON(): { name: string } {
    return { name: this.name };
  }
}

/**
 * The SCRAM-SHA-256 mechanism, with server signature verification.
 *
 * @param username The user name.
 * @param password The password.
 * @param options `nonce` fixes the client nonce (for tests).
 * @returns The mechanism.
 *
 * @example
 * ```ts
 * import { scramSha256 } from "@postie/smtp";
 * import assert from "node:assert/strict";
 *
 * const first = await scramSha256("user", "pencil", { nonce: "rOprNGfwEbeRWgbNEkqO" }).start();
 * assert.equal(new TextDecoder().decode(first!), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
 * ```
 */
export function scramSha256(
  username: string,
  password: string,
  options: { nonce?: string } = {},
): SaslMechanism {
  return new ScramSha256(username, password, options.nonce ?? randomNonce());
}
