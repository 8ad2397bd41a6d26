/**
 * # DKIM signing: `@postie/smtp/dkim`
 *
 * DKIM (RFC 6376) lets receivers check that a message comes from your domain and was not
 * changed on the way; Gmail and Yahoo require it of bulk senders. postie signs with RSA
 * (`rsa-sha256`) and Ed25519 (`ed25519-sha256`, RFC 8463), one signature or several at once
 * (dual signing), through Web Crypto: nothing is added to the runtime dependencies.
 *
 * - When sending, give `dkim` to `SmtpClient.connect()`, `sendMail()` or `new SmtpPool()` (every
 *   message), or to `send(message, { dkim })` (one message; `false` turns it off). The message
 *   is signed once, on its final bytes, and the same bytes go to every retry and every
 *   transaction; what goes over DATA (dot-stuffed) or BDAT verifies at the receiver.
 * - {@linkcode signMessage} signs a raw message (bytes, text or a stream) and returns it with
 *   its `DKIM-Signature` fields; {@linkcode signatureHeaders} returns only the fields, reading
 *   a stream once without holding it.
 * - Defaults: `relaxed/relaxed`; `h=` covers From, Sender, Reply-To, To, Cc, Subject, Date,
 *   Message-ID, In-Reply-To, References, MIME-Version, Content-Type, Content-Transfer-Encoding
 *   and every List-* field present, with From, To, Cc, Subject and Date over-signed; `t=` is
 *   set, `x=` on request (`expiresInSeconds`), `l=` never. RSA keys need 1024 bits or more.
 * - Memory stays flat: the body hash is computed while the message streams by. A composed
 *   message with file attachments is composed twice (the files are read twice, once for the
 *   hash and once to send) rather than held. A stream that can be read only once (a raw
 *   message's, or an attachment's) is held in memory to be signed, up to 32 MiB; beyond that
 *   the send fails with a `RangeError` before anything is sent.
 *
 * Publish the public key at `<selector>._domainkey.<domain>` as a TXT record:
 * `v=DKIM1; k=rsa; p=<base64 SPKI>` (or `k=ed25519; p=<base64 of the 32-byte key>`).
 *
 * @example Sign every message of a client
 * ```ts
 * import { SmtpClient } from "@postie/smtp";
 * import { MockSmtpServer } from "@postie/smtp/testing";
 * import assert from "node:assert/strict";
 *
 * // Your key, e.g. Deno.readTextFileSync("dkim.pem") (made with `openssl genrsa -out dkim.pem 2048`).
 * const { privateKey } = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign"]) as CryptoKeyPair;
 *
 * await using server = new MockSmtpServer();
 * await using client = await SmtpClient.connect({
 *   hostname: "smtp.example.com",
 *   transport: server.transport, // leave out to connect for real
 *   dkim: { domain: "example.com", selector: "mail2025", privateKey },
 * });
 * await client.send({ from: "me@example.com", to: "you@example.net", subject: "Hi", text: "Hello" });
 * const signature = server.messages[0]!.headers.get("DKIM-Signature")!;
 * assert.match(signature, /a=ed25519-sha256; c=relaxed\/relaxed; d=example\.com; s=mail2025;/);
 * ```
 *
 * @module
 */

import { LineEnds, readWhole, withCrlfLineEnds } from "./_bodies.ts";
import { MessageSigner, signBytes } from "./_message_signer.ts";
import { resolveDkim } from "./_signer.ts";
import type { DkimOptions } from "./types.ts";

export type {
  DkimAlgorithm,
  DkimCanonicalization,
  DkimOptions,
  DkimSigner,
  WebCryptoKey,
} from "./types.ts";

const encoder = new TextEncoder();

