/**
 * Bodies that are byte streams (a composed message with a file, a caller's file stream) are
 * read through one reused buffer per chunk: what the server receives must be exactly the
 * message, over DATA and over BDAT, however the stream hands out its bytes.
 */

import assert from "node:assert/strict";
import { composeMessage, sendMail } from "../../mod.ts";
import { MockSmtpServer } from "../../src/testing/mod.ts";
import { test } from "../_helpers/test.ts";
import { pseudoRandomBytes, testOpenFile, UnevenByteStream } from "../mime/_helpers.ts";

/** A byte stream over `content` that answers each read with uneven amounts. */
function unevenByteStream(content: Uint8Array): ReadableStream<Uint8Array> {
  return new UnevenByteStream(content, (read) => 30_000 + (read % 5) * 77_777).stream;
}

for (const chunking of [true, false]) {
  const mode = chunking ? "BDAT" : "DATA";

  test(`a raw message given as a byte stream arrives exactly (${mode})`, async () => {
    // Lines of text with dots to stuff and CRLF line ends, over 1 MB: several chunks.
    let body = "";
    for (let i = 0; body.length < 1_200_000; i++) {
      body += i % 7 === 0 ? `.line ${i}\r\n` : `line ${i} ${"x".repeat(i % 90)}\r\n`;
    }
    const raw = new TextEncoder().encode(
      "From: ann@example.com\r\nTo: bob@example.com\r\nSubject: stream\r\n\r\n" + body,
    );
    await using server = new MockSmtpServer({ extensions: { CHUNKING: chunking } });
    await sendMail({ hostname: "smtp.example.com", transport: server.transport }, {
      raw: unevenByteStream(raw),
      envelope: { from: "ann@example.com", to: ["bob@example.com"] },
    });
    assert.equal(server.messages.length, 1);
    assert.deepEqual(server.messages[0]!.raw, raw);
  });

  test(`a composed message with a file arrives as composed (${mode})`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/file.bin`;
      await Deno.writeFile(path, pseudoRandomBytes(900_001, 3));
      const message = {
        from: "ann@example.com",
        to: "bob@example.com",
        subject: "file",
        text: "see attachment",
        date: new Date(0),
        messageId: "<fixed@example.com>",
        attachments: [{ filename: "file.bin", content: { path } }],
      };
      await using server = new MockSmtpServer({ extensions: { CHUNKING: chunking } });
      await sendMail({ hostname: "smtp.example.com", transport: server.transport }, message);
      const expected = new Uint8Array(
        await new Response((await composeMessage(message, { openFile: testOpenFile })).body)
          .arrayBuffer(),
      );
      // Boundaries are drawn per composition: compare all but them.
      const text = (bytes: Uint8Array) =>
        new TextDecoder().decode(bytes).replaceAll(/postie_[0-9a-f]{24}/g, "B");
      assert.equal(text(server.messages[0]!.raw), text(expected));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
