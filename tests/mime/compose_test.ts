import assert from "node:assert/strict";
import { openFile as runtimeOpenFile } from "../../src/transport/default.ts";
import fc from "fast-check";
import { test } from "../_helpers/test.ts";
import { composeMessage, type Message } from "../../src/mime/mod.ts";
import { composeForSending } from "../../src/mime/compose.ts";
import { checkMessage } from "../../src/mime/_check.ts";
import { recordedBoundaries } from "../../src/mime/_multipart.ts";
import type { FileOpener } from "../../src/transport/types.ts";
import {
  collect,
  crlfLines,
  decodeUnstructured,
  headerFields,
  mimeTree,
  parse,
  pseudoRandomBytes,
  sha256,
  shape,
  testOpenFile,
} from "./_helpers.ts";

const decoder = new TextDecoder();

/** Composes and returns the message text. */
async function compose(message: Message, allow8bit = false) {
  const composed = await composeMessage(message, { allow8bit, openFile: testOpenFile });
  const bytes = await collect(composed.body);
  // The size is exact, unless a stream of unknown length is attached (testOpenFile gives none).
  const streamed = (message.attachments ?? []).some(({ content }) =>
    content instanceof ReadableStream ||
    (typeof content === "object" && !(content instanceof Uint8Array))
  );
  assert.equal(composed.size, streamed ? undefined : bytes.length);
  return { composed, bytes, text: decoder.decode(bytes) };
}

/** Every line ends in CRLF and is within 998 octets; header lines within 78 columns. */
function assertLines(text: string): void {
  const lines = crlfLines(text);
  const encoder = new TextEncoder();
  const blank = lines.indexOf("");
  lines.forEach((line, i) => {
    assert.ok(encoder.encode(line).length <= 998, `line ${i} is too long`);
    if (i < blank) assert.ok(line.length <= 78, `header line ${i} is ${line.length}: ${line}`);
  });
}

function header(text: string, name: string): string | undefined {
  return headerFields(text).find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
}

/**
 * The text a parser reads from a single-part message: the body is lines of text, so the last
 * line ends in CRLF like every other (in multipart messages that CRLF belongs to the boundary).
 */
function singlePart(text: string): string {
  return text.endsWith("\n") ? text : `${text}\n`;
}

const base = { from: "Ann <ann@example.com>", to: "bob@example.com" } as const;
const png = pseudoRandomBytes(3000, 7);
const pdf = pseudoRandomBytes(10_000, 3);

test("a text-only message is one text/plain part with the right headers", async () => {
  const date = new Date(Date.UTC(2025, 0, 2, 3, 4, 5));
  const { composed, text, bytes } = await compose({
    ...base,
    subject: "Hi",
    text: "Hello\nthere",
    date,
  });
  assertLines(text);
  assert.equal(shape(mimeTree(text)), "text/plain");
  assert.equal(header(text, "Content-Type"), "text/plain; charset=UTF-8");
  assert.equal(header(text, "Content-Transfer-Encoding"), "7bit");
  assert.equal(header(text, "MIME-Version"), "1.0");
  assert.equal(header(text, "Date"), "Thu, 02 Jan 2025 03:04:05 +0000");
  assert.equal(header(text, "X-Mailer"), "postie");
  assert.match(composed.messageId, /^<[0-9a-f-]{36}@example\.com>$/);
  assert.equal(header(text, "Message-ID"), composed.messageId);
  assert.equal(composed.eightBit, false);
  assert.equal(composed.smtpUtf8, false);
  assert.deepEqual(composed.envelope, { from: "ann@example.com", to: ["bob@example.com"] });
  assert.ok(text.endsWith("\r\n\r\nHello\r\nthere\r\n"));
  const parsed = await parse(bytes);
  assert.equal(parsed.subject, "Hi");
  assert.equal(parsed.text, singlePart("Hello\nthere"));
  assert.equal(parsed.date?.getTime(), date.getTime());
  assert.equal(parsed.messageId, composed.messageId);
});

test("message ids are unique", async () => {
  const ids = new Set<string>();
  for (let i = 0; i < 20; i++) ids.add((await compose({ ...base, text: "x" })).composed.messageId);
  assert.equal(ids.size, 20);
});

