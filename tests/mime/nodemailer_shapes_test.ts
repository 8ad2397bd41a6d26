/**
 * nodemailer's message and attachment shapes compose to what they mean there: `{ path }`,
 * `cid`, `encoding`, `raw` parts, Buffers and Node.js streams, address objects anywhere, list
 * header values, a date string, an envelope. Checked with mailparser, not with our own reader.
 */

import assert from "node:assert/strict";
import { openFile as runtimeOpenFile } from "../../src/transport/default.ts";
import { Buffer } from "node:buffer";
import { Readable } from "node:stream";
import { test } from "../_helpers/test.ts";
import { type Attachment, composeMessage, type Message } from "../../src/mime/mod.ts";
import { collect, mimeTree, parse, shape } from "./_helpers.ts";

// deno-lint-ignore no-explicit-any
type Loose = any;

const from = "ann@example.com";
const to = "bob@example.com";

async function composed(message: Loose) {
  const result = await composeMessage(message as Message, { openFile: runtimeOpenFile });
  const bytes = await collect(result.body);
  return { result, bytes, text: new TextDecoder().decode(bytes), parsed: await parse(bytes) };
}

test("{ filename, path } and { path } attach the file, named after it unless a filename is given", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/report.csv`, "a,b\n1,2\n");
    const { parsed } = await composed({
      from,
      to,
      attachments: [
        { path: `${dir}/report.csv` },
        { filename: "renamed.csv", path: `${dir}/report.csv` },
        { filename: false, path: `${dir}/report.csv` },
      ],
    });
    const [a, b, c] = parsed.attachments;
    assert.equal(a!.filename, "report.csv");
    assert.equal(a!.contentType, "text/csv");
    assert.equal(Buffer.from(a!.content).toString(), "a,b\n1,2\n");
    assert.equal(b!.filename, "renamed.csv");
    assert.equal(c!.filename, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("cid embeds an image with the HTML, as contentId does", async () => {
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47]);
  const { parsed, text } = await composed({
    from,
    to,
    html: '<img src="cid:logo@example.com">',
    attachments: [{ filename: "logo.png", content: png, cid: "logo@example.com" }],
  });
  assert.equal(shape(mimeTree(text)), "multipart/related(text/html, image/png)");
  assert.equal(parsed.attachments[0]!.cid, "logo@example.com");
  assert.equal(parsed.attachments[0]!.contentDisposition, "inline");
});

test("encoding decodes string content as Buffer.from does: base64, hex, utf8, latin1", async () => {
  const cases: [Attachment["encoding"], string][] = [
    ["base64", "AAEC/w=="],
    ["hex", "000102ff"],
    ["utf8", "Zoë"],
    ["utf-8", "Zoë"],
    ["latin1", "\x00\xe9\xff"],
    ["binary", "\x00\xe9\xff"],
  ];
  const { parsed } = await composed({
    from,
    to,
    attachments: cases.map(([encoding, content], i) => ({
      filename: `${i}.bin`,
      content,
      encoding,
    })),
  });
  cases.forEach(([encoding, content], i) => {
    const expected = Buffer.from(content, encoding === "utf-8" ? "utf8" : encoding);
    assert.deepEqual(Buffer.from(parsed.attachments[i]!.content), expected, encoding);
  });
});

test("Buffers and Node.js Readable streams are content as they are in nodemailer", async () => {
  const { parsed } = await composed({
    from,
    to,
    text: Buffer.from("Grüße aus dem Text"),
    html: Buffer.from("<p>Grüße</p>"),
    attachments: [
      { filename: "buffer.bin", content: Buffer.from([1, 2, 3]) },
      { filename: "stream.txt", content: Readable.from([Buffer.from("one "), Buffer.from("two")]) },
    ],
  });
  assert.equal(parsed.text?.trim(), "Grüße aus dem Text");
  assert.equal(parsed.html, "<p>Grüße</p>");
  assert.deepEqual([...parsed.attachments[0]!.content], [1, 2, 3]);
  assert.equal(Buffer.from(parsed.attachments[1]!.content).toString(), "one two");
});

test("raw gives a part whole: its header and body arrive as written, bare LF made CRLF", async () => {
  const { parsed, text } = await composed({
    from,
    to,
    text: "See the attached part.",
    attachments: [{
      raw: "Content-Type: text/plain; charset=utf-8\n" +
        "Content-Disposition: attachment; filename=raw.txt\n" +
        "X-Part: kept\n\nline one\nline two\n",
    }],
  });
  assert.ok(!/[^\r]\n/.test(text), "no bare LF");
  assert.match(text, /\r\nX-Part: kept\r\n\r\nline one\r\nline two\r\n/);
  const part = parsed.attachments[0]!;
  assert.equal(part.filename, "raw.txt");
  assert.equal(Buffer.from(part.content).toString(), "line one\r\nline two\r\n");
});

test("address objects and nested lists are taken in every address field", async () => {
  const { parsed, result, text } = await composed({
    from: { name: "Ann", address: from },
    sender: { address: "sender@example.com" },
    to: [{ name: "Bob", address: to }, ["carol@example.com", { address: "dan@example.com" }]],
    cc: { name: "Eve", address: "eve@example.com" },
    bcc: [{ address: "fay@example.com" }],
    replyTo: [{ name: "Replies", address: "replies@example.com" }],
    readReceiptTo: { address: "receipts@example.com" },
  });
  assert.deepEqual(result.envelope, {
    from: "sender@example.com",
    to: [to, "carol@example.com", "dan@example.com", "eve@example.com", "fay@example.com"],
  });
  assert.deepEqual(
    (parsed.to as Loose).value.map((m: Loose) => [m.name, m.address]),
    [["Bob", to], ["", "carol@example.com"], ["", "dan@example.com"]],
  );
  assert.equal((parsed.replyTo as Loose).value[0].name, "Replies");
  assert.match(text, /^Disposition-Notification-To: receipts@example\.com\r$/m);
});

test("a date string, a string icalEvent and list header values mean what they mean in nodemailer", async () => {
  const { parsed, text } = await composed({
    from,
    to,
    date: "2024-03-01T10:00:00Z",
    icalEvent: "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n",
    headers: { "X-Tag": ["a", "b"] },
  });
  assert.equal(parsed.date?.toISOString(), "2024-03-01T10:00:00.000Z");
  assert.match(text, /^Content-Type: text\/calendar; method=REQUEST; charset=UTF-8\r$/m);
  assert.deepEqual(parsed.headers.get("x-tag"), ["a", "b"]);
});

test("nodemailer shapes that differ, or are ambiguous, are refused with what to do instead", async () => {
  const cases: [Loose, RegExp][] = [
    [{ path: "https://example.com/a.pdf" }, /is a URL: postie does not download/],
    [{ filename: "a", content: "x", path: "/tmp/a" }, /has content and path: give one/],
    [{ filename: "a" }, /needs content, path or raw/],
    [{ content: "x", contentId: "a@b", cid: "a@b" }, /has contentId and cid: give one/],
    [{ raw: "Content-Type: text/plain\r\n\r\nx", filename: "x.txt" }, /give raw alone/],
    [{ content: "x", encoding: "ucs2" }, /unknown encoding "ucs2"/],
    [{ content: "x", contentTransferEncoding: "7bit" }, /postie sends attachments as base64/],
    [{ content: "x", headers: { "Content-Type": "text/plain" } }, /may not replace/],
  ];
  for (const [attachment, expected] of cases) {
    await assert.rejects(
      composeMessage({ from, to, attachments: [attachment] }),
      (error: unknown) => error instanceof TypeError && expected.test(error.message),
      JSON.stringify(attachment),
    );
  }
  await assert.rejects(
    composeMessage({ from, to: { name: "Team", group: [{ address: to }] } } as Loose),
    /address groups .* are not supported/,
  );
  await assert.rejects(
    composeMessage({ from, to, alternatives: [{ content: "x" }] } as Loose),
    /"alternatives" in message: postie sends text, html and icalEvent/,
  );
});
