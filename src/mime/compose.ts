/**
 * `composeMessage()`: a {@linkcode Message} described as data becomes an RFC 5322 / MIME byte
 * stream and the SMTP envelope to send it with.
 *
 * @module
 */

import type { Envelope } from "../types.ts";
import type { FileOpener } from "../transport/types.ts";
import { openFile as defaultOpenFile } from "../transport/default.ts";
import {
  type AddressInput,
  asciiDomain,
  type Mailbox,
  needsSmtpUtf8,
  parseAddressList,
} from "./address.ts";
import { decodeBase64 } from "./base64.ts";
import { contentTypeFor } from "./_content_types.ts";
import {
  checkHeaderName,
  checkHeaderValue,
  checkText,
  formatAddresses,
  formatDate,
  formatIds,
  formatUnstructured,
  formatWithParameters,
  normalizeMessageId,
  type Parameter,
} from "./_headers.ts";
import {
  type LeafPart,
  messageBody,
  messageSize,
  type Part,
  type PartBody,
  randomBoundary,
  streamMessage,
} from "./_multipart.ts";
import { encodeText } from "./_text.ts";

/** A file to attach, or an image to embed. */
export interface Attachment {
  /**
   * The file name shown to the recipient, sent exactly as given: a name that is not short
   * printable ASCII goes as RFC 2231 `filename*` with an RFC 2047 `name=` fallback.
   * @default {the last part of `content.path`; none otherwise}
   */
  readonly filename?: string;
  /**
   * The content: bytes, a string (see `encoding`), a stream (read only while the message is
   * sent), or a file path (opened by {@linkcode composeMessage} before it returns).
   */
  readonly content:
    | Uint8Array
    | string
    | ReadableStream<Uint8Array>
    | { readonly path: string };
  /**
   * The MIME type, e.g. `application/pdf`; parameters may follow after `;`.
   * @default {guessed from the file name's extension, else `application/octet-stream`}
   */
  readonly contentType?: string;
  /**
   * A Content-ID for embedding, referenced from the HTML as `cid:<contentId>`. Attachments
   * with a Content-ID go with the HTML into `multipart/related`.
   */
  readonly contentId?: string;
  /**
   * How the recipient's program should show it.
   * @default {"inline" when `contentId` is set, else "attachment"}
   */
  readonly contentDisposition?: "attachment" | "inline";
  /**
   * How a string `content` is turned into bytes: UTF-8 text, or base64 / hex encoded binary.
   * @default {"utf-8"}
   */
  readonly encoding?: "utf-8" | "base64" | "hex";
}

/** A calendar invitation, sent as a `text/calendar` alternative and as an `.ics` attachment. */
export interface CalendarEvent {
  /** The iCalendar text (`BEGIN:VCALENDAR` ...). */
  readonly content: string;
  /**
   * The iTIP method; must match the `METHOD` inside the content.
   * @default {"REQUEST"}
   */
  readonly method?: string;
  /**
   * The name of the attached copy.
   * @default {"invite.ics"}
   */
  readonly filename?: string;
}

/** Custom header fields, as a record or as a list (which allows repeated names). */
export type CustomHeaders =
  | Readonly<Record<string, string>>
  | readonly { readonly key: string; readonly value: string }[];

/** A message described as data. Field names follow nodemailer's. */
export interface Message {
  /**
   * The author (the `From` header); also the envelope sender unless `sender` is set. The `name`
   * of a `{ name, address }` is sent exactly as given, surrounding whitespace included.
   */
  readonly from: AddressInput;
  /** The `Sender` header; when set it is also the envelope sender (MAIL FROM). */
  readonly sender?: AddressInput;
  /** Recipients shown in `To`. */
  readonly to?: AddressInput | readonly AddressInput[];
  /** Recipients shown in `Cc`. */
  readonly cc?: AddressInput | readonly AddressInput[];
  /** Hidden recipients: in the envelope only, never in a header. */
  readonly bcc?: AddressInput | readonly AddressInput[];
  /** Where replies should go (`Reply-To`). */
  readonly replyTo?: AddressInput | readonly AddressInput[];
  /**
   * The subject, sent exactly as given (any Unicode text without CR, LF or NUL): what is not
   * printable ASCII, or cannot fold, goes as RFC 2047 encoded words.
   */
  readonly subject?: string;
  /** The plain-text body. */
  readonly text?: string;
  /** The HTML body. */
  readonly html?: string;
  /** Files to attach and images to embed. */
  readonly attachments?: readonly Attachment[];
  /** A calendar invitation. */
  readonly icalEvent?: CalendarEvent;
  /**
   * Sets `X-Priority` and `Importance` for `"high"` and `"low"`.
   * @default {"normal"}
   */
  readonly priority?: "high" | "normal" | "low";
  /**
   * Extra header fields. They may not replace fields the builder writes. Values are sent exactly
   * as given, as unstructured text: encoded words where needed, long words (URLs) as they are
   * while a line can hold them.
   */
  readonly headers?: CustomHeaders;
  /**
   * The `Date` header.
   * @default {now}
   */
  readonly date?: Date;
  /**
   * The `Message-ID`, with or without angle brackets.
   * @default {a random UUID at the sender's domain}
   */
  readonly messageId?: string;
  /** The `In-Reply-To` message id. */
  readonly inReplyTo?: string;
  /** The `References` message ids (a list, or one string of space-separated ids). */
  readonly references?: string | readonly string[];
  /** Asks for a read receipt to these addresses (`Disposition-Notification-To`). */
  readonly readReceiptTo?: AddressInput | readonly AddressInput[];
  /**
   * The `X-Mailer` header; `false` leaves it out.
   * @default {"postie"}
   */
  readonly xMailer?: string | false;
}