test("every body structure nests correctly and parses back", async () => {
  const html = '<p>Hello <img src="cid:logo@example.com"></p>';
  for (const hasText of [false, true]) {
    for (const hasHtml of [false, true]) {
      for (const hasAttachment of [false, true]) {
        for (const hasInline of [false, true]) {
          for (const hasCalendar of [false, true]) {
            const attachments = [
              ...(hasInline
                ? [{ filename: "logo.png", content: png, contentId: "logo@example.com" }]
                : []),
              ...(hasAttachment ? [{ filename: "report.pdf", content: pdf }] : []),
            ];
            const message: Message = {
              ...base,
              subject: "structure",
              ...(hasText ? { text: "plain text" } : {}),
              ...(hasHtml ? { html } : {}),
              ...(attachments.length > 0 ? { attachments } : {}),
              ...(hasCalendar
                ? { icalEvent: { content: "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n" } }
                : {}),
            };
            const { text, bytes } = await compose(message);
            assertLines(text);

            const htmlPart = hasHtml && hasInline
              ? "multipart/related(text/html, image/png)"
              : "text/html";
            const alternatives = [
              ...(hasText ? ["text/plain"] : []),
              ...(hasHtml ? [htmlPart] : []),
              ...(hasCalendar ? ["text/calendar"] : []),
            ];
            const content = alternatives.length > 1
              ? `multipart/alternative(${alternatives.join(", ")})`
              : alternatives[0];
            const mixed = [
              ...(hasInline && !hasHtml ? ["image/png"] : []),
              ...(hasAttachment ? ["application/pdf"] : []),
              ...(hasCalendar ? ["application/ics"] : []),
            ];
            const expected = mixed.length > 0
              ? `multipart/mixed(${[...(content ? [content] : []), ...mixed].join(", ")})`
              : content ?? "text/plain";
            const label = JSON.stringify({
              hasText,
              hasHtml,
              hasAttachment,
              hasInline,
              hasCalendar,
            });
            assert.equal(shape(mimeTree(text)), expected, label);

            const parsed = await parse(bytes);
            assert.equal(parsed.subject, "structure", label);
            const single = alternatives.length === 1 && mixed.length === 0 &&
              !(hasHtml && hasInline);
            const exact = single ? singlePart : (text: string) => text;
            if (hasText) assert.equal(parsed.text, exact("plain text"), label);
            if (hasHtml) assert.equal(parsed.html, exact(html), label);
            const byName = new Map(parsed.attachments.map((a) => [a.filename, a]));
            if (hasInline) {
              const logo = byName.get("logo.png");
              assert.ok(logo, label);
              assert.equal(logo.cid, "logo@example.com");
              assert.equal(logo.contentDisposition, "inline");
              assert.equal(await sha256(logo.content), await sha256(png));
            }
            if (hasAttachment) {
              const report = byName.get("report.pdf");
              assert.ok(report, label);
              assert.equal(report.contentType, "application/pdf");
              assert.equal(report.contentDisposition, "attachment");
              assert.equal(await sha256(report.content), await sha256(pdf));
            }
          }
        }
      }
    }
  }
});

