/**
 * Private keys: the forms DKIM signers are given (PKCS#8 and PKCS#1 PEM, CryptoKey), and every
 * key that must be refused, with an error that says what to do, before anything is sent.
 */
import assert from "node:assert/strict";
import { signMessage } from "../../src/dkim/mod.ts";
import { SmtpClient } from "../../mod.ts";
import { MockSmtpServer } from "../../src/testing/mod.ts";
import { fixture } from "../_helpers/smtp_server.ts";
import { test } from "../_helpers/test.ts";
import { assertVerifies, dnsRecord, fixtureKey, signatureTags } from "./_dkim.ts";

const MESSAGE = "From: a@example.com\r\nTo: b@example.net\r\nSubject: Keys\r\n\r\nHello\r\n";
const domain = "example.com";

function signer(privateKey: string | CryptoKey, extra: Record<string, unknown> = {}) {
  return { domain, selector: "s1", privateKey, ...extra };
}

async function rejects(
  privateKey: string | CryptoKey,
  type: typeof TypeError | typeof RangeError,
  pattern: RegExp,
  extra: Record<string, unknown> = {},
): Promise<void> {
  await assert.rejects(signMessage(MESSAGE, signer(privateKey, extra)), (error) => {
    assert.ok(error instanceof type, `${(error as Error).name}: ${(error as Error).message}`);
    assert.match((error as Error).message, pattern);
    return true;
  });
}

test("a PKCS#1 key (openssl genrsa) signs exactly as the same key in PKCS#8", async () => {
  const pkcs1 = fixtureKey("rsa2048-pkcs1.pem");
  const pkcs8 = fixtureKey("rsa2048-pkcs8.pem");
  assert.match(pkcs1, /BEGIN RSA PRIVATE KEY/);
  const dns = { [`s1._domainkey.${domain}`]: await dnsRecord(pkcs8) };
  // The same second: t= is the same, and RSA PKCS #1 v1.5 signatures are deterministic.
  let a: Uint8Array, b: Uint8Array;
  do {
    const second = Math.floor(Date.now() / 1000);
    a = await signMessage(MESSAGE, signer(pkcs1));
    b = await signMessage(MESSAGE, signer(pkcs8));
    if (Math.floor(Date.now() / 1000) === second) break;
  } while (true);
  assert.deepEqual(a, b);
  await assertVerifies(a, dns, ["s1"]);
});

/** A fresh RSA signing key pair (SHA-256, exponent 65537) made by Web Crypto. */
async function rsaKeyPair(name: string, modulusLength: number): Promise<CryptoKeyPair> {
  const params = {
    name,
    modulusLength,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: "SHA-256",
  };
  return await crypto.subtle.generateKey(params, false, ["sign"]) as CryptoKeyPair;
}

test("an RSA key of 1024 bits is the smallest accepted (RFC 8301)", async () => {
  const key = fixtureKey("rsa1024-pkcs1.pem");
  const signed = await signMessage(MESSAGE, signer(key));
  assert.equal(signatureTags(signed)[0]!.a, "rsa-sha256");
});

test("an Ed25519 key written by openssl signs, and the algorithm follows from the key", async () => {
  const key = fixtureKey("ed25519.pem");
  const signed = await signMessage(MESSAGE, signer(key));
  assert.equal(signatureTags(signed)[0]!.a, "ed25519-sha256");
  await assertVerifies(signed, { [`s1._domainkey.${domain}`]: await dnsRecord(key) }, ["s1"]);
});

test("a CryptoKey signs: RSASSA-PKCS1-v1_5 with SHA-256, or Ed25519", async () => {
  const rsa = await rsaKeyPair("RSASSA-PKCS1-v1_5", 2048);
  const ed = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign"]) as CryptoKeyPair;
  const signed = await signMessage(MESSAGE, [
    signer(rsa.privateKey),
    signer(ed.privateKey, { selector: "s2" }),
  ]);
  assert.deepEqual(signatureTags(signed).map((t) => t.a), ["rsa-sha256", "ed25519-sha256"]);
});

test("a 512-bit RSA key is refused with a RangeError that says why", async () => {
  await rejects(
    fixtureKey("rsa512-pkcs1.pem"),
    RangeError,
    /^Invalid dkim\.privateKey for example\.com \(selector s1\): RSA keys need at least 1024 bits \(RFC 8301\), this one has 512/,
  );
  const weak = await rsaKeyPair("RSASSA-PKCS1-v1_5", 512)
    .then((pair) => pair.privateKey).catch(() => undefined);
  // Where Web Crypto makes 512-bit keys at all, such a CryptoKey is refused too.
  if (weak) await rejects(weak, RangeError, /this one has 512/);
});

test("a key of the wrong type is refused: EC (PKCS#8 and SEC 1), RSA-PSS, a mismatched algorithm", async () => {
  await rejects(
    fixtureKey("ec-p256.pem"),
    TypeError,
    /it is an EC \(ECDSA\) key: DKIM signs with RSA/,
  );
  await rejects(fixtureKey("ec-p256-sec1.pem"), TypeError, /it is an EC \(ECDSA\) key/);
  const pss = await rsaKeyPair("RSA-PSS", 2048);
  await rejects(pss.privateKey, TypeError, /the CryptoKey is for RSA-PSS/);
  await rejects(
    fixtureKey("ed25519.pem"),
    TypeError,
    /^Invalid dkim\.algorithm: "rsa-sha256" does not match the key, which is an Ed25519 key/,
    { algorithm: "rsa-sha256" },
  );
  await rejects(fixtureKey("rsa2048-pkcs1.pem"), TypeError, /which is an RSA key/, {
    algorithm: "ed25519-sha256",
  });
});

test("a PEM that is not a private key is refused, saying what it is", async () => {
  await rejects(fixture("ca.pem"), TypeError, /it is a certificate, not a private key$/);
  await rejects(fixtureKey("rsa2048-public.pem"), TypeError, /it is a public key/);
  await rejects(
    fixtureKey("rsa-encrypted.pem"),
    TypeError,
    /the key is encrypted: decrypt it first/,
  );
  await rejects(
    "not a key at all",
    TypeError,
    /not a PEM private key \(expected -----BEGIN PRIVATE KEY-----/,
  );
  await rejects(
    "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
    TypeError,
    /the PEM block does not hold a private key: DER/,
  );
  await rejects(
    "-----BEGIN PRIVATE KEY-----\n%%%%\n-----END PRIVATE KEY-----",
    TypeError,
    /not valid base64/,
  );
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  await rejects(pair.publicKey, TypeError, /the CryptoKey is a public key/);
});

test("a bad key fails SmtpClient.connect() before any connection is made", async () => {
  await using server = new MockSmtpServer();
  await assert.rejects(
    SmtpClient.connect({
      ...server.clientOptions(),
      dkim: { domain, selector: "s1", privateKey: fixtureKey("rsa512-pkcs1.pem") },
    }),
    RangeError,
  );
  assert.equal(server.connections, 0);
});