/** Options of {@linkcode composeMessage}. */
export interface ComposeOptions {
  /**
   * Send UTF-8 text with short lines as `8bit` instead of quoted-printable. Only set it when
   * the server offers 8BITMIME.
   * @default {false}
   */
  readonly allow8bit?: boolean;
  /**
   * Opens `{ path }` attachments.
   * @default {the runtime's file opener (`Deno.open` on Deno)}
   */
  readonly openFile?: FileOpener;
}

/** A composed message, ready to send. */
export interface ComposedMessage {
  /**
   * The envelope: `from` is the sender's (or author's) address, `to` all of To, Cc and Bcc
   * without duplicates. Addresses are as given (Unicode kept); convert them with
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
  /** True when a part is sent as `8bit` (the server must offer 8BITMIME). */
  readonly eightBit: boolean;
  /** True when an address (in a header or the envelope) has a non-ASCII local part. */
  readonly smtpUtf8: boolean;
}

const encoder = new TextEncoder();

/** Header fields that describe the MIME structure, which only the builder writes. */
const STRUCTURAL = new Set([
  "content-type",
  "content-transfer-encoding",
  "mime-version",
  "content-disposition",
  "content-id",
]);

/** Header fields that come from message fields, with the field to use instead. */
const FROM_FIELDS: ReadonlyMap<string, string> = new Map([
  ["from", "from"],
  ["sender", "sender"],
  ["to", "to"],
  ["cc", "cc"],
  ["bcc", "bcc"],
  ["reply-to", "replyTo"],
  ["subject", "subject"],
  ["date", "date"],
  ["message-id", "messageId"],
  ["in-reply-to", "inReplyTo"],
  ["references", "references"],
  ["x-priority", "priority"],
  ["importance", "priority"],
  ["x-mailer", "xMailer"],
  ["disposition-notification-to", "readReceiptTo"],
]);

function fail(reason: string): TypeError {
  return new TypeError(`Cannot compose message: ${reason}`);
}

function addresses(
  field: string,
  input: AddressInput | readonly AddressInput[] | undefined,
): Mailbox[] {
  if (input === undefined) return [];
  const items: readonly AddressInput[] = Array.isArray(input) ? input : [input as AddressInput];
  const out: Mailbox[] = [];
  for (const item of items) {
    let list: Mailbox[];
    try {
      list = parseAddressList(item);
    } catch (error) {
      if (error instanceof TypeError) {
        throw new TypeError(`Cannot compose message: ${field}: ${error.message}`, {
          cause: error,
        });
      }
      throw error;
    }
    // A name given as data is sent exactly as given (the parser trims it).
    if (typeof item === "object" && typeof item.name === "string" && list.length === 1) {
      out.push({ name: item.name, address: list[0]!.address });
    } else {
      for (const mailbox of list) out.push(mailbox);
    }
  }
  return out;
}

function single(field: string, input: AddressInput): Mailbox {
  const list = addresses(field, input);
  if (list.length !== 1) throw fail(`${field} must be exactly one address, got ${list.length}`);
  return list[0]!;
}