test("the done scenario: Chinese subject and sender, text, HTML, two attachments, an inline image", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/季度报告-最终版.pdf`;
    await Deno.writeFile(path, pdf);
    const csv = new TextEncoder().encode("季度,收入\nQ1,100\n");
    const message: Message = {
      from: { name: "张伟", address: "zhang.wei@example.com" },
      to: ["Bob Smith <bob@example.com>", { name: "李娜", address: "li.na@example.org" }],
      cc: "carol@example.net",
      bcc: "audit@example.com",
      subject: "季度报告：请在周一之前审阅附件中的数据和图表",
      text: "你好，\n\n请查看附件。\n\n张伟",
      html: '<p>你好，</p><p>请查看附件。<img src="cid:chart@example.com"></p>',
      attachments: [
        { content: { path } },
        { filename: "data.csv", content: csv },
        { filename: "chart.png", content: png, contentId: "chart@example.com" },
      ],
    };
    const { composed, text, bytes } = await compose(message);
    assertLines(text);
    assert.equal(
      shape(mimeTree(text)),
      "multipart/mixed(multipart/alternative(text/plain, multipart/related(text/html, image/png)), application/pdf, text/csv)",
    );
    assert.doesNotMatch(text, /audit@example\.com/);
    assert.deepEqual(composed.envelope, {
      from: "zhang.wei@example.com",
      to: ["bob@example.com", "li.na@example.org", "carol@example.net", "audit@example.com"],
    });

    const parsed = await parse(bytes);
    assert.equal(parsed.subject, message.subject);
    assert.deepEqual(parsed.from?.value, [{ name: "张伟", address: "zhang.wei@example.com" }]);
    const to = parsed.to as { value: { name: string; address: string }[] };
    assert.deepEqual(to.value, [
      { name: "Bob Smith", address: "bob@example.com" },
      { name: "李娜", address: "li.na@example.org" },
    ]);
    assert.equal(parsed.bcc, undefined);
    assert.equal(parsed.text, "你好，\n\n请查看附件。\n\n张伟");
    assert.equal(parsed.html, message.html);
    const attachments = parsed.attachments.map((
      a,
    ) => [a.filename, a.contentType, a.cid, a.contentDisposition]);
    assert.deepEqual(attachments, [
      ["chart.png", "image/png", "chart@example.com", "inline"],
      ["季度报告-最终版.pdf", "application/pdf", undefined, "attachment"],
      ["data.csv", "text/csv", undefined, "attachment"],
    ]);
    const hashes = await Promise.all(parsed.attachments.map((a) => sha256(a.content)));
    assert.deepEqual(hashes, [await sha256(png), await sha256(pdf), await sha256(csv)]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("text transfer encodings: 7bit, quoted-printable, and 8bit only when allowed", async () => {
  const cases: [string, boolean, string, boolean][] = [
    ["plain ASCII", false, "7bit", false],
    ["Grüße", false, "quoted-printable", false],
    ["Grüße", true, "8bit", true],
    [`${"x".repeat(1200)}`, false, "quoted-printable", false],
    // The line limit is 998 octets: exactly that stays 7bit, one more does not.
    [`a\n${"x".repeat(998)}\nb`, false, "7bit", false],
    [`a\n${"x".repeat(999)}\nb`, false, "quoted-printable", false],
    [`${"x".repeat(998)}\n${"y".repeat(998)}`, false, "7bit", false],
    [`${"short line\n".repeat(200)}`, false, "7bit", false],
    [`Grüße ${"x".repeat(1200)}`, true, "quoted-printable", false],
    ["nul \0 byte", true, "quoted-printable", false],
  ];
  for (const [body, allow8bit, encoding, eightBit] of cases) {
    const { composed, text, bytes } = await compose({ ...base, text: body }, allow8bit);
    assertLines(text);
    assert.equal(header(text, "Content-Transfer-Encoding"), encoding, body.slice(0, 20));
    assert.equal(composed.eightBit, eightBit);
    assert.equal((await parse(bytes)).text, singlePart(body));
  }
});

test("line ends in text and HTML become CRLF", async () => {
  const { text, bytes } = await compose({
    ...base,
    text: "a\nb\rc\r\nd",
    html: "<p>x</p>\n<p>y</p>",
  });
  assertLines(text);
  const parsed = await parse(bytes);
  assert.equal(parsed.text, "a\nb\nc\nd");
  assert.equal(parsed.html, "<p>x</p>\n<p>y</p>");
});

test("non-ASCII and long file names use RFC 2231 with an RFC 2047 name fallback", async () => {
  const filename =
    "Überweisung für das Geschäftsjahr 2024 – endgültige Fassung (unterschrieben).pdf";
  const { text, bytes } = await compose({ ...base, attachments: [{ filename, content: pdf }] });
  assertLines(text);
  const part = mimeTree(text).children[0]!;
  assert.match(part.headers["content-disposition"]!, /^attachment; filename\*0\*=UTF-8''/);
  const name = /name="([^"]+)"/.exec(part.headers["content-type"]!)![1]!;
  assert.equal(decodeUnstructured(name), filename);
  const parsed = await parse(bytes);
  assert.equal(parsed.attachments[0]!.filename, filename);
});

test("content types come from the caller or the file extension", async () => {
  const { text } = await compose({
    ...base,
    attachments: [
      { filename: "a.PDF", content: "x" },
      { filename: "b.unknownext", content: "x" },
      { filename: "c", content: "x" },
      { filename: "d.bin", content: "x", contentType: "text/x-custom; charset=utf-8" },
      { filename: "e.jpeg", content: "x" },
      { filename: "f.ics", content: "x" },
    ],
  });
  assert.deepEqual(mimeTree(text).children.map((part) => part.headers["content-type"]), [
    "application/pdf; name=a.PDF",
    "application/octet-stream; name=b.unknownext",
    "application/octet-stream; name=c",
    "text/x-custom; charset=utf-8; name=d.bin",
    "image/jpeg; name=e.jpeg",
    "text/calendar; name=f.ics",
  ]);
  const parsed = await parse(new TextEncoder().encode(text));
  assert.deepEqual(parsed.attachments.map((a) => a.contentType), [
    "application/pdf",
    "application/octet-stream",
    "text/plain", // mailparser guesses for application/octet-stream without an extension
    "text/x-custom",
    "image/jpeg",
    "text/calendar",
  ]);
});

test("attachment content may be bytes, a string, a stream or a file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/file.bin`, pdf);
    const { bytes } = await compose({
      ...base,
      attachments: [
        { filename: "bytes.bin", content: png },
        { filename: "text.txt", content: "héllo" },
        { filename: "b64.bin", content: "AAEC/w==", encoding: "base64" },
        { filename: "hex.bin", content: "0001 02ff", encoding: "hex" },
        {
          filename: "stream.bin",
          content: ReadableStream.from([png.subarray(0, 5), png.subarray(5)]),
        },
        { content: { path: `${dir}/file.bin` } },
      ],
    });
    const parsed = await parse(bytes);
    const got = parsed.attachments.map((a) => [a.filename, Array.from(a.content.subarray(0, 4))]);
    assert.deepEqual(got, [
      ["bytes.bin", Array.from(png.subarray(0, 4))],
      ["text.txt", [0x68, 0xc3, 0xa9, 0x6c]],
      ["b64.bin", [0, 1, 2, 255]],
      ["hex.bin", [0, 1, 2, 255]],
      ["stream.bin", Array.from(png.subarray(0, 4))],
      ["file.bin", Array.from(pdf.subarray(0, 4))],
    ]);
    assert.equal(await sha256(parsed.attachments[4]!.content), await sha256(png));
    assert.equal(await sha256(parsed.attachments[5]!.content), await sha256(pdf));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("an attachment with a contentId and no HTML is an inline part of multipart/mixed", async () => {
  const { text } = await compose({
    ...base,
    text: "see image",
    attachments: [{ filename: "a.png", content: png, contentId: "<a@x>" }],
  });
  const tree = mimeTree(text);
  assert.equal(shape(tree), "multipart/mixed(text/plain, image/png)");
  const image = tree.children[1]!;
  assert.equal(image.headers["content-id"], "<a@x>");
  assert.match(image.headers["content-disposition"]!, /^inline; filename=a\.png$/);
});

