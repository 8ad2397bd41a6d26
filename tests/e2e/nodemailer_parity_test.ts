/**
 * A nodemailer message object, sent unchanged by postie, arrives as nodemailer itself writes
 * it: the same MIME structure, the same headers that matter, text, HTML and attachments (file
 * name, content type, Content-ID, disposition, bytes). nodemailer's own bytes come from its
 * stream transport (no server); postie's are what the mock server received. Both are read
 * with mailparser.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import nodemailer from "nodemailer";
import { sendMail } from "../../mod.ts";
import { MockSmtpServer } from "../../src/testing/mod.ts";
import { test } from "../_helpers/test.ts";
import { mimeTree, parse, pseudoRandomBytes, shape } from "../mime/_helpers.ts";

/** What must be the same on both sides. */
async function essentials(bytes: Uint8Array) {
  const mail = await parse(bytes);
  const addresses = (field: unknown) =>
    [field].flat().flatMap((f) =>
      (f as { value: { name: string; address: string }[] } | undefined)?.value ?? []
    ).map(({ name, address }) => ({ name, address }));
  return {
    structure: shape(mimeTree(new TextDecoder().decode(bytes))),
    from: addresses(mail.from),
    to: addresses(mail.to),
    cc: addresses(mail.cc),
    replyTo: addresses(mail.replyTo),
    subject: mail.subject,
    date: mail.date?.toISOString(),
    messageId: mail.messageId,
    inReplyTo: mail.inReplyTo,
    references: mail.references,
    priority: mail.headerLines.filter((h) => ["x-priority", "importance"].includes(h.key))
      .map((h) => h.line),
    campaign: mail.headers.get("x-campaign"),
    text: mail.text?.trimEnd(),
    html: mail.html,
    attachments: mail.attachments.map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      cid: a.cid,
      contentDisposition: a.contentDisposition,
      related: a.related,
      content: Buffer.from(a.content).toString("base64"),
    })),
  };
}

test("a nodemailer message with path, cid and encoding attachments arrives as nodemailer sends it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/report.pdf`, pseudoRandomBytes(70_000, 3));
    await Deno.writeFile(`${dir}/logo.png`, pseudoRandomBytes(2_000, 5));
    await Deno.writeTextFile(`${dir}/figures.csv`, "quarter,total\nQ3,1200\n");
    // A message object as a nodemailer user writes it: nothing in it is postie's own.
    const message = {
      from: { name: "Zoë Martin", address: "zoe@example.com" },
      to: ["bob@example.com", { name: "Carol Díaz", address: "carol@example.com" }],
      cc: "Dan <dan@example.com>",
      bcc: "eve@example.com",
      replyTo: "reports@example.com",
      subject: "Quarterly report ✓",
      messageId: "<report-q3@example.com>",
      date: new Date("2024-10-01T09:30:00Z"),
      inReplyTo: "<question@example.com>",
      references: ["<question@example.com>"],
      priority: "high" as const,
      headers: { "X-Campaign": "q3-report" },
      text: "The report is attached.\nFigures in the CSV.",
      html: '<p>The report is attached.</p><img src="cid:logo@example.com">',
      attachments: [
        { filename: "report.pdf", path: `${dir}/report.pdf` },
        { path: `${dir}/figures.csv` },
        { filename: "logo.png", path: `${dir}/logo.png`, cid: "logo@example.com" },
        { filename: "data.bin", content: "AAECAwQFBgc=", encoding: "base64" as const },
        { filename: "magic.bin", content: "cafebabe", encoding: "hex" as const },
        { filename: "notes.txt", content: "plain notes", contentType: "text/plain" },
      ],
    };

    const transporter = nodemailer.createTransport({
      streamTransport: true,
      buffer: true,
      newline: "windows",
    });
    const theirs = await transporter.sendMail(message);

    await using server = new MockSmtpServer();
    const result = await sendMail(
      { hostname: "smtp.example.com", transport: server.transport },
      message,
    );
    assert.deepEqual(
      result.envelope.to,
      ["bob@example.com", "carol@example.com", "dan@example.com", "eve@example.com"],
    );
    assert.deepEqual([...result.envelope.to], theirs.envelope.to);

    const expected = await essentials(new Uint8Array(theirs.message as Buffer));
    const actual = await essentials(server.messages[0]!.raw);
    assert.equal(
      actual.structure,
      "multipart/mixed(multipart/alternative(text/plain, multipart/related(text/html, " +
        "image/png)), application/pdf, text/csv, application/octet-stream, " +
        "application/octet-stream, text/plain)",
    );
    assert.deepEqual(actual, expected);
    // nodemailer's stream transport keeps Bcc in the header (its SMTP transport drops it, as
    // postie always does): the one difference, and not one of postie's.
    assert.equal(server.messages[0]!.headers.get("bcc"), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
