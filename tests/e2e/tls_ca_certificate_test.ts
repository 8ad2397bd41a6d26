/**
 * A server certificate made with `openssl req -x509` is self-signed with basicConstraints
 * CA:TRUE. Deno's TLS (rustls) refuses a CA certificate as the server's own (`CaUsedAsEndEntity`)
 * even when it is in `tlsOptions.caCerts`, so the error must say what is wrong and what helps (a
 * leaf certificate, or CA:FALSE), not tell the user to trust it with caCerts, which they did.
 * Certificates are made at test time with the `openssl` command, into a temporary directory.
 */

import assert from "node:assert/strict";
import { SmtpClient, SmtpTlsError } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { startSmtpServer } from "../_helpers/smtp_server.ts";

const hasOpenssl = (() => {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();
if (!hasOpenssl) {
  console.warn("tls_ca_certificate_test.ts: skipped, the openssl command is not installed");
}

/** A self-signed certificate for localhost from `openssl req -x509`, with `extra` arguments. */
async function selfSigned(extra: string[] = []): Promise<{ cert: string; key: string }> {
  const dir = await Deno.makeTempDir({ prefix: "postie-cert-" });
  try {
    const { success, stderr } = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ...extra,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(success, new TextDecoder().decode(stderr));
    return {
      cert: await Deno.readTextFile(`${dir}/cert.pem`),
      key: await Deno.readTextFile(`${dir}/key.pem`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The basicConstraints CA flag of a PEM certificate, as openssl reads it. */
async function isCa(cert: string): Promise<boolean> {
  const child = new Deno.Command("openssl", {
    args: ["x509", "-noout", "-ext", "basicConstraints"],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(cert));
  await writer.close();
  const { stdout } = await child.output();
  return /CA:TRUE/.test(new TextDecoder().decode(stdout));
}

for (const tls of ["implicit", "starttls"] as const) {
  test(
    `tls "${tls}": a trusted CA:TRUE server certificate is explained, not "trust it with caCerts"`,
    { ignore: !hasOpenssl },
    async () => {
      const { cert, key } = await selfSigned();
      assert.equal(await isCa(cert), true, "openssl req -x509 makes a CA:TRUE certificate");
      await using server = await startSmtpServer({ key, cert, secure: tls === "implicit" });
      const error = await SmtpClient.connect({
        hostname: "localhost",
        port: server.port,
        tls,
        tlsOptions: { caCerts: [cert] },
      }).then((client) => (client.close(), undefined), (error: unknown) => error);
      assert.ok(error instanceof SmtpTlsError, String(error));
      assert.match(error.message, /CaUsedAsEndEntity/);
      assert.match(error.message, /is a CA certificate \(basicConstraints CA:TRUE/);
      assert.match(error.message, /a leaf certificate signed by that CA/);
      assert.match(error.message, /basicConstraints CA:FALSE/);
      assert.doesNotMatch(error.message, /trust it with tlsOptions\.caCerts|add the CA/);
      assert.equal(server.received.length, 0);
    },
  );
}

test(
  "the advised fix works: a self-signed CA:FALSE certificate in caCerts is accepted",
  { ignore: !hasOpenssl },
  async () => {
    const { cert, key } = await selfSigned(["-addext", "basicConstraints=critical,CA:FALSE"]);
    assert.equal(await isCa(cert), false);
    await using server = await startSmtpServer({ key, cert, secure: true });
    await using client = await SmtpClient.connect({
      hostname: "localhost",
      port: server.port,
      tls: "implicit",
      tlsOptions: { caCerts: [cert] },
    });
    assert.ok(client.tls);
  },
);
