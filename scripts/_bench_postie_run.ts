/**
 * The benchmark's postie client, whatever the runtime: one scenario, one process. Warms up,
 * waits for the start signal, runs the timed window and prints its cost as one JSON line.
 * `_bench_postie.ts` runs it under Deno against the module, `_bench_postie_node.ts` under Node
 * against the npm build.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import type * as Postie from "../mod.ts";
import type { ClientOptions, Message, SendResult } from "../mod.ts";
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

/** The library's public entry: the module, or the npm build of it. */
export type PostieModule = typeof Postie;

/**
 * Runs the scenario that the command line describes.
 *
 * @param postie The library.
 * @param runtime The runtime's name and version, for the report.
 */
export async function runPostie(postie: PostieModule, runtime: string): Promise<void> {
  const { SmtpClient, SmtpPool, composeMessage } = postie;
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
    report({ impl: "postie", runtime, messages: 1, bytes, ...cost });
    return;
  }

  const options: ClientOptions = {
    hostname: args.tls === "none" ? "127.0.0.1" : "localhost",
    port: args.port,
    tls: args.tls,
    clientName: "bench.example.com",
    ...(args.ca ? { tlsOptions: { caCerts: [readFileSync(args.ca, "utf8")] } } : {}),
    ...(args.auth ? { auth: { username: "bench", password: "secret" } } : {}),
    ...(args.dkim
      ? {
        dkim: {
          domain: DKIM_DOMAIN,
          selector: DKIM_SELECTOR,
          privateKey: readFileSync(args.dkimKey!, "utf8"),
        },
      }
      : {}),
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
    // No `await using`: Node 20 does not have it.
    const pool = new SmtpPool({
      ...options,
      maxConnections: args.connections,
      maxMessages: Infinity,
      maxQueue: Infinity,
    });
    const send = (message: Message) => pool.send(message);
    await sendAll(send, args.warmup, 0, false);
    await waitForStart();
    cost = await measure(() => sendAll(send, args.messages, args.warmup, true));
    await pool.close();
  } else {
    const client = await SmtpClient.connect(options);
    const send = (message: Message) => client.send(message);
    await sendAll(send, args.warmup, 0, false);
    await waitForStart();
    cost = await measure(() => sendAll(send, args.messages, args.warmup, true));
    await client.quit();
  }
  report({ impl: "postie", runtime, messages: args.messages, ...cost });
}
