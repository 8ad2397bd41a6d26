/**
 * {@linkcode sendMail}: connect, send one message, quit, on every path.
 *
 * @module
 */

import { SmtpClient } from "./client.ts";
import type { ClientOptions, SendOptions } from "./options.ts";
import type { Message } from "./mime/mod.ts";
import type { RawMessage, SendResult } from "./types.ts";

/**
 * Connects, sends one message and quits. The connection is closed on every path.
 *
 * @param options Where and how to connect.
 * @param message The message.
 * @param sendOptions Abort signal and partial-failure policy.
 * @returns What the server accepted.
 *
 * @example Send one message
 * ```ts
 * import { sendMail } from "@postie/smtp";
 * import { MockSmtpServer } from "@postie/smtp/testing";
 * import assert from "node:assert/strict";
 *
 * // A mail server in memory for this example (see @postie/smtp/testing).
 * await using server = new MockSmtpServer();
 *
 * const result = await sendMail({ hostname: "smtp.example.com", transport: server.transport }, {
 *   raw: "Subject: Hi\r\n\r\nHello\r\n",
 *   envelope: { from: "me@example.com", to: ["you@example.com"] },
 * });
 * assert.deepEqual(result.accepted.map((r) => r.address), ["you@example.com"]);
 * assert.equal(server.connections, 1); // and the connection is closed again
 * ```
 */
export async function sendMail(
  options: ClientOptions,
  message: Message | RawMessage,
  sendOptions: SendOptions = {},
): Promise<SendResult> {
  const client = await SmtpClient.connect(
    options,
    sendOptions.signal ? { signal: sendOptions.signal } : {},
  );
  try {
    return await client.send(message, sendOptions);
  } finally {
    await client.quit();
  }
}
