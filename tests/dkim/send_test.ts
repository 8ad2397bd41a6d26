/**
 * DKIM through the client and the pool: what a server received, byte for byte, verifies with
 * mailauth. DATA (dot-stuffed) through npm `smtp-server` on 127.0.0.1, BDAT through the mock
 * server, each with and without 8BITMIME; a message signed once and sent in several
 * transactions or sent again carries the same bytes each time.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { simpleParser } from "mailparser";
import { type Message, SmtpClient, SmtpPool } from "../../mod.ts";
import { MockSmtpServer } from "../../src/testing/mod.ts";
import { startSmtpServer } from "../_helpers/smtp_server.ts";
import { test } from "../_helpers/test.ts";
import { assertVerifies, makeKeys, signatureTags } from "./_dkim.ts";

const keys = await makeKeys();
const dual = [keys.rsa, keys.ed25519];
const decoder = new TextDecoder();

/** A message with everything that tends to break signatures. */
async function richMessage(dir: string): Promise<Message> {
  const file = `${dir}/Jahresbericht 2024.bin`;
  // Over 256 KiB: the message is streamed, read once for the hash and composed again to send.
  await Deno.writeFile(file, new Uint8Array(300_000).map((_, i) => (i * 7919 + (i >> 9)) % 256));
  return {
    from: { name: "Zoë Martin-Lefèvre", address: "zoe@example.com" },
    to: [{ name: "Bob Müller", address: "bob@example.net" }, "carol@example.net"],
    cc: "dave@example.net",
    subject: "Grüße aus Köln — der Jahresbericht ist fertig, mit Anhang und Bild, " +
      "und dieser Betreff ist lang genug, um gefaltet zu werden 🎉",
    text: "Hallo Bob,\n\n.Diese Zeile beginnt mit einem Punkt.\n..und diese mit zwei.\n" +
      ".\nÜber den Bericht: siehe Anhang.  \n\n\n",
    html: '<p>Hallo Bob,</p>\n<p>.Punkt am Zeilenanfang</p>\n<img src="cid:logo@example.com">',
    attachments: [
      { filename: "Jahresbericht 2024.bin", content: { path: file } },
      {
        filename: "logo.png",
        content: crypto.getRandomValues(new Uint8Array(3_000)),
        contentId: "logo@example.com",
      },
    ],
    headers: {
      "X-Campaign": "a-very-long-header-value ".repeat(6).trim(),
      "List-Unsubscribe": "<mailto:unsubscribe@example.com?subject=unsubscribe>",
    },
  };
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "postie_dkim_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

for (const eightBit of [true, false]) {
  const label = eightBit ? "with 8BITMIME" : "without 8BITMIME";

  test(`DATA ${label}: a rich composed message, RSA and Ed25519, verifies as received`, async () => {
    await withTempDir(async (dir) => {
      await using server = await startSmtpServer({ hide8BITMIME: !eightBit });
      await using client = await SmtpClient.connect({
        hostname: "127.0.0.1",
        port: server.port,
        tls: "none",
        dkim: dual,
      });
      const message = await richMessage(dir);
      const result = await client.send(message);
      assert.equal(result.accepted.length, 3);
      const received = server.received[0]!;
      assert.equal(/^Content-Transfer-Encoding: 8bit\r$/m.test(received.text), eightBit);
      assert.match(received.text, /\n\./); // lines that start with a dot went dot-stuffed
      await assertVerifies(received.raw, keys.dns, ["rsa2048", "ed25519"]);
      const parsed = await simpleParser(Buffer.from(received.raw));
      assert.equal(parsed.subject, message.subject);
      assert.equal(parsed.attachments.length, 2);
    });
  });

  test(`BDAT ${label}: a rich composed message, RSA and Ed25519, verifies as received`, async () => {
    await withTempDir(async (dir) => {
      await using server = new MockSmtpServer({ extensions: { "8BITMIME": eightBit } });
      await using client = await SmtpClient.connect({ ...server.clientOptions(), dkim: dual });
      await client.send(await richMessage(dir));
      const received = server.messages[0]!;
      assert.equal(received.method, "BDAT");
      assert.equal(/^Content-Transfer-Encoding: 8bit\r$/m.test(received.text), eightBit);
      await assertVerifies(received.raw, keys.dns, ["rsa2048", "ed25519"]);
    });
  });
}

test("a raw message with LF line ends is signed as sent, over DATA and over BDAT", async () => {
  const raw = "From: a@example.com\nTo: b@example.net\nSubject: Raw\n\n.dot\nbody\n";
  const envelope = { from: "a@example.com", to: ["b@example.net"] };
  await using smtp = await startSmtpServer();
  await using data = await SmtpClient.connect({
    hostname: "127.0.0.1",
    port: smtp.port,
    tls: "none",
    dkim: keys.ed25519,
  });
  await data.send({ raw, envelope });
  await assertVerifies(smtp.received[0]!.raw, keys.dns, ["ed25519"]);

  await using mock = new MockSmtpServer();
  await using bdat = await SmtpClient.connect({ ...mock.clientOptions(), dkim: keys.rsa });
  await bdat.send({ raw: new TextEncoder().encode(raw), envelope });
  assert.equal(mock.messages[0]!.method, "BDAT");
  await assertVerifies(mock.messages[0]!.raw, keys.dns, ["rsa2048"]);
});

test("send(m, { dkim }) replaces the client's signers for one message; false signs nothing", async () => {
  await using server = new MockSmtpServer();
  await using client = await SmtpClient.connect({ ...server.clientOptions(), dkim: keys.rsa });
  const message = { from: "a@example.com", to: "b@example.net", subject: "x", text: "y" };
  await client.send(message);
  await client.send(message, { dkim: false });
  await client.send(message, { dkim: keys.ed25519 });
  const [first, second, third] = server.messages;
  await assertVerifies(first!.raw, keys.dns, ["rsa2048"]);
  assert.equal(signatureTags(second!.raw).length, 0);
  assert.doesNotMatch(second!.text, /DKIM-Signature/);
  await assertVerifies(third!.raw, keys.dns, ["ed25519"]);
  assert.throws(
    () => client.send(message, { dkim: { ...keys.rsa, selector: "no such" } }),
    TypeError,
  );
});

test("a pool signs every message, over all its connections", async () => {
  await using server = new MockSmtpServer();
  await using pool = new SmtpPool({ ...server.clientOptions(), maxConnections: 3, dkim: dual });
  await Promise.all(
    Array.from(
      { length: 9 },
      (_, i) =>
        pool.send({ from: "a@example.com", to: `r${i}@example.net`, subject: `n${i}`, text: "y" }),
    ),
  );
  assert.equal(server.messages.length, 9);
  for (const received of server.messages) {
    await assertVerifies(received.raw, keys.dns, ["rsa2048", "ed25519"]);
  }
  await assert.rejects(
    pool.send({ from: "a@example.com", to: "b@example.net" }, { dkim: [] }),
    TypeError,
  );
});

test("a message sent in two transactions (452 too many recipients) carries the same bytes", async () => {
  await withTempDir(async (dir) => {
    await using server = new MockSmtpServer({
      faults: [{
        command: "RCPT",
        match: "carol@example.net",
        reply: "452 4.5.3 Too many recipients",
        times: 1,
      }],
    });
    await using client = await SmtpClient.connect({ ...server.clientOptions(), dkim: dual });
    const result = await client.send(await richMessage(dir));
    assert.equal(result.accepted.length, 3);
    assert.equal(server.messages.length, 2);
    const [a, b] = server.messages;
    assert.deepEqual(a!.envelope.to, ["bob@example.net", "dave@example.net"]);
    assert.deepEqual(b!.envelope.to, ["carol@example.net"]);
    // Composed again for the second transaction, with the signature made once.
    assert.deepEqual(a!.raw, b!.raw);
    await assertVerifies(b!.raw, keys.dns, ["rsa2048", "ed25519"]);
  });
});

test("a message sent again after a 421 carries the same signature and verifies", async () => {
  await withTempDir(async (dir) => {
    await using server = new MockSmtpServer({
      extensions: { CHUNKING: false },
      faults: [{ command: "DATA", reply: "421 4.3.0 Try again later", times: 1 }],
    });
    await using client = await SmtpClient.connect({ ...server.clientOptions(), dkim: keys.rsa });
    await client.send(await richMessage(dir));
    assert.equal(server.connections, 2);
    assert.equal(server.messages.length, 1);
    await assertVerifies(server.messages[0]!.raw, keys.dns, ["rsa2048"]);
  });
});

/** A stream that gives `bytes` in pieces, as a caller's stream would. */
function streamOf(bytes: Uint8Array, piece = 10_000): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + piece));
      at += piece;
    },
  });
}

