/**
 * # Testing mail code without a mail server
 *
 * - {@linkcode MockSmtpServer}: an SMTP server that runs in process, in memory or on a
 *   loopback port (Deno and Node.js). It records every message (envelope, bytes, parsed
 *   headers, TLS and login) and can be told to refuse a recipient, answer 4xx or 5xx at any
 *   command, wait, or drop the connection ({@linkcode FaultRule}).
 * - {@linkcode TranscriptRecorder}: keeps the client's SMTP dialogue for assertions.
 * - {@linkcode MemoryTransport}: the in-memory connection pair under the mock server, for
 *   playing a server line by line and checking the exact bytes the client writes.
 * - {@linkcode parseHeaders}: reads a message's header fields, RFC 2047 words decoded.
 *
 * Your code keeps its real options; the test adds `transport: server.transport`, and every
 * connection goes to the mock server instead of the network. In memory, TLS is simulated (the
 * connection reports TLS; nothing is encrypted), so the options of a production server work
 * unchanged; on a port ({@linkcode MockSmtpServer.listen}) STARTTLS and implicit TLS are real
 * and need a certificate.
 *
 * @example Test code that sends mail
 * ```ts
 * import { type ClientOptions, sendMail } from "@postie/smtp";
 * import { MockSmtpServer, TranscriptRecorder } from "@postie/smtp/testing";
 * import assert from "node:assert/strict";
 *
 * // The code under test.
 * async function sendWelcome(options: ClientOptions, to: string): Promise<void> {
 *   await sendMail(options, {
 *     from: "Shop <shop@example.com>",
 *     to,
 *     subject: "Welcome, Zoë",
 *     text: "Thanks for signing up.",
 *   });
 * }
 *
 * await using server = new MockSmtpServer({ users: { shop: "secret" } });
 * const transcript = new TranscriptRecorder();
 * await sendWelcome({
 *   hostname: "smtp.example.com",
 *   port: 587,
 *   auth: { username: "shop", password: "secret" },
 *   transport: server.transport,
 *   onTranscript: transcript.onTranscript,
 * }, "zoe@example.com");
 *
 * assert.equal(server.messages.length, 1);
 * const message = server.messages[0]!;
 * assert.deepEqual(message.envelope.to, ["zoe@example.com"]);
 * assert.equal(message.headers.get("Subject"), "Welcome, Zoë");
 * assert.equal(message.auth?.mechanism, "PLAIN");
 * assert.ok(transcript.lines.includes("C: STARTTLS"));
 * assert.ok(transcript.lines.includes("C: AUTH PLAIN [redacted]"));
 * ```
 *
 * @example A recipient refused, then a server that goes away
 * ```ts
 * import { SmtpClient, SmtpConnectionError } from "@postie/smtp";
 * import { MockSmtpServer } from "@postie/smtp/testing";
 * import assert from "node:assert/strict";
 *
 * await using server = new MockSmtpServer({
 *   faults: [
 *     { command: "RCPT", match: "gone@example.com", reply: "550 5.1.1 No such user" },
 *     { command: "MAIL", match: "late@example.com", drop: true },
 *   ],
 * });
 * await using client = await SmtpClient.connect(server.clientOptions());
 * const result = await client.send({
 *   raw: "Subject: Hi\r\n\r\nHello\r\n",
 *   envelope: { from: "me@example.com", to: ["you@example.com", "gone@example.com"] },
 * });
 * assert.equal(result.rejected[0]!.address, "gone@example.com");
 * await assert.rejects(
 *   client.send({
 *     raw: "Subject: Hi\r\n\r\nHello\r\n",
 *     envelope: { from: "late@example.com", to: ["you@example.com"] },
 *   }),
 *   SmtpConnectionError,
 * );
 * ```
 *
 * @module
 */

export {
  type FaultRule,
  type MockCommand,
  type MockExtension,
  type MockListenOptions,
  type MockServerAddress,
  MockSmtpServer,
  type MockSmtpServerOptions,
  type ReceivedEnvelope,
  type ReceivedMessage,
  type ServerCertificate,
} from "./mock_server.ts";
export {
  type MemoryPeer,
  MemoryTransport,
  type MemoryTransportOptions,
  SIMULATED_TLS,
} from "./memory_transport.ts";
export { TranscriptRecorder, type TranscriptRecorderOptions } from "./recorder.ts";
export { decodeEncodedWords, type MessageHeader, MessageHeaders, parseHeaders } from "./headers.ts";
