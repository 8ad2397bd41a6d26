/**
 * DKIM private keys: a PEM string (PKCS#8 for RSA and Ed25519, PKCS#1 for RSA) or a Web Crypto
 * `CryptoKey`, checked without any I/O (so that a bad key fails before connecting) and imported
 * into Web Crypto once, when first used.
 *
 * A PKCS#1 key (`BEGIN RSA PRIVATE KEY`, what `openssl genrsa` writes) is wrapped into PKCS#8
 * here (`pkcs1ToPkcs8()`): Web Crypto imports PKCS#8 only, and `node:crypto` is not needed.
 *
 * @module
 */

import {
  DerError,
  type Element,
  expectElement,
  INTEGER,
  integerBits,
  OBJECT_IDENTIFIER,
  OCTET_STRING,
  oidText,
  pkcs1ToPkcs8,
  readElement,
  SEQUENCE,
} from "./_der.ts";
import type { DkimAlgorithm } from "./types.ts";

/** RFC 8301 section 3.2: signers MUST use RSA keys of at least 1024 bits. */
export const MIN_RSA_BITS = 1024;

/** A private key that passed every check that needs no I/O. */
export interface CheckedKey {
  readonly algorithm: DkimAlgorithm;
  /** PKCS#8 DER to import, or the `CryptoKey` given. */
  readonly key: Uint8Array | CryptoKey;
}

const RSA_OID = "1.2.840.113549.1.1.1";
const ED25519_OID = "1.3.101.112";

/** Key types that DKIM cannot sign with, by OID, for a clear message. */
const OTHER_KEYS: Readonly<Record<string, string>> = {
  "1.2.840.10045.2.1": "an EC (ECDSA) key",
  "1.3.101.113": "an Ed448 key",
  "1.3.101.110": "an X25519 key",
  "1.3.101.111": "an X448 key",
  "1.2.840.113549.1.1.10": "an RSA-PSS key",
  "1.2.840.10040.4.1": "a DSA key",
};

/** Turns the reason a key is refused into the error message, which names the signer. */
export type Explain = (why: string) => string;

const SUPPORTED = "DKIM signs with RSA (rsa-sha256) or Ed25519 (ed25519-sha256) keys";

function decodePemBody(body: string): Uint8Array | undefined {
  const text = body.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0 || text === "") {
    return undefined;
  }
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** What is wrong with a PEM block that is not a private key DKIM can use, if anything is. */
function refusal(label: string, body: string): string | undefined {
  if (label === "PRIVATE KEY" || label === "RSA PRIVATE KEY") {
    return /Proc-Type:\s*4,ENCRYPTED/.test(body)
      ? "the key is encrypted: decrypt it first (openssl pkey -in key.pem -out plain.pem)"
      : undefined;
  }
  if (label === "ENCRYPTED PRIVATE KEY") {
    return "the key is encrypted: decrypt it first (openssl pkey -in key.pem -out plain.pem)";
  }
  if (label === "EC PRIVATE KEY") return `it is an EC (ECDSA) key: ${SUPPORTED}`;
  if (label === "DSA PRIVATE KEY") return `it is a DSA key: ${SUPPORTED}`;
  if (label.endsWith("PUBLIC KEY")) {
    return "it is a public key: signing needs the private key (the public key goes in DNS)";
  }
  if (label.includes("CERTIFICATE")) return "it is a certificate, not a private key";
  return `it holds "${label}", not a private key`;
}

/**
 * Checks a PEM private key and returns its algorithm and PKCS#8 DER.
 *
 * @throws {TypeError} When it is not a usable private key: no PEM, another kind of PEM block,
 *   an encrypted key, a key type other than RSA or Ed25519, or bytes that are not a key.
 * @throws {RangeError} When an RSA key has fewer than 1024 bits.
 */
function checkPem(pem: string, explain: Explain): CheckedKey {
  let firstRefusal: string | undefined;
  for (const [, label, body] of pem.matchAll(PEM_BLOCK)) {
    const refused = refusal(label!, body!);
    if (refused) {
      firstRefusal ??= refused;
      continue;
    }
    const der = decodePemBody(body!);
    if (!der) throw new TypeError(explain("the PEM block is not valid base64"));
    try {
      return label === "RSA PRIVATE KEY" ? checkPkcs1(der, explain) : checkPkcs8(der, explain);
    } catch (error) {
      if (error instanceof DerError) {
        throw new TypeError(
          explain(`the PEM block does not hold a ${label!.toLowerCase()}: ${error.message}`),
        );
      }
      throw error;
    }
  }
  throw new TypeError(explain(
    firstRefusal ??
      "not a PEM private key (expected -----BEGIN PRIVATE KEY----- or " +
        "-----BEGIN RSA PRIVATE KEY-----)",
  ));
}