/** The custom headers as name/value pairs, checked. */
function customHeaders(headers: CustomHeaders | undefined): string {
  if (headers === undefined) return "";
  const pairs: [string, string][] = Array.isArray(headers)
    ? headers.map((h: { key: string; value: string }) => [h.key, h.value])
    : Object.entries(headers as Record<string, string>);
  let out = "";
  for (const [name, value] of pairs) {
    if (typeof name !== "string") throw fail("a custom header name is not a string");
    checkHeaderName(name);
    const lower = name.toLowerCase();
    if (STRUCTURAL.has(lower)) {
      throw fail(`custom header "${name}" may not replace the header the builder writes`);
    }
    const field = FROM_FIELDS.get(lower);
    if (field !== undefined) {
      throw fail(`custom header "${name}" duplicates a message field: use "${field}" instead`);
    }
    out += formatUnstructured(name, value, true);
  }
  return out;
}

/** Splits `references` into message ids. */
function referenceIds(references: string | readonly string[]): string[] {
  const items = typeof references === "string" ? [references] : references;
  const ids: string[] = [];
  for (const item of items) {
    checkHeaderValue("References", item);
    for (const id of item.split(/[ \t]+/)) {
      if (id !== "") ids.push(normalizeMessageId("References", id));
    }
  }
  return ids;
}

/** A text part (text/plain, text/html, text/calendar) with its transfer encoding. */
function textPart(
  type: string,
  text: string,
  allow8bit: boolean,
  extra: readonly Parameter[] = [],
): { part: LeafPart; eightBit: boolean } {
  const { encoding, bytes } = encodeText(text, allow8bit);
  const headers = formatWithParameters("Content-Type", type, [
    ...extra,
    { key: "charset", value: "UTF-8" },
  ]) + `Content-Transfer-Encoding: ${encoding}\r\n`;
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

/** An attachment with its headers formatted and its content not yet opened. */
interface PreparedAttachment {
  readonly headers: string;
  readonly content: Uint8Array | ReadableStream<Uint8Array> | { readonly path: string };
  readonly related: boolean;
}

const MEDIA_TYPE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function basename(path: string): string {
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1] ?? path;
}

function stringContent(content: string, encoding: string, index: number): Uint8Array {
  if (encoding === "utf-8") return encoder.encode(content);
  if (encoding === "base64") {
    try {
      return decodeBase64(content);
    } catch (error) {
      throw new TypeError(`Cannot compose message: attachment ${index} is not valid base64`, {
        cause: error,
      });
    }
  }
  if (encoding === "hex") {
    const hex = content.replace(/\s+/g, "");
    if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
      throw fail(`attachment ${index} is not valid hex`);
    }
    const bytes = new Uint8Array(hex.length / 2);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
    return bytes;
  }
  throw fail(`attachment ${index} has an unknown encoding ${JSON.stringify(encoding)}`);
}

function prepareAttachment(
  attachment: Attachment,
  index: number,
  hasHtml: boolean,
  label = `attachment ${index}`,
): PreparedAttachment {
  if (attachment === null || typeof attachment !== "object") {
    throw fail(`attachment ${index} is not an object`);
  }
  const raw = attachment.content;
  let content: PreparedAttachment["content"];
  let filename = attachment.filename;
  if (typeof raw === "string") {
    content = stringContent(raw, attachment.encoding ?? "utf-8", index);
  } else if (raw instanceof Uint8Array) {
    content = raw;
  } else if (raw instanceof ReadableStream) {
    if (raw.locked) throw fail(`attachment ${index} stream is locked (already being read)`);
    content = raw;
  } else if (raw !== null && typeof raw === "object" && typeof raw.path === "string") {
    if (raw.path === "") throw fail(`attachment ${index} has an empty path`);
    content = { path: raw.path };
    filename ??= basename(raw.path);
  } else {
    throw fail(
      `attachment ${index} content must be a Uint8Array, a string, a ReadableStream or { path }`,
    );
  }
  if (filename !== undefined) checkText(`${label} filename`, filename);
  const contentType = attachment.contentType ?? contentTypeFor(filename ?? "");
  checkHeaderValue("Content-Type", contentType);
  const mediaType = contentType.split(";", 1)[0]!.trim();
  if (!/^[\x20-\x7e]*$/.test(contentType)) {
    throw fail(`attachment ${index} content type ${JSON.stringify(contentType)} is not ASCII`);
  }
  if (!MEDIA_TYPE.test(mediaType)) {
    throw fail(
      `attachment ${index} content type ${JSON.stringify(contentType)} is not type/subtype`,
    );
  }
  let cid: string | undefined;
  if (attachment.contentId !== undefined) {
    checkHeaderValue("Content-ID", attachment.contentId);
    cid = normalizeMessageId("Content-ID", attachment.contentId);
  }
  const disposition = attachment.contentDisposition ?? (cid ? "inline" : "attachment");
  if (disposition !== "inline" && disposition !== "attachment") {
    throw fail(`attachment ${index} content disposition must be "inline" or "attachment"`);
  }
  const name: Parameter[] = filename === undefined
    ? []
    : [{ key: "name", value: filename, style: "rfc2047" }];
  const fileParam: Parameter[] = filename === undefined
    ? []
    : [{ key: "filename", value: filename }];
  let headers = formatWithParameters("Content-Type", contentType.trim(), name) +
    "Content-Transfer-Encoding: base64\r\n" +
    formatWithParameters("Content-Disposition", disposition, fileParam);
  if (cid) headers += `Content-ID: ${cid}\r\n`;
  return { headers, content, related: cid !== undefined && hasHtml };
}

