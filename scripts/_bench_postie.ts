/**
 * The benchmark's postie client (run under Deno by `scripts/bench.ts`): one scenario, one
 * process. Warms up, waits for the start signal, runs the timed window and prints its cost as
 * one JSON line.
 *
 * @module
 */

import { SmtpClient } from "../src/client.ts";
import { SmtpPool } from "../src/pool.ts";
import { composeMessage, type Message } from "../src/mime/mod.ts";
import type { ClientOptions } from "../src/options.ts";
import type { SendResult } from "../src/types.ts";
import {
  ATTACHMENT_NAME,
  attachmentMessage,
  benchMessage,
  clientArgs,
  drain,
  measure,
  report,
  waitForStart,
} from "./_bench_common.ts";

const args = clientArgs();

if (args.task === "mime") {
  const path = args.attachment!;
  await drain((await composeMessage({ ...benchMessage(0, 1) })).body);
  await waitForStart();
  let bytes = 0;
  const cost = await measure(async () => {
    const composed = await composeMessage({
      ...attachmentMessage(),
      attachments: [{ filename: ATTACHMENT_NAME, content: { path } }],
    });
    bytes = await drain(composed.body);
  });
  report({ impl: "postie", runtime: `deno ${Deno.version.deno}`, messages: 1, bytes, ...cost });
  Deno.exit(0);
}

const options: ClientOptions = {
  hostname: args.tls === "none" ? "127.0.0.1" : "localhost",
  port: args.port,
  tls: args.tls,
  clientName: "bench.example.com",
  ...(args.ca ? { tlsOptions: { caCerts: [Deno.readTextFileSync(args.ca)] } } : {}),
  ...(args.auth ? { auth: { username: "bench", password: "secret" } } : {}),
};

/** The message number `n`; the timed messages of scenario D carry the attachment. */
function make(n: number, timed: boolean): Message {
  if (timed && args.attachment) {
    return {
      ...attachmentMessage(),
      attachments: [{ filename: ATTACHMENT_NAME, content: { path: args.attachment } }],
    };
  }
  return benchMessage(n, args.recipients);
}

/** Sends `count` messages in the scenario's order. */
async function sendAll(
  send: (message: Message) => Promise<SendResult>,
  count: number,
  from: number,
  timed: boolean,
): Promise<void> {
  if (args.order === "sequential") {
    for (let i = 0; i < count; i++) await send(make(from + i, timed));
  } else {
    await Promise.all(Array.from({ length: count }, (_, i) => send(make(from + i, timed))));
  }
}

let cost;
if (args.connections > 1) {
  await using pool = new SmtpPool({
    ...options,
    maxConnections: args.connections,
    maxMessages: Infinity,
    maxQueue: Infinity,
  });
  const send = (message: Message) => pool.send(message);
  await sendAll(send, args.warmup, 0, false);
  await waitForStart();
  cost = await measure(() => sendAll(send, args.messages, args.warmup, true));
} else {
  await using client = await SmtpClient.connect(options);
  const send = (message: Message) => client.send(message);
  await sendAll(send, args.warmup, 0, false);
  await waitForStart();
  cost = await measure(() => sendAll(send, args.messages, args.warmup, true));
}
report({
  impl: "postie",
  runtime: `deno ${Deno.version.deno}`,
  messages: args.messages,
  ...cost,
});
