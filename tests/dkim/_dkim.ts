/**
 * What the DKIM tests share: keys (made with Web Crypto, or read from `tests/fixtures/dkim/`),
 * the DNS records that publish them, and verification with npm `mailauth` (a verifier postie did
 * not write) through a DNS resolver stub that knows only those records.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { dkimVerify } from "mailauth/lib/dkim/verify.js";
import type { DkimSigner } from "../../src/dkim/mod.ts";

const fixtures = new URL("../fixtures/dkim/", import.meta.url);

/** A key file of `tests/fixtures/dkim/` (see its generate.sh). */
export function fixtureKey(name: string): string {
  return Deno.readTextFileSync(new URL(name, fixtures));
}

function pem(label: string, der: ArrayBuffer): string {
  const base64 = Buffer.from(der).toString("base64").replace(/.{64}/g, "$&\n");
  return `-----BEGIN ${label}-----\n${base64}\n-----END ${label}-----\n`;
}

function derOf(text: string): Uint8Array<ArrayBuffer> {
  const body = text.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return new Uint8Array(Buffer.from(body, "base64"));
}

/** A fresh RSA key as PKCS#8 PEM. */
export async function rsaPem(bits = 2048): Promise<string> {
  const pair = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: bits,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  ) as CryptoKeyPair;
  return pem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", pair.privateKey));
}

/** A fresh Ed25519 key as PKCS#8 PEM. */
export async function ed25519Pem(): Promise<string> {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  return pem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", pair.privateKey));
}

/** The PKCS#8 DER of a PEM key (PKCS#1 is wrapped by the library; here only PKCS#8). */
async function jwkOf(privatePem: string): Promise<JsonWebKey> {
  const der = derOf(privatePem);
  for (
    const algorithm of [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, { name: "Ed25519" }]
  ) {
    try {
      const key = await crypto.subtle.importKey("pkcs8", der, algorithm, true, ["sign"]);
      return await crypto.subtle.exportKey("jwk", key);
    } catch {
      // the other algorithm
    }
  }
  throw new Error("Not a PKCS#8 RSA or Ed25519 key");
}

/** The DNS TXT record (`v=DKIM1; k=...; p=...`) that publishes the public half of a PKCS#8 key. */
export async function dnsRecord(privatePem: string): Promise<string> {
  const jwk = await jwkOf(privatePem);
  if (jwk.kty === "OKP") {
    return `v=DKIM1; k=ed25519; p=${Buffer.from(jwk.x!, "base64url").toString("base64")}`;
  }
  const publicKey = await crypto.subtle.importKey(
    "jwk",
    { kty: "RSA", n: jwk.n!, e: jwk.e!, ext: true },
    { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    true,
    ["verify"],
  );
  const spki = await crypto.subtle.exportKey("spki", publicKey);
  return `v=DKIM1; k=rsa; p=${Buffer.from(spki).toString("base64")}`;
}

/** Signers and the DNS that publishes their keys. */
export interface Keys {
  readonly rsa: DkimSigner;
  readonly ed25519: DkimSigner;
  /** `<selector>._domainkey.<domain>` -> TXT record. */
  readonly dns: Record<string, string>;
}

/** An RSA-2048 and an Ed25519 signer for example.com, made once per test module. */
export async function makeKeys(domain = "example.com"): Promise<Keys> {
  const rsaKey = await rsaPem();
  const edKey = await ed25519Pem();
  return {
    rsa: { domain, selector: "rsa2048", privateKey: rsaKey },
    ed25519: { domain, selector: "ed25519", privateKey: edKey },
    dns: {
      [`rsa2048._domainkey.${domain}`]: await dnsRecord(rsaKey),
      [`ed25519._domainkey.${domain}`]: await dnsRecord(edKey),
    },
  };
}

/** One signature's verdict, as mailauth reports it. */
export interface Verdict {
  readonly result: string;
  readonly comment: string;
  readonly selector: string;
  readonly algorithm: string;
  readonly signedHeaders: readonly string[];
}

/** Verifies every DKIM-Signature of `message` with mailauth, against `dns` only. */
export async function verify(
  message: Uint8Array | string,
  dns: Readonly<Record<string, string>>,
): Promise<Verdict[]> {
  const resolver = (name: string, type: string) => {
    const record = type === "TXT" ? dns[name] : undefined;
    if (record === undefined) {
      const error = new Error(`no ${type} record for ${name}`) as Error & { code: string };
      error.code = "ENOTFOUND";
      return Promise.reject(error);
    }
    return Promise.resolve([[record]]);
  };
  const input = typeof message === "string" ? Buffer.from(message) : Buffer.from(message);
  // deno-lint-ignore no-explicit-any
  const output = await dkimVerify(input, { resolver: resolver as any });
  // deno-lint-ignore no-explicit-any
  return output.results.map((r: any) => ({
    result: r.status.result,
    comment: r.status.comment ?? "",
    selector: r.selector ?? "",
    algorithm: r.algo ?? "",
    signedHeaders: r.signingHeaders?.keys?.split(": ") ?? [],
  }));
}

/** Asserts that `message` carries exactly `selectors`' signatures, in order, and all pass. */
export async function assertVerifies(
  message: Uint8Array | string,
  dns: Readonly<Record<string, string>>,
  selectors: readonly string[],
): Promise<Verdict[]> {
  const verdicts = await verify(message, dns);
  assert.deepEqual(
    verdicts.map((v) => `${v.selector}: ${v.result}${v.comment ? ` (${v.comment})` : ""}`),
    selectors.map((s) => `${s}: pass`),
  );
  return verdicts;
}

/**
 * Asserts that every signature of `message` was checked and failed: `fail` (the signature does
 * not match the signed fields) or, as mailauth reports a body hash that does not match,
 * `neutral` with "body hash did not verify". Never `pass`, and not a missing key either.
 */
export async function assertFails(
  message: Uint8Array | string,
  dns: Readonly<Record<string, string>>,
): Promise<Verdict[]> {
  const verdicts = await verify(message, dns);
  assert.ok(verdicts.length > 0, "no DKIM-Signature found");
  for (const verdict of verdicts) {
    const failed = verdict.result === "fail" ||
      (verdict.result === "neutral" && verdict.comment === "body hash did not verify");
    assert.ok(failed, JSON.stringify(verdict));
  }
  return verdicts;
}

/** The DKIM-Signature fields at the top of a message, unfolded, as tag -> value maps. */
export function signatureTags(message: Uint8Array | string): Record<string, string>[] {
  const text = typeof message === "string" ? message : new TextDecoder().decode(message);
  const header = text.slice(0, text.indexOf("\r\n\r\n") + 2);
  const fields = header.split(/\r\n(?![ \t])/).filter((f) => /^DKIM-Signature:/i.test(f));
  return fields.map((field) => {
    const value = field.slice(field.indexOf(":") + 1).replace(/\r\n[ \t]/g, " ");
    const tags: Record<string, string> = {};
    for (const part of value.split(";")) {
      const eq = part.indexOf("=");
      if (eq === -1) continue;
      tags[part.slice(0, eq).trim()] = part.slice(eq + 1).replace(/\s+/g, "");
    }
    return tags;
  });
}