/**
 * Signs a raw RFC 5322 message with one or more signers (dual signing: one `DKIM-Signature`
 * each, in order).
 *
 * The message's line ends become CRLF, and it ends with one, as SMTP delivers it: the
 * signature covers exactly what the receiver gets. A stream is read to its end (the result is
 * in memory); to sign a large message kept in a file without holding it, use
 * {@linkcode signatureHeaders} over one reading and send the fields before a second one.
 *
 * @param message The message: bytes, text (sent as UTF-8) or a stream.
 * @param dkim The signer, or signers.
 * @returns The `DKIM-Signature` field(s) followed by the message.
 * @throws {TypeError} When a signer is invalid (a missing field, a key that is not an RSA or
 *   Ed25519 private key, an algorithm that does not match the key).
 * @throws {RangeError} When an RSA key has fewer than 1024 bits.
 *
 * @example Sign a raw message with RSA and Ed25519 at once
 * ```ts
 * import { signMessage } from "@postie/smtp/dkim";
 * import assert from "node:assert/strict";
 *
 * const rsa = await crypto.subtle.generateKey(
 *   { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
 *   false,
 *   ["sign", "verify"],
 * ) as CryptoKeyPair;
 * const ed25519 = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign"]) as CryptoKeyPair;
 *
 * const signed = await signMessage(
 *   "From: me@example.com\nTo: you@example.net\nSubject: Hi\n\nHello\n",
 *   [
 *     { domain: "example.com", selector: "rsa2025", privateKey: rsa.privateKey },
 *     { domain: "example.com", selector: "ed2025", privateKey: ed25519.privateKey },
 *   ],
 * );
 * const text = new TextDecoder().decode(signed);
 * assert.match(text, /^DKIM-Signature: v=1; a=rsa-sha256;/);
 * assert.match(text, /\r\nDKIM-Signature: v=1; a=ed25519-sha256;/);
 * assert.ok(text.endsWith("\r\nFrom: me@example.com\r\nTo: you@example.net\r\nSubject: Hi\r\n\r\nHello\r\n"));
 * ```
 */
export async function signMessage(
  message: Uint8Array | string | ReadableStream<Uint8Array>,
  dkim: DkimOptions,
): Promise<Uint8Array<ArrayBuffer>> {
  const signers = resolveDkim(dkim);
  const bytes = message instanceof ReadableStream
    ? withCrlfLineEnds(await readWhole(message, Infinity, false, "the message"))
    : withCrlfLineEnds(typeof message === "string" ? encoder.encode(message) : message);
  const fields = encoder.encode(await signBytes(bytes, signers));
  const signed = new Uint8Array(fields.length + bytes.length);
  signed.set(fields);
  signed.set(bytes, fields.length);
  return signed;
}

/**
 * The `DKIM-Signature` field(s) of a raw message, each ending in CRLF, to be put before it.
 * A stream is read once, to its end, and not held: memory stays flat however large it is. The
 * message is signed as SMTP delivers it (every line end CRLF, a final CRLF), which is how
 * postie sends a raw message.
 *
 * @param message The message: bytes, text (sent as UTF-8) or a stream.
 * @param dkim The signer, or signers.
 * @returns The fields, to send before the message.
 * @throws {TypeError} When a signer is invalid.
 * @throws {RangeError} When an RSA key has fewer than 1024 bits.
 *
 * @example Sign a message kept in a file, reading it twice
 * ```ts
 * import { signatureHeaders } from "@postie/smtp/dkim";
 * import assert from "node:assert/strict";
 *
 * const { privateKey } = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign"]) as CryptoKeyPair;
 * const dkim = { domain: "example.com", selector: "ed2025", privateKey };
 * const file = new Blob(["From: me@example.com\r\nSubject: Logs\r\n\r\n", "many lines...\r\n"]);
 *
 * const fields = await signatureHeaders(file.stream(), dkim); // the first reading
 * const raw = new Blob([fields, file]).stream(); // the second: send { raw, envelope }
 * assert.match(await new Response(raw).text(), /^DKIM-Signature: .*\r\nFrom: me@example\.com\r\n/s);
 * ```
 */
export async function signatureHeaders(
  message: Uint8Array | string | ReadableStream<Uint8Array>,
  dkim: DkimOptions,
): Promise<string> {
  const signers = resolveDkim(dkim);
  if (!(message instanceof ReadableStream)) {
    return await signBytes(
      withCrlfLineEnds(typeof message === "string" ? encoder.encode(message) : message),
      signers,
    );
  }
  const signer = new MessageSigner(signers);
  const lineEnds = new LineEnds();
  const reader = message.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      signer.push(lineEnds.push(value));
    }
  } finally {
    reader.releaseLock();
  }
  signer.push(lineEnds.finish());
  return await signer.finish();
}
