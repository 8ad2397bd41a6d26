/**
 * DKIM through a real MTA: messages signed by postie go through Postfix (started by
 * `tests/interop/setup.sh`) into its Maildirs, and each delivered file is verified by Debian's
 * `python3-dkim` (dkimpy, with a `dnsfunc` that knows only the test keys) and by npm
 * `mailauth`. Both verifiers were written by others; Postfix adds its own header fields
 * (Return-Path, Delivered-To, Received) on top, as any receiver does.
 *
 * Without the MTA, or without python3-dkim (which setup.sh installs the way it installs
 * Postfix), every test here is skipped loudly: `INTEROP SKIPPED: <reason>`, reported as ignored.
 */
import assert from "node:assert/strict";
import { sendMail, SmtpClient } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { testCa } from "../_helpers/smtp_server.ts";
import { assertVerifies, dnsRecord, ed25519Pem, fixtureKey } from "../dkim/_dkim.ts";

interface InteropEnv {
  hostname: string;
  ports: { starttls: number; implicit: number; submission: number };
  maildir: string;
  postfixLog: string;
  dkimPython?: string | null;
  dkimpyMissing?: string;
}

const stateDir = Deno.env.get("POSTIE_INTEROP_DIR") ?? "/tmp/postie-interop";

async function load(): Promise<InteropEnv | string> {
  const file = `${stateDir}/interop.json`;
  let env: InteropEnv;
  try {
    env = JSON.parse(await Deno.readTextFile(file));
  } catch {
    return `no MTA: ${file} is missing (run \`deno task test:interop\` or tests/interop/setup.sh)`;
  }
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port: env.ports.starttls })).close();
  } catch (error) {
    return `nothing answers on port ${env.ports.starttls} (${(error as Error).message}): ` +
      "run tests/interop/setup.sh again";
  }
  if (!env.dkimPython) {
    return `no DKIM verifier: ${env.dkimpyMissing || "python3-dkim is not installed"}`;
  }
  return env;
}

const loaded = await load();
const skipReason = typeof loaded === "string" ? loaded : undefined;
const env = typeof loaded === "string" ? undefined as unknown as InteropEnv : loaded;

function interop(name: string, fn: () => Promise<void>): void {
  if (skipReason) {
    console.log(`INTEROP SKIPPED: ${name}: ${skipReason}`);
    test(`[interop] ${name}`, { ignore: true }, fn);
    return;
  }
  test(`[interop] ${name}`, fn);
}

/** dkimpy verifies every DKIM-Signature of the message in a file, one verdict per signature. */
const DKIMPY = `
import json, sys, dkim
from dkim.util import parse_tag_value
message = open(sys.argv[1], "rb").read()
records = json.loads(sys.argv[2])
def dnsfunc(name, timeout=5):
    name = (name.decode() if isinstance(name, bytes) else name).rstrip(".")
    record = records.get(name)
    return None if record is None else record.encode()
d = dkim.DKIM(message, minkey=1024)
signatures = [v for (k, v) in d.headers if k.lower() == b"dkim-signature"]
verdicts = []
for i, value in enumerate(signatures):
    selector = parse_tag_value(value).get(b"s", b"").decode()
    try:
        ok = d.verify(idx=i, dnsfunc=dnsfunc)
    except dkim.DKIMException as e:
        ok = False
    verdicts.append(selector + (": pass" if ok else ": fail"))
print(json.dumps(verdicts))
`;

