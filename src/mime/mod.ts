/**
 * Compose RFC 5322 / MIME messages without sending them: `@postie/smtp/mime`.
 *
 * - {@linkcode composeMessage} turns a {@linkcode Message} (nodemailer's field names) into the
 *   SMTP envelope and a streamed byte body: text, HTML, `multipart/alternative`,
 *   `multipart/related` inline images, attachments from bytes, strings, streams or files, and
 *   calendar invitations.
 * - Headers are folded at 78 columns; non-ASCII text becomes RFC 2047 encoded words and
 *   non-ASCII file names RFC 2231 parameters. Every header value arrives exactly as given;
 *   CR, LF, NUL or a lone surrogate in any header input is an error.
 * - Address helpers ({@linkcode parseAddressList}, {@linkcode formatMailbox},
 *   {@linkcode envelopeAddress}, {@linkcode needsSmtpUtf8}) and the transfer encoders
 *   ({@linkcode encodeBase64}, {@linkcode encodeQuotedPrintable} and their streams).
 *
 * @example Compose a message with an attachment
 * ```ts
 * import { composeMessage } from "@postie/smtp/mime";
 * import assert from "node:assert/strict";
 *
 * const composed = await composeMessage({
 *   from: { name: "Zoë", address: "zoe@example.com" },
 *   to: ["bob@example.com"],
 *   subject: "Rapport trimestriel",
 *   text: "Le rapport est en pièce jointe.",
 *   attachments: [{ filename: "rapport.txt", content: "chiffres" }],
 * });
 * const text = await new Response(composed.body).text();
 * assert.match(text, /^Content-Type: multipart\/mixed; boundary=postie_/m);
 * assert.match(text, /^From: =\?UTF-8\?Q\?Zo=C3=AB\?= <zoe@example\.com>\r$/m);
 * assert.equal(composed.envelope.from, "zoe@example.com");
 * ```
 *
 * @module
 */

export {
  type Attachment,
  type CalendarEvent,
  type ComposedMessage,
  composeMessage,
  type ComposeOptions,
  type CustomHeaders,
  type Message,
  type MessageEnvelope,
} from "./compose.ts";
export {
  type AddressInput,
  envelopeAddress,
  formatMailbox,
  type Mailbox,
  needsSmtpUtf8,
  parseAddressList,
  parseMailbox,
} from "./address.ts";
export { Base64EncoderStream, encodeBase64, type EncodeBase64Options } from "./base64.ts";
export { encodeQuotedPrintable, QuotedPrintableEncoderStream } from "./quoted_printable.ts";
export type { Envelope } from "../types.ts";
export type { FileOpener, OpenedFile } from "../file_opener.ts";
