/**
 * A 50 MB file attachment, signed: the file is read twice (once for the body hash, once to
 * send) rather than held, so the sending process's memory stays as flat as without DKIM. The
 * client runs in a child process (`_send_large.ts`) so that its peak RSS is its own; the mock
 * server here receives the message and mailauth verifies it. The peak figures are printed.
 * (`deno task bench --only D-large-signed --dkim-large` does the same with 500 MB.)
 */
import assert from "node:assert/strict";
import { MockSmtpServer } from "../../src/testing/mod.ts";
import { test } from "../_helpers/test.ts";
import { assertVerifies, dnsRecord, rsaPem } from "./_dkim.ts";

const MB = 1024 * 1024;
const SIZE_MB = 50;

interface Run {
  rssStart: number;
  rssPeak: number;
  ms: number;
  method: string;
}

async function sendInChild(port: number, file: string, key?: string): Promise<Run> {
  const script = new URL("_send_large.ts", import.meta.url).pathname;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", script, String(port), file, ...(key ? [key] : [])],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stdout);
  assert.equal(code, 0, new TextDecoder().decode(stderr) + text);
  return JSON.parse(text.trim().split("\n").at(-1)!);
}

test(`a ${SIZE_MB} MB file attachment signs and sends with memory as flat as unsigned`, async () => {
  const dir = await Deno.makeTempDir({ prefix: "postie_dkim_large_" });
  try {
    const file = `${dir}/large.bin`;
    {
      using handle = await Deno.open(file, { write: true, create: true });
      const chunk = new Uint8Array(MB);
      for (let i = 0; i < SIZE_MB; i++) {
        crypto.getRandomValues(chunk.subarray(0, 65536));
        chunk.copyWithin(65536, 0, MB - 65536);
        for (let offset = 0; offset < chunk.length;) {
          offset += await handle.write(chunk.subarray(offset));
        }
      }
    }
    const pem = await rsaPem();
    const keyFile = `${dir}/key.pem`;
    await Deno.writeTextFile(keyFile, pem);
    const dns = { "large._domainkey.example.com": await dnsRecord(pem) };

    await using server = new MockSmtpServer({ maxSize: 200 * MB });
    const { port } = await server.listen({ hostname: "127.0.0.1" });

    const unsigned = await sendInChild(port, file);
    assert.equal(server.messages.length, 2);
    server.clearMessages();
    const signed = await sendInChild(port, file, keyFile);
    assert.equal(server.messages.length, 2);
    const received = server.messages[1]!;
    assert.ok(received.raw.length > SIZE_MB * MB * 4 / 3);
    await assertVerifies(received.raw, dns, ["large"]);
    server.clearMessages();

    const growth = (run: Run) => (run.rssPeak - run.rssStart) / MB;
    console.log(
      `${SIZE_MB} MB attachment, client peak RSS (${signed.method}): unsigned ` +
        `${(unsigned.rssPeak / MB).toFixed(0)} MB (+${growth(unsigned).toFixed(1)} MB during the ` +
        `send, ${unsigned.ms.toFixed(0)} ms); RSA-signed ${(signed.rssPeak / MB).toFixed(0)} MB ` +
        `(+${growth(signed).toFixed(1)} MB, ${signed.ms.toFixed(0)} ms)`,
    );
    // Holding the message would take 67 MB or more; reading the file twice takes none.
    assert.ok(growth(signed) < 40, `signed: +${growth(signed).toFixed(1)} MB`);
    assert.ok(
      growth(signed) <= growth(unsigned) + 24,
      `signed +${growth(signed).toFixed(1)} MB, unsigned +${growth(unsigned).toFixed(1)} MB`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