async function dkimpy(file: string, dns: Record<string, string>): Promise<string[]> {
  const { code, stdout, stderr } = await new Deno.Command(env.dkimPython!, {
    args: ["-c", DKIMPY, file, JSON.stringify(dns)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  assert.equal(code, 0, decoder.decode(stderr));
  return JSON.parse(decoder.decode(stdout));
}

/** Waits until Postfix delivered a message containing `mark` into `mailbox`; returns its file. */
async function delivered(mailbox: string, mark: string, timeoutMs = 15_000): Promise<string> {
  const folder = `${env.maildir}/${mailbox}/new`;
  const deadline = Date.now() + timeoutMs;
  while (true) {
    try {
      for await (const entry of Deno.readDir(folder)) {
        const path = `${folder}/${entry.name}`;
        if ((await Deno.readTextFile(path)).includes(mark)) return path;
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    if (Date.now() > deadline) {
      const log = await Deno.readTextFile(env.postfixLog).catch(() => "");
      throw new Error(
        `No message marked ${mark} in ${folder}:\n${log.split("\n").slice(-15).join("\n")}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Maildir files have LF line ends; SMTP delivered CRLF. */
async function asReceived(path: string): Promise<Uint8Array> {
  const text = await Deno.readTextFile(path);
  return new TextEncoder().encode(text.replace(/\r?\n/g, "\r\n"));
}

const rsaKey = fixtureKey("rsa2048-pkcs1.pem"); // PKCS#1, as `openssl genrsa` writes it
const edKey = skipReason ? "" : await ed25519Pem();
const dns = skipReason ? {} : {
  "rsa._domainkey.example.com": await dnsRecord(fixtureKey("rsa2048-pkcs8.pem")),
  "ed._domainkey.example.com": await dnsRecord(edKey),
};
const rsa = { domain: "example.com", selector: "rsa", privateKey: rsaKey };
const ed = { domain: "example.com", selector: "ed", privateKey: edKey };

function options(extra: Record<string, unknown> = {}) {
  return {
    hostname: env.hostname,
    port: env.ports.starttls,
    tls: "starttls" as const,
    tlsOptions: { caCerts: [testCa] },
    clientName: "client.postie.test",
    timeouts: { greetingMs: 10_000, commandMs: 10_000, dataEndMs: 20_000 },
    ...extra,
  };
}

async function richMessage(mark: string, dir: string, to: string | string[] = "alice@postie.test") {
  const file = `${dir}/Bericht ${mark}.bin`;
  // Over 256 KiB: streamed, read once for the body hash and composed again to send.
  await Deno.writeFile(file, new Uint8Array(300_000).map((_, i) => (i * 7919 + (i >> 9)) % 256));
  return {
    from: { name: "Zoë Sender", address: "sender@postie.test" },
    to,
    subject: `Grüße aus Köln ${mark} — ein langer Betreff, der gefaltet werden muss, ` +
      "weil er über achtundsiebzig Zeichen hinausgeht 🎉",
    text: "Hallo Alice,\n\n.eine Zeile mit Punkt am Anfang\n..und zwei\nÜnïcödé  \n\n",
    html: `<p>Hallo ${mark}</p>\n<p>.Punkt</p><img src="cid:logo@postie.test">`,
    attachments: [
      { filename: `Bericht ${mark}.bin`, content: { path: file } },
      {
        filename: "logo.png",
        content: new Uint8Array(2_000).fill(7),
        contentId: "logo@postie.test",
      },
    ],
    headers: { "X-Postie-Mark": mark, "List-Id": "<interop.postie.test>" },
  };
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "postie_dkim_interop_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

for (const chunking of [true, false]) {
  const method = chunking ? "BDAT" : "DATA";
  interop(
    `${method}, 8BITMIME: a rich message signed with RSA and Ed25519 verifies with dkimpy after Postfix`,
    async () => {
      await withTempDir(async (dir) => {
        const mark = crypto.randomUUID();
        const transcript: string[] = [];
        await sendMail(
          options({
            chunking,
            dkim: [rsa, ed],
            onTranscript: (e: { line: string }) => transcript.push(e.line),
          }),
          await richMessage(mark, dir),
        );
        assert.ok(transcript.some((line) => line.startsWith(method)), transcript.join("\n"));
        assert.ok(transcript.some((line) => /BODY=8BITMIME/.test(line)));
        const file = await delivered("alice", mark);
        assert.match(await Deno.readTextFile(file), /^Content-Transfer-Encoding: 8bit$/m);
        assert.deepEqual(await dkimpy(file, dns), ["rsa: pass", "ed: pass"]);
        await assertVerifies(await asReceived(file), dns, ["rsa", "ed"]);
      });
    },
  );
}

interop("simple/simple survives Postfix too: it changes no signed byte", async () => {
  await withTempDir(async (dir) => {
    const mark = crypto.randomUUID();
    const canonicalization = "simple/simple" as const;
    await sendMail(
      options({ dkim: [{ ...rsa, canonicalization }, { ...ed, canonicalization }] }),
      await richMessage(mark, dir),
    );
    const file = await delivered("alice", mark);
    assert.deepEqual(await dkimpy(file, dns), ["rsa: pass", "ed: pass"]);
  });
});

interop(
  "a raw message, and a message in three transactions (5 recipients each), all verify",
  async () => {
    await withTempDir(async (dir) => {
      const mark = crypto.randomUUID();
      await using client = await SmtpClient.connect(options({ dkim: ed }));
      await client.send({
        raw:
          `From: sender@postie.test\nTo: alice@postie.test\nSubject: raw ${mark}\n\n.dot\nbody\n`,
        envelope: { from: "sender@postie.test", to: ["alice@postie.test"] },
      });
      assert.deepEqual(await dkimpy(await delivered("alice", mark), dns), ["ed: pass"]);

      const list = Array.from(
        { length: 12 },
        (_, i) => `list${String(i + 1).padStart(2, "0")}@postie.test`,
      );
      const many = crypto.randomUUID();
      const result = await client.send(await richMessage(many, dir, list), { dkim: [rsa, ed] });
      assert.equal(result.accepted.length, 12);
      const files = await Promise.all(list.map((to) => delivered(to.split("@")[0]!, many)));
      const bodies = new Set<string>();
      for (const file of files) {
        assert.deepEqual(await dkimpy(file, dns), ["rsa: pass", "ed: pass"], file);
        const text = await Deno.readTextFile(file);
        bodies.add(text.slice(text.indexOf("DKIM-Signature:")));
      }
      // Three transactions, one message: the same signed bytes in every mailbox.
      assert.equal(bodies.size, 1);
    });
  },
);

interop(
  "dkimpy really checks: a delivered message with its body or a signed header changed fails",
  async () => {
    await withTempDir(async (dir) => {
      const mark = crypto.randomUUID();
      await sendMail(options({ dkim: [rsa, ed] }), await richMessage(mark, dir));
      const file = await delivered("alice", mark);
      const text = await Deno.readTextFile(file);
      const body = `${dir}/body.eml`;
      await Deno.writeTextFile(body, text.replace("Hallo Alice,", "Hallo Alicia,"));
      assert.deepEqual(await dkimpy(body, dns), ["rsa: fail", "ed: fail"]);
      const header = `${dir}/header.eml`;
      await Deno.writeTextFile(header, text.replace(/^(Message-ID: <)/m, "$1x"));
      assert.deepEqual(await dkimpy(header, dns), ["rsa: fail", "ed: fail"]);
    });
  },
);
