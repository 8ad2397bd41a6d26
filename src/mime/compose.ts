/**
 * `composeMessage()`: a {@linkcode Message} described as data becomes an RFC 5322 / MIME byte
 * stream and the SMTP envelope to send it with. The fields are checked by `_check.ts` first
 * (`checkMessage()`, also used before connecting); this module builds the part tree from what
 * it returns: text bodies in their transfer encoding (8-bit only when the server takes it), and
 * the `multipart/*` nesting of alternatives, inline images and attachments.
 *
 * @module
 */

import type { Envelope } from "../types.ts";
import type { FileOpener } from "../file_opener.ts";
import { asciiDomain } from "./address.ts";
import { attachmentPart, openAll } from "./_attachments.ts";
import { type CheckedMessage, checkMessage } from "./_check.ts";
import { formatDate, formatWithParameters, type Parameter } from "./_headers.ts";
import {
  type LeafPart,
  messageBody,
  messageSize,
  type Part,
  randomBoundary,
  streamMessage,
} from "./_multipart.ts";
import { encodeText } from "./_text.ts";
import type { Message } from "./message.ts";

export type {
  Attachment,
  CalendarEvent,
  CustomHeaders,
  Message,
  MessageEnvelope,
} from "./message.ts";

/** Options of {@linkcode composeMessage}. */
export interface ComposeOptions {
  /**
   * Send UTF-8 text with short lines as `8bit` instead of quoted-printable. Only set it when
   * the server offers 8BITMIME.
   * @default {false}
   */
  readonly allow8bit?: boolean;
  /**
   * Opens file attachments (`path`, `content: { path }`): the runtime's own is `openFile` of
   * `@postie/smtp`. Composing a message with a file attachment without one fails with a
   * `TypeError`.
   * @default {undefined (no file attachments)}
   */
  readonly openFile?: FileOpener;
}

/** A composed message, ready to send. */
export interface ComposedMessage {
  /**
   * The envelope: the message's `envelope` field when it has one; otherwise `from` is the
   * sender's (or author's) address, `to` all of To, Cc and Bcc without duplicates. Addresses are as given (Unicode kept); convert them with
   * `envelopeAddress()` for the server.
   */
  readonly envelope: Envelope;
  /** The Message-ID, with angle brackets. */
  readonly messageId: string;
  /**
   * The complete message with CRLF line ends, not dot-stuffed. Read it to the end or cancel it:
   * it holds the attachment files open until then.
   */
  readonly body: ReadableStream<Uint8Array>;
  /**
   * The exact length of `body` in bytes, when known: always, unless an attachment is a stream
   * of unknown length (a caller's `ReadableStream`, or a file opener that gives no size).
   */
  readonly size: number | undefined;
  /**
   * True when a part is sent as `8bit`, or is a `raw` part with 8-bit bytes (the server must
   * offer 8BITMIME).
   */
  readonly eightBit: boolean;
  /** True when an address (in a header or the envelope) has a non-ASCII local part. */
  readonly smtpUtf8: boolean;
}

/**
 * The header fields of text parts without extra parameters, by type and transfer encoding:
 * a few fixed strings (three types, three encodings), formatted once each.
 */
const textPartHeaders = new Map<string, string>();

function textPartFields(type: string, encoding: string, extra: readonly Parameter[]): string {
  const key = extra.length === 0 ? `${type} ${encoding}` : undefined;
  const known = key === undefined ? undefined : textPartHeaders.get(key);
  if (known !== undefined) return known;
  const headers = formatWithParameters("Content-Type", type, [
    ...extra,
    { key: "charset", value: "UTF-8" },
  ]) + `Content-Transfer-Encoding: ${encoding}\r\n`;
  if (key !== undefined) textPartHeaders.set(key, headers);
  return headers;
}

/** A text part (text/plain, text/html, text/calendar) with its transfer encoding. */
function textPart(
  type: string,
  text: string,
  allow8bit: boolean,
  extra: readonly Parameter[] = [],
): { part: LeafPart; eightBit: boolean } {
  const { encoding, bytes } = encodeText(text, allow8bit);
  const headers = textPartFields(type, encoding, extra);
  return { part: { headers, body: { kind: "encoded", bytes } }, eightBit: encoding === "8bit" };
}

function multipart(
  subtype: string,
  children: Part[],
  boundary: string,
  extra: readonly Parameter[] = [],
): Part {
  const headers = formatWithParameters(`Content-Type`, `multipart/${subtype}`, [
    ...extra,
    { key: "boundary", value: boundary },
  ]);
  return { headers, boundary, children };
}

