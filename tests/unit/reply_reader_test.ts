import assert from "node:assert/strict";
import { ReplyReader } from "../../src/protocol/_reply_reader.ts";
import { SmtpProtocolError } from "../../src/errors.ts";
import { test } from "../_helpers/test.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

function readAll(
  text: string,
  chunkSize = text.length,
  limits?: ConstructorParameters<typeof ReplyReader>[0],
) {
  const reader = new ReplyReader(limits);
  const data = bytes(text);
  const replies = [];
  for (let i = 0; i < data.length; i += chunkSize) {
    reader.push(data.subarray(i, i + chunkSize));
    for (let reply = reader.next(); reply; reply = reader.next()) replies.push(reply);
  }
  return { replies, reader };
}

test("ReplyReader parses a single-line reply", () => {
  const { replies } = readAll("220 mail.example.com ESMTP ready\r\n");
  assert.deepEqual(replies, [{ code: 220, lines: ["mail.example.com ESMTP ready"] }]);
});

test("ReplyReader joins a multi-line reply, whatever the chunking", () => {
  const text =
    "250-mail.example.com\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 AUTH PLAIN LOGIN\r\n";
  for (const size of [1, 2, 3, 7, text.length]) {
    const { replies } = readAll(text, size);
    assert.deepEqual(replies, [{
      code: 250,
      lines: ["mail.example.com", "PIPELINING", "SIZE 1000", "AUTH PLAIN LOGIN"],
    }]);
  }
});

test("ReplyReader returns pipelined replies in order", () => {
  const { replies } = readAll("250 2.1.0 Ok\r\n550 5.1.1 <x@y>: unknown\r\n354 go ahead\r\n");
  assert.deepEqual(replies.map((r) => r.code), [250, 550, 354]);
  assert.deepEqual(replies[1]!.enhancedStatus, { class: 5, subject: 1, detail: 1 });
  assert.deepEqual(replies[1]!.lines, ["<x@y>: unknown"]);
});

test("ReplyReader strips the enhanced status code from every line that carries it", () => {
  const { replies } = readAll(
    "535-5.7.8 Username and Password not accepted.\r\n535 5.7.8 Learn more\r\n",
  );
  assert.deepEqual(replies[0], {
    code: 535,
    enhancedStatus: { class: 5, subject: 7, detail: 8 },
    lines: ["Username and Password not accepted.", "Learn more"],
  });
});

test("ReplyReader ignores an enhanced code whose class differs from the reply's", () => {
  const { replies } = readAll("250 5.0.0 odd\r\n");
  assert.deepEqual(replies[0], { code: 250, lines: ["5.0.0 odd"] });
});

test("ReplyReader accepts a bare code and bare LF line ends", () => {
  const { replies } = readAll("250\n220-a\n220 b\n");
  assert.deepEqual(replies, [{ code: 250, lines: [""] }, { code: 220, lines: ["a", "b"] }]);
});

test("ReplyReader rejects mixed codes in one reply", () => {
  assert.throws(() => readAll("250-first\r\n251 second\r\n"), SmtpProtocolError);
});

test("ReplyReader rejects garbage", () => {
  for (const garbage of ["hello\r\n", "25\r\n", "2500 x\r\n", "099 x\r\n", "250_x\r\n"]) {
    assert.throws(() => readAll(garbage), SmtpProtocolError, garbage);
  }
});

test("ReplyReader refuses an over-long line before it ends", () => {
  const reader = new ReplyReader({ maxLineLength: 1024, maxLines: 10 });
  reader.push(bytes("250 "));
  assert.equal(reader.next(), undefined);
  reader.push(new Uint8Array(2000).fill(0x41));
  assert.throws(() => reader.next(), /longer than 1024 bytes/);
});

test("ReplyReader refuses an endless multi-line reply", () => {
  const reader = new ReplyReader({ maxLineLength: 1024, maxLines: 100 });
  assert.throws(() => {
    for (let i = 0; i < 1000; i++) {
      reader.push(bytes("250-more\r\n"));
      reader.next();
    }
  }, /more than 100 lines/);
});

test("ReplyReader keeps bytes after a reply as buffered", () => {
  const { reader, replies } = readAll("220 go ahead\r\n250 injected");
  assert.equal(replies.length, 1);
  assert.equal(reader.buffered, 12);
});

test("ReplyReader is linear on many small replies", () => {
  const text = "250 ok\r\n".repeat(200_000);
  const started = performance.now();
  const { replies } = readAll(text, 1500);
  assert.equal(replies.length, 200_000);
  assert.ok(performance.now() - started < 5000);
});