test("calendar events are a text/calendar alternative and an .ics attachment", async () => {
  const ics = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n";
  const { text, bytes } = await compose({
    ...base,
    text: "invite",
    icalEvent: { content: ics, method: "request", filename: "meeting.ics" },
  });
  const tree = mimeTree(text);
  const calendar = tree.children[0]!.children[1]!;
  assert.equal(calendar.headers["content-type"], "text/calendar; method=REQUEST; charset=UTF-8");
  const parsed = await parse(bytes);
  const attachment = parsed.attachments.find((a) => a.filename === "meeting.ics")!;
  assert.equal(attachment.contentType, "application/ics");
  assert.equal(decoder.decode(attachment.content), ics);
});

test("optional headers: priority, read receipt, threading, X-Mailer, Sender, Reply-To, custom", async () => {
  const { composed, text } = await compose({
    from: "Ann <ann@example.com>",
    sender: "Mailer <bounces@lists.example.com>",
    to: "bob@example.com",
    replyTo: ["list@example.com", "Ann <ann@example.com>"],
    priority: "high",
    readReceiptTo: "ann@example.com",
    inReplyTo: "abc@example.com",
    references: ["<one@example.com>", "two@example.com three@example.com"],
    messageId: "fixed@example.com",
    xMailer: "My App 1.0",
    headers: { "X-Campaign": "spring", "List-Unsubscribe": "<https://example.com/u?id=1>" },
    text: "x",
  });
  assert.equal(header(text, "X-Priority"), "1 (Highest)");
  assert.equal(header(text, "Importance"), "High");
  assert.equal(header(text, "Disposition-Notification-To"), "ann@example.com");
  assert.equal(header(text, "In-Reply-To"), "<abc@example.com>");
  assert.equal(
    header(text, "References"),
    "<one@example.com> <two@example.com> <three@example.com>",
  );
  assert.equal(header(text, "Message-ID"), "<fixed@example.com>");
  assert.equal(composed.messageId, "<fixed@example.com>");
  assert.equal(header(text, "X-Mailer"), "My App 1.0");
  assert.equal(header(text, "Sender"), "Mailer <bounces@lists.example.com>");
  assert.equal(header(text, "Reply-To"), "list@example.com, Ann <ann@example.com>");
  assert.equal(header(text, "X-Campaign"), "spring");
  assert.equal(header(text, "List-Unsubscribe"), "<https://example.com/u?id=1>");
  assert.equal(composed.envelope.from, "bounces@lists.example.com");

  const low = (await compose({ ...base, priority: "low", xMailer: false, text: "x" })).text;
  assert.equal(header(low, "X-Priority"), "5 (Lowest)");
  assert.equal(header(low, "Importance"), "Low");
  assert.equal(header(low, "X-Mailer"), undefined);
  const normal = (await compose({ ...base, priority: "normal", text: "x" })).text;
  assert.equal(header(normal, "X-Priority"), undefined);
  assert.equal(header(normal, "Importance"), undefined);

  const repeated = (await compose({
    ...base,
    text: "x",
    headers: [{ key: "X-Tag", value: "a" }, { key: "X-Tag", value: "Grüße" }],
  })).text;
  const tags = headerFields(repeated).filter(([n]) => n === "X-Tag").map(([, v]) =>
    decodeUnstructured(v)
  );
  assert.deepEqual(tags, ["a", "Grüße"]);
});

