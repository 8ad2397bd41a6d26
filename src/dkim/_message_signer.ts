/**
 * Signs a whole message read once, chunk by chunk: the header block is kept (it is small), the
 * body only hashed, once per body canonicalization in use, so memory stays flat however large
 * the body is. The result is the `DKIM-Signature` fields to put before the message.
 *
 * The body hash is incremental, which Web Crypto's `digest()` is not: it comes from
 * `node:crypto`'s `createHash("sha256")` (Deno and Node.js both have it); the signatures
 * themselves are Web Crypto's.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { BodyCanonicalizer, type Canonicalization } from "./_canonicalize.ts";
import { HeaderReader, splitFields } from "./_header_fields.ts";
import { type ResolvedSigner, signatureField } from "./_signer.ts";
import { chunksOf } from "../protocol/_message_data.ts";

/** The body of a message, canonicalized and hashed one way. */
interface BodyHash {
  readonly canonicalizer: BodyCanonicalizer;
  readonly hash: Hash;
}

/** Reads one message and signs it with every signer, in order. */
export class MessageSigner {
  readonly #signers: readonly ResolvedSigner[];
  readonly #header = new HeaderReader();
  readonly #bodies = new Map<Canonicalization, BodyHash>();
  #inBody = false;

  /** @param signers Who signs, in the order of the resulting fields. */
  constructor(signers: readonly ResolvedSigner[]) {
    this.#signers = signers;
    for (const signer of signers) {
      const mode = signer.bodyCanonicalization;
      if (this.#bodies.has(mode)) continue;
      const hash = createHash("sha256");
      this.#bodies.set(mode, { canonicalizer: new BodyCanonicalizer(mode, hash), hash });
    }
  }

  /** Reads the next chunk of the message (CRLF line ends, not dot-stuffed). */
  push(chunk: Uint8Array): void {
    if (!this.#inBody) {
      const start = this.#header.push(chunk);
      if (start === -1) return;
      this.#inBody = true;
      chunk = chunk.subarray(start);
    }
    for (const body of this.#bodies.values()) body.canonicalizer.push(chunk);
  }

  /**
   * Ends the message and signs it.
   *
   * @param now The signing time, in milliseconds since the epoch (`t=`).
   * @returns The `DKIM-Signature` fields, each ending in CRLF.
   */
  async finish(now: number = Date.now()): Promise<string> {
    const fields = splitFields(this.#header.finish());
    const hashes = new Map<Canonicalization, string>();
    for (const [mode, body] of this.#bodies) {
      body.canonicalizer.end();
      hashes.set(mode, body.hash.digest("base64"));
    }
    const time = Math.floor(now / 1000);
    let out = "";
    for (const signer of this.#signers) {
      out += await signatureField(signer, fields, hashes.get(signer.bodyCanonicalization)!, time);
    }
    return out;
  }
}

/**
 * Signs a message held in memory.
 *
 * @returns The `DKIM-Signature` fields, each ending in CRLF.
 */
export async function signBytes(
  message: Uint8Array,
  signers: readonly ResolvedSigner[],
): Promise<string> {
  const signer = new MessageSigner(signers);
  signer.push(message);
  return await signer.finish();
}

/** How much of a byte stream is read at a time to sign it, into one reused buffer. */
const SIGN_CHUNK = 64 * 1024;

/**
 * Signs a message read from a stream, to its end; the stream is cancelled if reading or
 * signing fails. A byte stream (a composed message) is read into one reused buffer, so that
 * signing a large message makes no garbage per chunk: the signer copies nothing it keeps.
 *
 * @returns The `DKIM-Signature` fields, each ending in CRLF.
 */
export async function signStream(
  message: ReadableStream<Uint8Array>,
  signers: readonly ResolvedSigner[],
): Promise<string> {
  const signer = new MessageSigner(signers);
  for await (const chunk of chunksOf(message, true, SIGN_CHUNK)) signer.push(chunk);
  return await signer.finish();
}