function rsaBits(der: Uint8Array, sequence: Element, explain: Explain): number {
  const version = expectElement(der, sequence.start, sequence.end, INTEGER);
  const modulus = expectElement(der, version.end, sequence.end, INTEGER);
  const bits = integerBits(der, modulus);
  if (bits === 0) throw new TypeError(explain("the RSA key has no modulus"));
  return bits;
}

function checkRsaBits(bits: number, explain: Explain): void {
  if (bits < MIN_RSA_BITS) {
    throw new RangeError(explain(
      `RSA keys need at least ${MIN_RSA_BITS} bits (RFC 8301), this one has ${bits}: ` +
        "make a 2048-bit key (openssl genrsa -out key.pem 2048)",
    ));
  }
}

function checkPkcs1(der: Uint8Array, explain: Explain): CheckedKey {
  const sequence = expectElement(der, 0, der.length, SEQUENCE);
  if (sequence.end !== der.length) throw new DerError("DER data after the key");
  checkRsaBits(rsaBits(der, sequence, explain), explain);
  return { algorithm: "rsa-sha256", key: pkcs1ToPkcs8(der) };
}

function checkPkcs8(der: Uint8Array, explain: Explain): CheckedKey {
  const info = expectElement(der, 0, der.length, SEQUENCE);
  if (info.end !== der.length) throw new DerError("DER data after the key");
  const version = expectElement(der, info.start, info.end, INTEGER);
  const algorithm = expectElement(der, version.end, info.end, SEQUENCE);
  const oid = oidText(der, expectElement(der, algorithm.start, algorithm.end, OBJECT_IDENTIFIER));
  const octets = expectElement(der, algorithm.end, info.end, OCTET_STRING);
  if (oid === RSA_OID) {
    const inner = expectElement(der, octets.start, octets.end, SEQUENCE);
    checkRsaBits(rsaBits(der, inner, explain), explain);
    return { algorithm: "rsa-sha256", key: der };
  }
  if (oid === ED25519_OID) {
    const seed = readElement(der, octets.start, octets.end);
    if (seed.tag !== OCTET_STRING || seed.end - seed.start !== 32) {
      throw new TypeError(explain("the Ed25519 key is not 32 bytes"));
    }
    return { algorithm: "ed25519-sha256", key: der };
  }
  throw new TypeError(
    explain(`it is ${OTHER_KEYS[oid] ?? `a key of another type (OID ${oid})`}: ${SUPPORTED}`),
  );
}

function checkCryptoKey(key: CryptoKey, explain: Explain): CheckedKey {
  if (key.type !== "private") {
    throw new TypeError(
      explain(`the CryptoKey is a ${key.type} key: signing needs the private key`),
    );
  }
  if (!key.usages.includes("sign")) {
    throw new TypeError(explain('the CryptoKey does not allow "sign"'));
  }
  const algorithm = key.algorithm as {
    name: string;
    modulusLength?: number;
    hash?: { name: string };
  };
  if (algorithm.name === "Ed25519") return { algorithm: "ed25519-sha256", key };
  if (algorithm.name === "RSASSA-PKCS1-v1_5") {
    if (algorithm.hash?.name !== "SHA-256") {
      throw new TypeError(
        explain(`the RSA CryptoKey is for ${algorithm.hash?.name}: DKIM needs SHA-256`),
      );
    }
    checkRsaBits(algorithm.modulusLength ?? 0, explain);
    return { algorithm: "rsa-sha256", key };
  }
  throw new TypeError(explain(
    `the CryptoKey is for ${algorithm.name}: ${SUPPORTED} (import RSA keys as ` +
      "RSASSA-PKCS1-v1_5 with SHA-256)",
  ));
}

/**
 * Checks a DKIM private key without any I/O.
 *
 * @param privateKey The key as given.
 * @param explain Makes the error message for a reason (it names the signer).
 * @returns Its algorithm and what to import.
 * @throws {TypeError} When it is not an RSA or Ed25519 private key.
 * @throws {RangeError} When an RSA key has fewer than 1024 bits.
 */
export function checkPrivateKey(
  privateKey: unknown,
  explain: Explain,
): CheckedKey {
  if (typeof privateKey === "string") return checkPem(privateKey, explain);
  if (typeof CryptoKey !== "undefined" && privateKey instanceof CryptoKey) {
    return checkCryptoKey(privateKey, explain);
  }
  throw new TypeError(explain("privateKey must be a PEM string or a CryptoKey"));
}

/** Imports a checked key into Web Crypto for signing. */
export async function importKey(checked: CheckedKey): Promise<CryptoKey> {
  if (!(checked.key instanceof Uint8Array)) return checked.key;
  const algorithm = checked.algorithm === "rsa-sha256"
    ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }
    : { name: "Ed25519" };
  const der = checked.key as Uint8Array<ArrayBuffer>;
  return await crypto.subtle.importKey("pkcs8", der, algorithm, false, ["sign"]);
}