/** An attachment's content, ready to encode: bytes, or a stream and its size when known. */
type OpenedContent = Uint8Array | {
  readonly stream: ReadableStream<Uint8Array>;
  readonly size?: number;
  /** False for the caller's own stream, which the library never cancels. */
  readonly owned: boolean;
};

/** Opens every `{ path }` attachment; on any failure closes what was opened and rejects. */
async function openAll(
  prepared: readonly PreparedAttachment[],
  openFile: FileOpener,
): Promise<OpenedContent[]> {
  const results = await Promise.allSettled(prepared.map(async (attachment) => {
    const content = attachment.content;
    if (content instanceof Uint8Array) return content;
    if (content instanceof ReadableStream) return { stream: content, owned: false };
    try {
      const opened = await openFile(content.path);
      return opened instanceof ReadableStream
        ? { stream: opened, owned: true }
        : { ...opened, owned: true };
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new TypeError(`Cannot read attachment ${JSON.stringify(content.path)}: ${reason}`, {
        cause: error,
      });
    }
  }));
  const failure = results.find((r) => r.status === "rejected");
  if (failure === undefined) {
    return results.map((r) => (r as PromiseFulfilledResult<OpenedContent>).value);
  }
  await Promise.allSettled(results.map((r, i) => {
    const original = prepared[i]!.content;
    if (r.status !== "fulfilled" || r.value instanceof Uint8Array) return undefined;
    if (original instanceof ReadableStream) return undefined; // the caller's, not ours
    return r.value.stream.cancel();
  }));
  throw (failure as PromiseRejectedResult).reason;
}

function attachmentPart(prepared: PreparedAttachment, content: OpenedContent): Part {
  const body: PartBody = content instanceof Uint8Array
    ? { kind: "base64", bytes: content }
    : { kind: "base64-stream", stream: content.stream, size: content.size, owned: content.owned };
  return { headers: prepared.headers, body };
}

/** The key under which two addresses count as the same recipient. */
function recipientKey(address: string): string {
  const at = address.lastIndexOf("@");
  return `${address.slice(0, at)}@${asciiDomain(address)}`;
}

/**
 * Turns a message into its envelope and an RFC 5322 byte stream. Every input is checked first:
 * invalid addresses, line breaks in headers (header injection) and unreadable attachment files
 * reject before anything could be sent. `{ path }` attachments are opened before this
 * resolves, and read only while `body` is read.
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
  const { root, ...composed } = await composeParts(message, options);
  return { ...composed, body: streamMessage(root), size: messageSize(root) };
}

/** A message held in memory up to this size is sent from one array instead of a stream. */
const IN_MEMORY_LIMIT = 256 * 1024;

/**
 * {@linkcode composeMessage} for the client: a message whose content is all in memory and
 * small comes as one array (no stream machinery per message, and its size is known for SIZE);
 * anything else is streamed. `nextBoundary` gives the multipart boundaries (the same ones on
 * every composition of one message: see `recordedBoundaries()`).
 */
export async function composeForSending(
  message: Message,
  options: ComposeOptions,
  nextBoundary: () => string = randomBoundary,
): Promise<Omit<ComposedMessage, "body"> & { body: Uint8Array | ReadableStream<Uint8Array> }> {
  const { root, ...composed } = await composeParts(message, options, nextBoundary);
  return { ...composed, ...messageBody(root, IN_MEMORY_LIMIT) };
}

