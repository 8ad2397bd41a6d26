/**
 * # postie: an SMTP client for Deno and Node.js
 *
 * - Implicit TLS (SMTPS, port 465) and required STARTTLS (port 587); certificates and host
 *   names are always verified. Plain SMTP only when asked for by name.
 * - PIPELINING, CHUNKING (BDAT), SIZE, SMTPUTF8; per-recipient results.
 * - Typed errors carrying the SMTP code, the enhanced status code, the command and the text.
 * - Every wait has a timeout and honours an `AbortSignal`; every socket is closed on every path.
 * - {@linkcode SmtpPool}: a bounded set of reused, pipelined connections with a queue, a rate
 *   limit and retries of transient failures.
 * - DKIM signing with RSA and Ed25519 (option `dkim`; raw messages: `@postie/smtp/dkim`).
 *
 * @example Send a message
 * ```ts
 * import { sendMail } from "@postie/smtp";
 * import { MockSmtpServer } from "@postie/smtp/testing";
 * import assert from "node:assert/strict";
 *
 * // A mail server in memory for this example (see @postie/smtp/testing).
 * await using server = new MockSmtpServer({ users: { me: "secret" } });
 *
 * const result = await sendMail(
 *   {
 *     hostname: "smtp.example.com",
 *     port: 587,
 *     auth: { username: "me", password: "secret" },
 *     transport: server.transport, // leave out to send for real
 *   },
 *   {
 *     raw: "From: me@example.com\r\nTo: you@example.com\r\nSubject: Hi\r\n\r\nHello\r\n",
 *     envelope: { from: "me@example.com", to: ["you@example.com"] },
 *   },
 * );
 * assert.equal(result.reply.code, 250);
 * assert.equal(server.messages[0]!.headers.get("Subject"), "Hi");
 * ```
 *
 * @module
 */

export { Capabilities, type ServerLimits, SmtpClient } from "./src/client.ts";
export { sendMail } from "./src/send_mail.ts";
export { SmtpPool } from "./src/pool.ts";
export type { PoolMessage, PoolOptions, PoolStats, RateLimit } from "./src/pool.ts";
export {
  type AddressInput,
  type Attachment,
  type CalendarEvent,
  type ComposedMessage,
  composeMessage,
  type ComposeOptions,
  type CustomHeaders,
  type Message,
  type MessageEnvelope,
} from "./src/mime/mod.ts";
export {
  formatReply,
  PoolQueueFullError,
  SmtpAuthError,
  SmtpConnectionError,
  SmtpError,
  type SmtpErrorOptions,
  type SmtpPhase,
  SmtpProtocolError,
  SmtpRecipientsError,
  SmtpReplyError,
  SmtpTimeoutError,
  SmtpTlsError,
  SmtpUnsupportedError,
} from "./src/errors.ts";
export type {
  EnhancedStatus,
  Envelope,
  RawMessage,
  RecipientResult,
  SendResult,
  SmtpReply,
} from "./src/types.ts";
export type {
  ClientOptions,
  DsnOptions,
  ReplyLimits,
  SendOptions,
  Timeouts,
  TlsMode,
  TlsOptions,
  TranscriptEvent,
} from "./src/options.ts";
export {
  type AccessTokenProvider,
  type AuthContext,
  type AuthConversation,
  authenticate,
  type AuthOptions,
  cramMd5,
  DEFAULT_PASSWORD_MECHANISMS,
  digestMd5,
  type DigestMd5Options,
  login,
  oauthBearer,
  type PasswordAuth,
  type PasswordMechanism,
  plain,
  type SaslAuth,
  type SaslMechanism,
  type ScramOptions,
  scramSha256,
  type TokenAuth,
  xoauth2,
} from "./src/auth/mod.ts";
export { openFile } from "./src/transport/default.ts";
export type {
  Connection,
  ConnectOptions,
  FileOpener,
  OpenedFile,
  TlsConnectOptions,
  TlsInfo,
  Transport,
} from "./src/transport/types.ts";
export type {
  DkimAlgorithm,
  DkimCanonicalization,
  DkimOptions,
  DkimSigner,
  WebCryptoKey,
} from "./src/dkim/types.ts";
