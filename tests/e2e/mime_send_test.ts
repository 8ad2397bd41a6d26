import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { simpleParser } from "mailparser";
import { SmtpClient } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { startSmtpServer, testCa } from "../_helpers/smtp_server.ts";

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

test("a Chinese subject, text + HTML, two attachments and an inline image arrive exactly", async () => {
  await using server = await startSmtpServer();
  const dir = await Deno.makeTempDir();
  try {
    const pdf = crypto.getRandomValues(new Uint8Array(50_000));
    const pdfPath = `${dir}/季度报告.pdf`;
    await Deno.writeFile(pdfPath, pdf);
    const png = crypto.getRandomValues(new Uint8Array(4_000));
    const csv = "name,amount\nä,1\n";
    await using client = await SmtpClient.connect({
      hostname: "localhost",
      port: server.port,
      tlsOptions: { caCerts: [testCa] },
    });
    const result = await client.send({
      from: { name: "张伟", address: "zhang@example.com" },
      to: [{ name: "Bob Müller", address: "bob@example.com" }, "carol@example.com"],
      bcc: "hidden@example.com",
      subject: "季度报告 — 第三季度的数字已经准备好了，请查收附件",
      text: "你好，\n报告在附件里。\n.这一行以点开头",
      html: '<p>你好，</p><p>报告在附件里。</p><img src="cid:logo@postie">',
      attachments: [
        { filename: "季度报告.pdf", content: { path: pdfPath } },
        { filename: "data.csv", content: csv },
        { filename: "logo.png", content: png, contentId: "logo@postie" },
      ],
    });
    assert.equal(result.accepted.length, 3);
    const received = server.received[0]!;
    assert.deepEqual(received.to.sort(), [
      "bob@example.com",
      "carol@example.com",
      "hidden@example.com",
    ]);
    assert.doesNotMatch(received.text, /hidden@example\.com/);

    const parsed = await simpleParser(Buffer.from(received.raw), { keepCidLinks: true });
    assert.equal(parsed.subject, "季度报告 — 第三季度的数字已经准备好了，请查收附件");
    const from = parsed.from!.value[0]!;
    assert.deepEqual([from.name, from.address], ["张伟", "zhang@example.com"]);
    assert.equal(parsed.messageId, result.messageId);
    assert.equal(parsed.text?.trim(), "你好，\n报告在附件里。\n.这一行以点开头");
    assert.match(String(parsed.html), /<img src="cid:logo@postie">/);
    const byName = new Map(parsed.attachments.map((a) => [a.filename, a]));
    assert.equal(await sha256(byName.get("季度报告.pdf")!.content), await sha256(pdf));
    assert.equal(
      new TextDecoder().decode(byName.get("data.csv")!.content),
      csv,
    );
    const logo = byName.get("logo.png")!;
    assert.equal(logo.contentId, "<logo@postie>");
    assert.equal(await sha256(logo.content), await sha256(png));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("an unreadable attachment aborts the send before MAIL FROM", async () => {
  await using server = await startSmtpServer();
  const transcript: string[] = [];
  await using client = await SmtpClient.connect({
    hostname: "localhost",
    port: server.port,
    tlsOptions: { caCerts: [testCa] },
    onTranscript: (e) => transcript.push(e.line),
  });
  await assert.rejects(
    client.send({
      from: "a@example.com",
      to: "b@example.com",
      text: "see attachment",
      attachments: [{ filename: "missing.pdf", content: { path: "/nonexistent/missing.pdf" } }],
    }),
    /missing\.pdf/,
  );
  assert.ok(!transcript.some((line) => line.startsWith("MAIL")));
  assert.equal(server.received.length, 0);
  await client.send({ from: "a@example.com", to: "b@example.com", text: "still usable" });
  assert.equal(server.received.length, 1);
});

test("an IDN domain goes to the server in punycode when SMTPUTF8 is off", async () => {
  await using server = await startSmtpServer({ hideSMTPUTF8: true });
  const sent: string[] = [];
  await using client = await SmtpClient.connect({
    hostname: "localhost",
    port: server.port,
    tlsOptions: { caCerts: [testCa] },
    onTranscript: (e) => e.direction === "client" && sent.push(e.line),
  });
  await client.send({ from: "a@example.com", to: "info@bücher.example", text: "hallo" });
  assert.ok(sent.includes("RCPT TO:<info@xn--bcher-kva.example>"), sent.join("\n"));
  assert.ok(sent.includes("MAIL FROM:<a@example.com>"), sent.join("\n"));
  assert.equal(server.received.length, 1);
});
