/**
 * The benchmark's floor: a minimal SMTP client with no library behind it, to show how near the
 * wire a real client gets. Each message is composed up front (plain text, precomputed
 * headers) and goes out in one write: MAIL, RCPT and `BDAT n LAST` with the message (DATA when
 * the server lacks CHUNKING: then a second round trip for the 354), one message in flight at a
 * time whatever the scenario's order, no timeouts, no checks beyond the reply codes. The
 * attachment of scenario D is read 512 KiB at a time and sent as base64 in BDAT chunks.
 * Only `node:` modules, so that it runs under Node (bundled by `scripts/bench.ts`) or Deno.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { open } from "node:fs/promises";
import net from "node:net";
import process from "node:process";
import {
  ATTACHMENT_NAME,
  attachmentMessage,
  benchMessage,
  clientArgs,
  measure,
  report,
  waitForStart,
} from "./_bench_common.ts";

const args = clientArgs();
const versions = process.versions as Record<string, string | undefined>;
const runtime = versions.deno ? `deno ${versions.deno}` : `node ${process.versions.node}`;
if (args.tls !== "none" || args.auth || args.task !== "send" || args.connections !== 1) {
  throw new Error("The raw client speaks plain SMTP on one connection only");
}

const socket = net.connect({ host: "127.0.0.1", port: args.port, noDelay: true });
await new Promise<void>((resolve, reject) => {
  socket.once("connect", resolve);
  socket.once("error", reject);
});

/** Reply lines not yet consumed, and a waiter for the next complete line. */
let pending = "";
const lines: string[] = [];
let wake: (() => void) | undefined;
socket.setEncoding("latin1");
socket.on("data", (text: string) => {
  pending += text;
  let lf;
  while ((lf = pending.indexOf("\n")) !== -1) {
    lines.push(pending.slice(0, lf));
    pending = pending.slice(lf + 1);
  }
  const waiter = wake;
  wake = undefined;
  waiter?.();
});

/** The next reply, all its lines; fails on a code of 400 or more. */
async function reply(): Promise<string[]> {
  const got: string[] = [];
  while (true) {
    if (lines.length === 0) await new Promise<void>((resolve) => wake = resolve);
    const line = lines.shift()!;
    got.push(line);
    if (line[3] === "-") continue;
    if (line[0] !== "2" && line[0] !== "3") throw new Error(`Server refused: ${line}`);
    return got;
  }
}

/** Reads `count` replies. */
async function replies(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await reply();
}

await reply();
socket.write("EHLO bench.example.com\r\n");
const bdat = (await reply()).some((line) => /^250[ -]CHUNKING\s*$/i.test(line));

/** The message `n` as bytes, composed with templates: no MIME library. */
function compose(n: number): { envelope: string[]; bytes: Buffer } {
  const message = benchMessage(n, args.recipients);
  const to = Array.isArray(message.to) ? message.to : [message.to];
  const text = message.text.replace(/\n/g, "\r\n");
  const bytes = Buffer.from(
    `From: ${message.from}\r\nTo: ${to.join(", ")}\r\nSubject: ${message.subject}\r\n` +
      `Date: ${new Date().toUTCString()}\r\nMessage-ID: <${n}.raw@example.com>\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n` +
      `Content-Transfer-Encoding: 7bit\r\n\r\n${text}`,
    "latin1",
  );
  return { envelope: to, bytes };
}

/** Sends one small message: one write with BDAT, two round trips with DATA. */
async function sendSmall(n: number): Promise<void> {
  const { envelope, bytes } = compose(n);
  let head = "MAIL FROM:<sender@example.com>\r\n";
  for (const address of envelope) head += `RCPT TO:<${address}>\r\n`;
  if (bdat) {
    socket.write(Buffer.concat([Buffer.from(`${head}BDAT ${bytes.length} LAST\r\n`), bytes]));
    await replies(envelope.length + 2);
  } else {
    socket.write(`${head}DATA\r\n`);
    await replies(envelope.length + 2);
    socket.write(Buffer.concat([bytes, Buffer.from(".\r\n")]));
    await replies(1);
  }
}

/** Base64 lines of 76 characters come from 57-byte groups: read whole groups at a time. */
const FILE_CHUNK = 57 * 9198;

/** Sends the attachment message: headers, then the file as base64, in BDAT chunks. */
async function sendAttachment(path: string): Promise<void> {
  const message = attachmentMessage();
  const boundary = "raw-bench-boundary";
  const head = `From: ${message.from}\r\nTo: ${message.to}\r\nSubject: ${message.subject}\r\n` +
    `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n` +
    `--${boundary}\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n${message.text}\r\n` +
    `--${boundary}\r\nContent-Type: application/octet-stream; name="${ATTACHMENT_NAME}"\r\n` +
    `Content-Disposition: attachment; filename="${ATTACHMENT_NAME}"\r\n` +
    `Content-Transfer-Encoding: base64\r\n\r\n`;
  if (!bdat) throw new Error("The raw client sends attachments with CHUNKING only");
  const headBytes = Buffer.from(head, "latin1");
  socket.write(
    Buffer.concat([
      Buffer.from(`MAIL FROM:<sender@example.com>\r\nRCPT TO:<${message.to}>\r\n`),
      Buffer.from(`BDAT ${headBytes.length}\r\n`),
      headBytes,
    ]),
  );
  let chunks = 1;
  const file = await open(path, "r");
  const buffer = Buffer.alloc(FILE_CHUNK);
  try {
    while (true) {
      const { bytesRead } = await file.read(buffer, 0, FILE_CHUNK, null);
      if (bytesRead === 0) break;
      const base64 = buffer.subarray(0, bytesRead).toString("base64");
      let text = "";
      for (let i = 0; i < base64.length; i += 76) text += base64.slice(i, i + 76) + "\r\n";
      const writable = socket.write(`BDAT ${text.length}\r\n${text}`, "latin1");
      chunks++;
      if (!writable) await new Promise((resolve) => socket.once("drain", resolve));
    }
  } finally {
    await file.close();
  }
  const tail = `--${boundary}--\r\n`;
  socket.write(`BDAT ${tail.length} LAST\r\n${tail}`);
  await replies(2 + chunks);
}

async function run(count: number, from: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    if (args.attachment) await sendAttachment(args.attachment);
    else await sendSmall(from + i);
  }
}

await run(args.warmup, 0);
await waitForStart();
const cost = await measure(() => run(args.messages, args.warmup));
report({ impl: "raw", runtime, messages: args.messages, ...cost });
socket.write("QUIT\r\n");
await replies(1);
socket.destroy();
process.exit(0);
