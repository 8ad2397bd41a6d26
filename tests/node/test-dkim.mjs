/**
 * `@postie/smtp/dkim` on Node.js 20, from the built package: Web Crypto signs with RSA (a PKCS#1
 * key, as `openssl genrsa` writes it) and Ed25519, and npm `mailauth` verifies what the mock
 * server received and what `signMessage()` returned, through the ES module and CommonJS builds.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { pathToFileURL } from "node:url";
import { test } from "node:test";
import { importTarget, requireDependency, requirePackage } from "./_helpers.cjs";

const postie = await import(pathToFileURL(importTarget(".")).href);
const testing = await import(pathToFileURL(importTarget("./testing")).href);
const dkimTarget = importTarget("./dkim");
assert.ok(dkimTarget, "the package exports ./dkim");
const dkim = await import(pathToFileURL(dkimTarget).href);
const { dkimVerify } = requireDependency("mailauth/lib/dkim/verify");

const rsa = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  privateKeyEncoding: { type: "pkcs1", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "der" },
});
const ed = generateKeyPairSync("ed25519", {
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "der" },
});
const dns = {
  "rsa._domainkey.example.com": `v=DKIM1; k=rsa; p=${rsa.publicKey.toString("base64")}`,
  // The SPKI of an Ed25519 key ends with its 32 bytes, which is what DNS publishes.
  "ed._domainkey.example.com": `v=DKIM1; k=ed25519; p=${
    ed.publicKey.subarray(-32).toString("base64")
  }`,
};
const signers = [
  { domain: "example.com", selector: "rsa", privateKey: rsa.privateKey },
  { domain: "example.com", selector: "ed", privateKey: ed.privateKey },
];

async function verdicts(message) {
  const resolver = (name) =>
    dns[name] ? Promise.resolve([[dns[name]]]) : Promise.reject(
      Object.assign(new Error(`no record for ${name}`), { code: "ENOTFOUND" }),
    );
  const result = await dkimVerify(Buffer.from(message), { resolver });
  return result.results.map((r) => `${r.selector}: ${r.status.result}`);
}

test("import: a client with dkim signs with RSA (PKCS#1) and Ed25519; mailauth verifies", async () => {
  assert.match(rsa.privateKey, /BEGIN RSA PRIVATE KEY/);
  const server = new testing.MockSmtpServer();
  try {
    await postie.sendMail(
      { ...server.clientOptions(), dkim: signers },
      { from: "a@example.com", to: "b@example.net", subject: "Grüße", text: "Hallo\n.dot\n" },
    );
    assert.deepEqual(await verdicts(server.messages[0].raw), ["rsa: pass", "ed: pass"]);
  } finally {
    await server.close();
  }
});

test("require: signMessage() and signatureHeaders() of the CommonJS build", async () => {
  const { signMessage, signatureHeaders } = requirePackage("./dkim");
  const raw = "From: a@example.com\nTo: b@example.net\nSubject: raw\n\nbody\n";
  const signed = await signMessage(raw, signers);
  assert.deepEqual(await verdicts(signed), ["rsa: pass", "ed: pass"]);
  const fields = await signatureHeaders(new Blob([raw]).stream(), signers[1]);
  assert.deepEqual(await verdicts(fields + raw.replace(/\n/g, "\r\n")), ["ed: pass"]);
  await assert.rejects(
    signMessage(raw, { domain: "example.com", selector: "x", privateKey: "not a key" }),
    TypeError,
  );
  assert.ok(dkim.signMessage, "the ES module build exports signMessage too");
});

test("a signed file attachment (hashed on one reading, sent on another) verifies, over BDAT and DATA", async () => {
  const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = mkdtempSync(join(tmpdir(), "postie_dkim_file_"));
  // Larger than a read buffer, and not a multiple of it: several full chunks and a short one.
  const content = new Uint8Array(700_001).map((_, i) => (i * 7 + (i >> 9)) & 0xff);
  writeFileSync(join(dir, "data.bin"), content);
  try {
    for (const chunking of [true, false]) {
      const server = new testing.MockSmtpServer({ extensions: { CHUNKING: chunking } });
      try {
        await postie.sendMail({ ...server.clientOptions(), dkim: signers }, {
          from: "a@example.com",
          to: "b@example.net",
          subject: "file",
          text: "attached",
          attachments: [{ filename: "data.bin", content: { path: join(dir, "data.bin") } }],
        });
        const raw = server.messages[0].raw;
        assert.deepEqual(await verdicts(raw), ["rsa: pass", "ed: pass"], `CHUNKING ${chunking}`);
        const text = new TextDecoder().decode(raw);
        const base64 = text.split("\r\n\r\n").at(-1).split("\r\n--")[0].replace(/\r\n/g, "");
        assert.deepEqual(new Uint8Array(Buffer.from(base64, "base64")), content);
      } finally {
        await server.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true });
  }
});