test("Bcc is only in the envelope; recipients are deduplicated by domain case", async () => {
  const { composed, text } = await compose({
    from: "ann@example.com",
    to: ["Bob@Example.com", "bob@example.COM", "info@bücher.example"],
    cc: ["Bob <Bob@example.com>", "info@xn--bcher-kva.example"],
    bcc: ["secret@example.com", "SECRET@example.com"],
    text: "x",
  });
  assert.doesNotMatch(text, /secret/i);
  assert.doesNotMatch(text, /^Bcc:/im);
  // The domain is compared without case (and as punycode), the local part with case.
  assert.deepEqual(composed.envelope.to, [
    "Bob@Example.com",
    "bob@example.COM",
    "info@bücher.example",
    "secret@example.com",
    "SECRET@example.com",
  ]);
});

test("smtpUtf8 is set when any address has a non-ASCII local part", async () => {
  const ascii = await composeMessage({ from: "a@bücher.example", to: "b@example.com", text: "x" });
  await ascii.body.cancel();
  assert.equal(ascii.smtpUtf8, false);
  assert.match(ascii.messageId, /@xn--bcher-kva\.example>$/);
  for (const field of ["to", "cc", "bcc", "replyTo"] as const) {
    const composed = await composeMessage({ ...base, [field]: "jörg@example.com", text: "x" });
    const text = decoder.decode(await collect(composed.body));
    assert.equal(composed.smtpUtf8, true, field);
    if (field !== "bcc") assert.match(text, /jörg@example\.com/);
  }
});

