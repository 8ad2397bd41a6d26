/**
 * The benchmark's nodemailer client: the same scenarios as `_bench_postie.ts`, with
 * nodemailer's SMTP transport in pool mode (`pool: true`, `maxConnections`). `scripts/bench.ts`
 * bundles it and runs it under Node (or under Deno with `--nodemailer-runtime deno`).
 *
 * @module
 */

import process from "node:process";
import { readFileSync } from "node:fs";
import type { Readable } from "node:stream";
import nodemailer from "nodemailer";
import MailComposer from "nodemailer/lib/mail-composer";
import {
  ATTACHMENT_NAME,
  attachmentMessage,
  benchMessage,
  clientArgs,
  DKIM_DOMAIN,
  DKIM_SELECTOR,
  drain,
  measure,
  report,
  waitForStart,
} from "./_bench_common.ts";

const args = clientArgs();
const versions = process.versions as Record<string, string | undefined>;
const runtime = versions.deno ? `deno ${versions.deno}` : `node ${process.versions.node}`;

if (args.task === "mime") {
  const path = args.attachment!;
  const compile = (message: Record<string, unknown>) =>
    drain(new MailComposer(message).compile().createReadStream() as Readable);
  await compile(benchMessage(0, 1));
  await waitForStart();
  let bytes = 0;
  const cost = await measure(async () => {
    bytes = await compile({
      ...attachmentMessage(),
      attachments: [{ filename: ATTACHMENT_NAME, path }],
    });
  });
  report({ impl: "nodemailer", runtime, messages: 1, bytes, ...cost });
  process.exit(0);
}

const transport = nodemailer.createTransport({
  host: args.tls === "none" ? "127.0.0.1" : "localhost",
  port: args.port,
  secure: args.tls === "implicit",
  ignoreTLS: args.tls === "none",
  requireTLS: args.tls === "starttls",
  name: "bench.example.com",
  pool: true,
  maxConnections: args.connections,
  maxMessages: Infinity,
  ...(args.ca ? { tls: { ca: [readFileSync(args.ca, "utf8")] } } : {}),
  ...(args.auth ? { auth: { user: "bench", pass: "secret" } } : {}),
  // nodemailer signs with RSA only: the RSA key, whichever algorithm postie uses.
  ...(args.dkim
    ? {
      dkim: {
        domainName: DKIM_DOMAIN,
        keySelector: DKIM_SELECTOR,
        privateKey: readFileSync(args.dkimRsaKey!, "utf8"),
      },
    }
    : {}),
});

function make(n: number, timed: boolean) {
  if (timed && args.attachment) {
    return {
      ...attachmentMessage(),
      attachments: [{ filename: ATTACHMENT_NAME, path: args.attachment }],
    };
  }
  return benchMessage(n, args.recipients);
}

async function sendAll(count: number, from: number, timed: boolean): Promise<void> {
  if (args.order === "sequential") {
    for (let i = 0; i < count; i++) await transport.sendMail(make(from + i, timed));
  } else {
    await Promise.all(
      Array.from({ length: count }, (_, i) => transport.sendMail(make(from + i, timed))),
    );
  }
}

await sendAll(args.warmup, 0, false);
await waitForStart();
const cost = await measure(() => sendAll(args.messages, args.warmup, true));
report({ impl: "nodemailer", runtime, messages: args.messages, ...cost });
transport.close();
