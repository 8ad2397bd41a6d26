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
  report,
  timeComposition,
  warmUpAndMeasure,
} from "./_bench_common.ts";

const args = clientArgs();
const versions = process.versions as Record<string, string | undefined>;
const runtime = versions.deno ? `deno ${versions.deno}` : `node ${process.versions.node}`;

if (args.task === "mime") {
  await timeComposition("nodemailer", runtime, args.attachment!, (path) => {
    const message = { ...attachmentMessage(), attachments: [{ filename: ATTACHMENT_NAME, path }] };
    return drain(new MailComposer(message).compile().createReadStream() as Readable);
  });
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

function make(n: number) {
  if (args.attachment) {
    return {
      ...attachmentMessage(),
      attachments: [{ filename: ATTACHMENT_NAME, path: args.attachment }],
    };
  }
  return benchMessage(n, args.recipients);
}

const cost = await warmUpAndMeasure(args, (n) => transport.sendMail(make(n)));
report({ impl: "nodemailer", runtime, messages: args.messages, ...cost });
transport.close();