test("header injection anywhere is a TypeError before anything is opened", async () => {
  let opened = 0;
  const openFile: FileOpener = (path) => {
    opened++;
    return testOpenFile(path);
  };
  const attachments = [{ content: { path: "/definitely/not/read" } }];
  const cases: [Message, RegExp][] = [
    [{ ...base, subject: "Hi\r\nBcc: evil@example.com" }, /header "Subject" contains a line break/],
    [
      { ...base, from: { name: "Ann\r\nBcc: x@y.z", address: "a@example.com" } },
      /display name contains a line break/,
    ],
    [{ ...base, to: "bob@example.com\nBcc: evil@example.com" }, /address contains a line break/],
    [
      { ...base, headers: { "X-A": "1\r\nBcc: evil@example.com" } },
      /header "X-A" contains a line break/,
    ],
    [{ ...base, headers: { "X-A\r\nBcc": "1" } }, /header name .* contains a line break/],
    [{ ...base, headers: { "X A": "1" } }, /header name "X A" contains " "/],
    [
      { ...base, headers: { "Content-Type": "text/html" } },
      /may not replace the header the builder writes/,
    ],
    [{ ...base, headers: { "mime-version": "2.0" } }, /may not replace/],
    [{ ...base, headers: { "Content-Transfer-Encoding": "8bit" } }, /may not replace/],
    [{ ...base, headers: { Subject: "x" } }, /duplicates a message field: use "subject"/],
    [{ ...base, headers: { Bcc: "x@example.com" } }, /use "bcc"/],
    [{ ...base, attachments: [{ filename: "a\r\n.pdf", content: "x" }] }, /line break/],
    [{ ...base, attachments: [{ content: "x", contentType: "text/plain\r\nX: y" }] }, /line break/],
    [{ ...base, attachments: [{ content: "x", contentId: "a\nb" }] }, /line break/],
    [{ ...base, inReplyTo: "a@b\r\nX: y" }, /line break/],
    [{ ...base, messageId: "a b@c" }, /not a valid message id/],
    [{ ...base, to: "foo" }, /^Cannot compose message: to: Invalid address "foo": missing @$/],
    [{ ...base, from: "a@example.com, b@example.com" }, /from must be exactly one address/],
    [{ ...base, priority: "urgent" as "high" }, /priority must be/],
    [{ ...base, attachments: [{ content: "x", contentType: "pdf" }] }, /is not type\/subtype/],
    [{ ...base, attachments: [{ content: "x", contentType: "text/plain; x=ü" }] }, /is not ASCII/],
    [{ ...base, attachments: [{ content: "zz", encoding: "hex" }] }, /not valid hex/],
    [{ ...base, attachments: [{ content: 5 as unknown as string }] }, /content must be/],
  ];
  for (const [message, pattern] of cases) {
    await assert.rejects(
      composeMessage(
        { ...message, attachments: [...(message.attachments ?? []), ...attachments] },
        { openFile },
      ),
      (error: unknown) => {
        assert.ok(error instanceof TypeError, `${pattern}: ${error}`);
        assert.match(error.message, pattern);
        return true;
      },
    );
  }
  assert.equal(opened, 0);
  await assert.rejects(composeMessage({ ...base, date: new Date(Number.NaN) }), RangeError);
});