async function composeParts(
  message: Message,
  options: ComposeOptions,
  nextBoundary: () => string = randomBoundary,
): Promise<Omit<ComposedMessage, "body" | "size"> & { root: Part }> {
  if (message === null || typeof message !== "object") throw fail("message is not an object");
  if (message.from === undefined) throw fail("from is required");
  const allow8bit = options.allow8bit ?? false;

  const from = single("from", message.from);
  const sender = message.sender === undefined ? undefined : single("sender", message.sender);
  const to = addresses("to", message.to);
  const cc = addresses("cc", message.cc);
  const bcc = addresses("bcc", message.bcc);
  const replyTo = addresses("replyTo", message.replyTo);
  const readReceiptTo = addresses("readReceiptTo", message.readReceiptTo);

  let head = formatAddresses("From", [from]);
  if (sender) head += formatAddresses("Sender", [sender]);
  if (to.length > 0) head += formatAddresses("To", to);
  if (cc.length > 0) head += formatAddresses("Cc", cc);
  if (replyTo.length > 0) head += formatAddresses("Reply-To", replyTo);
  if (message.subject !== undefined) head += formatUnstructured("Subject", message.subject);
  head += `Date: ${formatDate(message.date ?? new Date())}\r\n`;
  const messageId = message.messageId === undefined
    ? `<${crypto.randomUUID()}@${asciiDomain(from.address)}>`
    : normalizeMessageId("Message-ID", message.messageId);
  head += `Message-ID: ${messageId}\r\n`;
  if (message.inReplyTo !== undefined) {
    head += formatIds("In-Reply-To", [normalizeMessageId("In-Reply-To", message.inReplyTo)]);
  }
  if (message.references !== undefined) {
    const ids = referenceIds(message.references);
    if (ids.length > 0) head += formatIds("References", ids);
  }
  const priority = message.priority ?? "normal";
  if (priority === "high") head += "X-Priority: 1 (Highest)\r\nImportance: High\r\n";
  else if (priority === "low") head += "X-Priority: 5 (Lowest)\r\nImportance: Low\r\n";
  else if (priority !== "normal") throw fail(`priority must be "high", "normal" or "low"`);
  if (readReceiptTo.length > 0) {
    head += formatAddresses("Disposition-Notification-To", readReceiptTo);
  }
  const xMailer = message.xMailer ?? "postie";
  if (xMailer !== false) head += formatUnstructured("X-Mailer", xMailer);
  head += customHeaders(message.headers);
  head += "MIME-Version: 1.0\r\n";

  for (const field of ["subject", "text", "html"] as const) {
    if (message[field] !== undefined && typeof message[field] !== "string") {
      throw fail(`${field} is not a string`);
    }
  }
  const html = message.html;
  let eightBit = false;
  const alternatives: Part[] = [];
  if (message.text !== undefined) {
    const text = textPart("text/plain", message.text, allow8bit);
    eightBit ||= text.eightBit;
    alternatives.push(text.part);
  }

  const prepared = (message.attachments ?? []).map((a, i) =>
    prepareAttachment(a, i, html !== undefined)
  );
  let calendar: { part: LeafPart; eightBit: boolean } | undefined;
  if (message.icalEvent !== undefined) {
    const event = message.icalEvent;
    if (event === null || typeof event !== "object" || typeof event.content !== "string") {
      throw fail("icalEvent.content must be a string");
    }
    const method = (event.method ?? "REQUEST").toUpperCase();
    if (!/^[A-Z-]+$/.test(method)) {
      throw fail(`icalEvent.method ${JSON.stringify(method)} is invalid`);
    }
    calendar = textPart("text/calendar", event.content, allow8bit, [{
      key: "method",
      value: method,
    }]);
    prepared.push(prepareAttachment(
      {
        filename: event.filename ?? "invite.ics",
        content: event.content,
        contentType: "application/ics",
      },
      prepared.length,
      false,
      "icalEvent",
    ));
  }

  // Everything is checked: only now open the files.
  const contents = await openAll(prepared, options.openFile ?? defaultOpenFile);

  const related: Part[] = [];
  const mixed: Part[] = [];
  prepared.forEach((attachment, i) => {
    (attachment.related ? related : mixed).push(attachmentPart(attachment, contents[i]!));
  });
  if (html !== undefined) {
    const part = textPart("text/html", html, allow8bit);
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

  const seen = new Set<string>();
  const recipients: string[] = [];
  for (const mailbox of [...to, ...cc, ...bcc]) {
    const key = recipientKey(mailbox.address);
    if (seen.has(key)) continue;
    seen.add(key);
    recipients.push(mailbox.address);
  }
  const everyone = [
    from,
    ...(sender ? [sender] : []),
    ...to,
    ...cc,
    ...bcc,
    ...replyTo,
    ...readReceiptTo,
  ];

  return {
    envelope: { from: (sender ?? from).address, to: recipients },
    messageId,
    root: { ...root, headers: head + root.headers },
    eightBit,
    smtpUtf8: everyone.some((mailbox) => needsSmtpUtf8(mailbox.address)),
  };
}