test("streams you give are held in memory to be signed: then they can go in two transactions", async () => {
  await using server = new MockSmtpServer({
    faults: ["c@example.net", "e@example.net"].map((match) => ({
      command: "RCPT" as const,
      match,
      reply: "452 4.5.3 Too many recipients",
      times: 1,
    })),
  });
  await using client = await SmtpClient.connect({ ...server.clientOptions(), dkim: keys.ed25519 });
  const data = crypto.getRandomValues(new Uint8Array(50_000));
  await client.send({
    from: "a@example.com",
    to: ["b@example.net", "c@example.net"],
    subject: "stream attachment",
    text: "see attachment",
    attachments: [{ filename: "s.bin", content: streamOf(data) }],
  });
  const raw = new TextEncoder().encode(
    "From: a@example.com\r\nTo: d@example.net, e@example.net\r\nSubject: raw stream\r\n\r\n" +
      "x".repeat(100_000) + "\r\n",
  );
  await client.send({
    raw: streamOf(raw),
    envelope: { from: "a@example.com", to: ["d@example.net", "e@example.net"] },
  });
  assert.equal(server.messages.length, 4);
  assert.deepEqual(server.messages.map((m) => m.envelope.to.join()), [
    "b@example.net",
    "c@example.net",
    "d@example.net",
    "e@example.net",
  ]);
  assert.deepEqual(server.messages[0]!.raw, server.messages[1]!.raw);
  assert.deepEqual(server.messages[2]!.raw, server.messages[3]!.raw);
  for (const received of server.messages) {
    await assertVerifies(received.raw, keys.dns, ["ed25519"]);
  }
});

test("a stream you give over 32 MiB is refused with a RangeError before MAIL, and left to you", async () => {
  await using server = new MockSmtpServer({ maxSize: 100 * 1024 * 1024 });
  await using client = await SmtpClient.connect({ ...server.clientOptions(), dkim: keys.ed25519 });
  const chunk = new Uint8Array(1024 * 1024).fill(0x61);
  let pulled = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled++;
      controller.enqueue(chunk);
    },
    cancel() {
      cancelled = true;
    },
  });
  await assert.rejects(
    client.send({ raw: stream, envelope: { from: "a@example.com", to: ["b@example.net"] } }),
    (error: Error) => {
      assert.ok(error instanceof RangeError);
      assert.match(
        error.message,
        /^Cannot sign message with DKIM: the raw message stream gives more than 32 MiB/,
      );
      return true;
    },
  );
  assert.ok(pulled >= 33 && pulled < 40, `pulled ${pulled}`);
  assert.equal(cancelled, false);
  assert.equal(stream.locked, false);
  assert.equal(server.messages.length, 0);
  // The connection is still usable.
  await client.send({ from: "a@example.com", to: "b@example.net", text: "after" });
  assert.equal(decoder.decode(server.messages[0]!.raw).includes("after"), true);
});