test("an unreadable attachment rejects composeMessage and closes the files it opened", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/ok.pdf`, pdf);
    const missing = `${dir}/missing.pdf`;
    const opened: string[] = [];
    const cancelled: string[] = [];
    const openFile: FileOpener = async (path) => {
      const stream = await testOpenFile(path);
      opened.push(path);
      // Wrap to see the cancel; the file itself is closed by the inner stream's cancel.
      const reader = stream.getReader();
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          const { done, value } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        },
        async cancel(reason) {
          cancelled.push(path);
          await reader.cancel(reason);
        },
      });
    };
    const message: Message = {
      ...base,
      text: "x",
      attachments: [{ content: { path: `${dir}/ok.pdf` } }, { content: { path: missing } }],
    };
    await assert.rejects(composeMessage(message, { openFile }), (error: unknown) => {
      assert.ok(error instanceof TypeError);
      assert.equal(
        error.message.startsWith(`Cannot read attachment "${missing}": `),
        true,
        error.message,
      );
      assert.ok(error.cause instanceof Deno.errors.NotFound);
      return true;
    });
    assert.deepEqual(opened, [`${dir}/ok.pdf`]);
    assert.deepEqual(cancelled, [`${dir}/ok.pdf`]);
    // With the runtime's opener too: the sanitizer fails this test if a file stays open.
    await assert.rejects(
      composeMessage(message, { openFile: runtimeOpenFile }),
      /Cannot read attachment ".*missing\.pdf": /,
    );
    await assert.rejects(
      composeMessage(
        { ...base, attachments: [{ content: { path: dir } }] },
        { openFile: runtimeOpenFile },
      ),
      /Cannot read attachment/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("a locked stream is refused before anything is opened", async () => {
  const stream = ReadableStream.from([png]);
  const reader = stream.getReader();
  await assert.rejects(
    composeMessage({ ...base, attachments: [{ content: stream }] }),
    /stream is locked/,
  );
  reader.releaseLock();
  await stream.cancel();
});

test("random messages keep every line within the limits and parse back", async () => {
  // Not empty: mailparser reads an empty part as "\n".
  const text = fc.string({ unit: "grapheme", minLength: 1, maxLength: 300 });
  const name = fc.string({ unit: "grapheme", maxLength: 40 }).map((s) =>
    s.replace(/[\r\n\0]/g, "")
  );
  await fc.assert(
    fc.asyncProperty(
      name,
      name,
      text,
      text,
      fc.boolean(),
      async (subject, sender, body, html, allow8bit) => {
        const message: Message = {
          from: { name: sender, address: "a@example.com" },
          to: "b@example.com",
          subject,
          text: body,
          html: `<p>${html}</p>`,
          attachments: [{
            filename: `${sender || "x"}.bin`,
            content: new TextEncoder().encode(body),
          }],
        };
        const { text: out, bytes } = await compose(message, allow8bit);
        assertLines(out);
        const parsed = await parse(bytes);
        // mailparser trims headers and collapses ASCII whitespace in them; compare modulo that.
        const normal = (s: string) => s.replace(/[ \t]+/g, " ").trim();
        assert.equal(normal(parsed.subject ?? ""), normal(subject));
        assert.equal(normal(parsed.from?.value[0]?.name ?? ""), normal(sender));
        assert.equal(parsed.text ?? "", body.replace(/\r\n|\r/g, "\n"));
        assert.equal(parsed.html, `<p>${html.replace(/\r\n|\r/g, "\n")}</p>`);
        assert.equal(parsed.attachments[0]!.filename, `${sender || "x"}.bin`);
      },
    ),
    { numRuns: 60 },
  );
});

test("composeForSending with recorded boundaries composes a message byte for byte again", async () => {
  const message: Message = {
    from: "ann@example.com",
    to: "bob@example.com",
    subject: "Twice",
    date: new Date("2024-01-02T03:04:05Z"),
    messageId: "<twice@example.com>",
    text: "plain",
    html: '<p>html <img src="cid:logo"></p>',
    attachments: [
      { filename: "logo.png", content: new Uint8Array([1, 2, 3]), contentId: "logo" },
      { filename: "big.bin", content: pseudoRandomBytes(300 * 1024, 7) },
    ],
  };
  const recorded: string[] = [];
  const bodies: Uint8Array[] = [];
  for (let i = 0; i < 2; i++) {
    const composed = await composeForSending(
      checkMessage(message),
      { openFile: testOpenFile },
      { date: message.date as Date, nextBoundary: recordedBoundaries(recorded) },
    );
    assert.ok(composed.body instanceof ReadableStream, "over 256 KiB: streamed");
    bodies.push(await collect(composed.body));
  }
  // related, alternative, mixed: one boundary each, drawn once.
  assert.equal(recorded.length, 3);
  assert.equal(new Set(recorded).size, 3);
  for (const boundary of recorded) assert.match(boundary, /^postie_[0-9a-f]{24}$/);
  assert.deepEqual(bodies[1], bodies[0]);
  // Without the record, the boundaries differ.
  const fresh = await composeForSending(checkMessage(message), { openFile: testOpenFile }, {
    date: message.date as Date,
    nextBoundary: recordedBoundaries([]),
  });
  assert.notDeepEqual(await collect(fresh.body as ReadableStream<Uint8Array>), bodies[0]);
});