/**
 * Turns a message into its envelope and an RFC 5322 byte stream. Every input is checked first:
 * invalid addresses, line breaks in headers (header injection) and unreadable attachment files
 * reject before anything could be sent. File attachments are opened before this resolves,
 * and read only while `body` is read. A message without recipients is composed (the send
 * functions refuse it).
 *
 * @param message The message.
 * @param options 8-bit bodies and the file opener.
 * @returns The envelope, the Message-ID and the byte stream.
 * @throws {TypeError} When an input is invalid (CR, LF, NUL or a lone surrogate in a header
 *   value, display name or file name; the error names the field) or an attachment file cannot
 *   be opened.
 * @throws {RangeError} When a date is invalid, a message id is too long for its header line, or
 *   a line cannot be kept under 998 octets (a header name or content type that long).
 *
 * @example Compose a message
 * ```ts
 * import { composeMessage } from "@postie/smtp/mime";
 * import assert from "node:assert/strict";
 *
 * const composed = await composeMessage({
 *   from: "Ann <ann@example.com>",
 *   to: "bob@example.com",
 *   bcc: "carol@example.com",
 *   subject: "Hello",
 *   text: "Hi Bob!",
 * });
 * assert.deepEqual(composed.envelope, {
 *   from: "ann@example.com",
 *   to: ["bob@example.com", "carol@example.com"],
 * });
 * const text = await new Response(composed.body).text();
 * assert.match(text, /^Subject: Hello\r$/m);
 * assert.doesNotMatch(text, /carol/);
 * ```
 */
export async function composeMessage(
  message: Message,
  options: ComposeOptions = {},
): Promise<ComposedMessage> {
  const { root, ...composed } = await composeParts(checkMessage(message), options);
  return { ...composed, body: streamMessage(root), size: messageSize(root) };
}

/** A message held in memory up to this size is sent from one array instead of a stream. */
const IN_MEMORY_LIMIT = 256 * 1024;

/** What a composition for sending fixes: the same on every composition of one message. */
export interface Fixed {
  /** The Date header's date. */
  readonly date: Date;
  /** The Message-ID, when one was drawn already. */
  readonly messageId?: string | undefined;
  /** Gives the multipart boundaries (see `recordedBoundaries()`). */
  readonly nextBoundary: () => string;
}

/**
 * {@linkcode composeMessage} for the client, from a message checked already: a message whose
 * content is all in memory and small comes as one array (no stream machinery per message, and
 * its size is known for SIZE); anything else is streamed. `fixed` gives the Date, the
 * Message-ID and the boundaries, so that every composition of one message is the same.
 */
export async function composeForSending(
  message: CheckedMessage,
  options: ComposeOptions,
  fixed: Fixed,
): Promise<Omit<ComposedMessage, "body"> & { body: Uint8Array | ReadableStream<Uint8Array> }> {
  const { root, ...composed } = await composeParts(message, options, fixed);
  return { ...composed, ...messageBody(root, IN_MEMORY_LIMIT) };
}

async function composeParts(
  message: CheckedMessage,
  options: ComposeOptions,
  fixed?: Fixed,
): Promise<Omit<ComposedMessage, "body" | "size"> & { root: Part }> {
  const allow8bit = options.allow8bit ?? false;
  const nextBoundary = fixed?.nextBoundary ?? randomBoundary;
  const messageId = fixed?.messageId ?? message.messageId ??
    `<${crypto.randomUUID()}@${asciiDomain(message.from.address)}>`;
  const date = fixed?.date ?? message.date ?? new Date();
  const head = message.head + `Date: ${formatDate(date)}\r\nMessage-ID: ${messageId}\r\n` +
    message.tail;

  let eightBit = message.attachments.some((a) => a.eightBit);
  const alternatives: Part[] = [];
  if (message.text !== undefined) {
    const text = textPart("text/plain", message.text, allow8bit);
    eightBit ||= text.eightBit;
    alternatives.push(text.part);
  }
  const calendar = message.calendar &&
    textPart("text/calendar", message.calendar.content, allow8bit, [{
      key: "method",
      value: message.calendar.method,
    }]);

  // Everything is checked: only now open the files.
  const prepared = message.attachments;
  const contents = await openAll(prepared, options.openFile);

  const related: Part[] = [];
  const mixed: Part[] = [];
  prepared.forEach((attachment, i) => {
    (attachment.related ? related : mixed).push(attachmentPart(attachment, contents[i]!));
  });
  if (message.html !== undefined) {
    const part = textPart("text/html", message.html, allow8bit);
    eightBit ||= part.eightBit;
    alternatives.push(
      related.length > 0
        ? multipart("related", [part.part, ...related], nextBoundary(), [
          { key: "type", value: "text/html" },
        ])
        : part.part,
    );
  }
  if (calendar) {
    eightBit ||= calendar.eightBit;
    alternatives.push(calendar.part);
  }
  let content: Part | undefined = alternatives.length > 1
    ? multipart("alternative", alternatives, nextBoundary())
    : alternatives[0];
  if (content === undefined && mixed.length === 0) content = textPart("text/plain", "", false).part;
  const root = mixed.length > 0
    ? multipart("mixed", content ? [content, ...mixed] : mixed, nextBoundary())
    : content!;

  return {
    envelope: message.envelope,
    messageId,
    root: { ...root, headers: head + root.headers },
    eightBit,
    smtpUtf8: message.smtpUtf8,
  };
}
