/**
 * {@linkcode sendMail}: connect, send one message, quit, on every path.
 *
 * @module
 */

import { deliverSend, SmtpClient } from "./client.ts";
import type { ClientOptions, SendOptions } from "./options.ts";
import type { Message } from "./mime/mod.ts";
import { resolveDkim } from "./dkim/_signer.ts";
import { Outgoing } from "./outgoing.ts";
import { fileOpener } from "./client_options.ts";
import type { RawMessage, SendResult } from "./types.ts";

/**
 * Connects, sends one message and quits. The connection is closed on every path.
 *
 * The message is checked before anything touches the network: its fields and addresses, that
 * it has a recipient, and that every file attachment exists and can be read. Only then does
 * it connect.
 *
 * @param options Where and how to connect.
 * @param message The message.
 * @param sendOptions Abort signal and partial-failure policy.
 * @returns What the server accepted.
 * @throws {TypeError} When the message cannot be sent (an invalid field or address, no
 *   recipient, an unreadable attachment file), before connecting.
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
  const defaults = options.dkim === undefined ? [] : resolveDkim(options.dkim);
  const outgoing = Outgoing.of(message, sendOptions, defaults, fileOpener(options));
  if (outgoing.hasFiles) await outgoing.checkFiles();
  const client = await SmtpClient.connect(
    options,
    sendOptions.signal ? { signal: sendOptions.signal } : {},
  );
  try {
    return await deliverSend(client, outgoing, sendOptions);
  } finally {
    await client.quit();
  }
}
