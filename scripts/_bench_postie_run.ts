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
import type { ClientOptions, Message } from "../mod.ts";
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

/** The library's public entry: the module, or the npm build of it. */
export type PostieModule = typeof Postie;

/**
 * Runs the scenario that the command line describes.
 *
 * @param postie The library.
 * @param runtime The runtime's name and version, for the report.
 */
export async function runPostie(postie: PostieModule, runtime: string): Promise<void> {
  const { SmtpClient, SmtpPool, composeMessage, openFile } = postie;
  const args = clientArgs();

  if (args.task === "mime") {
    await timeComposition("postie", runtime, args.attachment!, async (path) => {
      const message = {
        ...attachmentMessage(),
        attachments: [{ filename: ATTACHMENT_NAME, content: { path } }],
      };
      return await drain((await composeMessage(message, { openFile })).body);
    });
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

  /** The message number `n`; in scenario D every message carries the attachment. */
  function make(n: number): Message {
    if (args.attachment) {
      return {
        ...attachmentMessage(),
        attachments: [{ filename: ATTACHMENT_NAME, content: { path: args.attachment } }],
      };
    }
    return benchMessage(n, args.recipients);
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
    cost = await warmUpAndMeasure(args, (n) => pool.send(make(n)));
    await pool.close();
  } else {
    const client = await SmtpClient.connect(options);
    cost = await warmUpAndMeasure(args, (n) => client.send(make(n)));
    await client.quit();
  }
  report({ impl: "postie", runtime, messages: args.messages, ...cost });
}
