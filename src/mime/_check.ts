/**
 * Message checks: {@linkcode checkMessage} looks at every field of a {@linkcode Message} and
 * formats its header fields, without composing the body or opening a file, so that a message
 * that cannot be sent fails before any connection is made. What it returns is composed (once per
 * transaction, with the server's 8BITMIME) by `compose.ts`.
 *
 * @module
 */

import type { Envelope } from "../types.ts";
import { checkFields } from "../_fields.ts";
import { type Mailbox, needsSmtpUtf8 } from "./address.ts";
import { addresses, messageEnvelope, single, uniqueAddresses } from "./_address_lists.ts";
import { prepareAttachment, type PreparedAttachment } from "./_attachments.ts";
import { formatCustomHeaders } from "./_custom_headers.ts";
import {
  checkHeaderValue,
  formatAddresses,
  formatDate,
  formatIds,
  formatUnstructured,
  normalizeMessageId,
} from "./_headers.ts";
import type { CalendarEvent, Message } from "./message.ts";

/** A message whose every field is checked, its header fields formatted. */
export interface CheckedMessage {
  /** The author. */
  readonly from: Mailbox;
  /** The header fields that come before `Date` (`From` ... `Subject`). */
  readonly head: string;
  /** The header fields that come after `Message-ID` (`In-Reply-To` ... `MIME-Version`). */
  readonly tail: string;
  /** The date given, if any. */
  readonly date: Date | undefined;
  /** The message id given, with angle brackets, if any. */
  readonly messageId: string | undefined;
  readonly text: string | undefined;
  readonly html: string | undefined;
  /** The calendar invitation: its text and method (its attached copy is in `attachments`). */
  readonly calendar: { readonly content: string; readonly method: string } | undefined;
  /** Attachments, the calendar's copy last; nothing is opened. */
  readonly attachments: readonly PreparedAttachment[];
  /** The envelope: the message's own, or from its headers (may have no recipient). */
  readonly envelope: Envelope;
  /** True when an address (in a header or the envelope) has a non-ASCII local part. */
  readonly smtpUtf8: boolean;
  /** True when an attachment is a stream of the caller's: it can be read once only. */
  readonly oneShot: boolean;
}

/** The fields of a message. */
const MESSAGE_FIELDS: readonly string[] = [
  "from",
  "sender",
  "to",
  "cc",
  "bcc",
  "replyTo",
  "subject",
  "text",
  "html",
  "attachments",
  "icalEvent",
  "priority",
  "headers",
  "date",
  "messageId",
  "inReplyTo",
  "references",
  "readReceiptTo",
  "xMailer",
  "envelope",
];

/** nodemailer's message fields that postie does not take, and what to do instead. */
const NODEMAILER_MESSAGE: Readonly<Record<string, string>> = {
  alternatives: "postie sends text, html and icalEvent as alternatives, no others",
  watchHtml: "postie has no Apple Watch alternative: leave it out",
  amp: "postie has no AMP alternative: leave it out",
  list: 'postie has no List-* helper: give the fields in "headers"',
  encoding: "postie picks each part's transfer encoding itself: leave it out",
  textEncoding: "postie picks the header encoding itself: leave it out",
  attachDataUrls: 'postie does not turn data: images into attachments: attach them with "cid"',
  disableFileAccess: "postie reads a file only for an attachment's path: leave it out",
  disableUrlAccess: "postie never fetches URLs: leave it out",
  signal: "it is a send option: send(message, { signal })",
  dsn: "it is a send option: send(message, { dsn })",
  requireTLSExtensionEnabled: "it is a send option: send(message, { requireTls: true })",
  auth: "postie logs in per connection: give auth in the client options",
  normalizeHeaderKey: "postie sends header names as given: leave it out",
  newline: "postie always sends CRLF: leave it out",
};

/** The default `X-Mailer` field, formatted once. */
const DEFAULT_X_MAILER = formatUnstructured("X-Mailer", "postie");

function fail(reason: string): TypeError {
  return new TypeError(`Cannot compose message: ${reason}`);
}

/** Splits `references` into message ids. */
function referenceIds(references: string | readonly string[]): string[] {
  const items = typeof references === "string" ? [references] : references;
  if (!Array.isArray(items)) throw fail("references must be a string or a list of strings");
  const ids: string[] = [];
  for (const item of items) {
    checkHeaderValue("References", item);
    for (const id of item.split(/[ \t]+/)) {
      if (id !== "") ids.push(normalizeMessageId("References", id));
    }
  }
  return ids;
}

/** A text body: a string, or bytes read as UTF-8. */
function bodyText(field: string, value: unknown): string | undefined {
  if (value === undefined || typeof value === "string") return value;
  if (value instanceof Uint8Array) {
    try {
      return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(value);
    } catch {
      throw fail(`${field} is bytes that are not UTF-8`);
    }
  }
  throw fail(`${field} must be a string (or UTF-8 bytes)`);
}

/** The message's date as a `Date` (a string is read with `new Date()`), checked. */
function messageDate(value: unknown): Date | undefined {
  if (value === undefined) return undefined;
  const date = typeof value === "string" ? new Date(value) : value;
  if (!(date instanceof Date)) throw fail("date must be a Date or a date string");
  formatDate(date); // throws a RangeError for an invalid date
  return date;
}

/** The calendar invitation, checked. */
function calendarEvent(value: CalendarEvent | string): CalendarEvent {
  const event = typeof value === "string" ? { content: value } : value;
  if (event === null || typeof event !== "object" || typeof event.content !== "string") {
    throw fail("icalEvent.content must be a string");
  }
  checkFields(event, ["content", "method", "filename"], "icalEvent", {
    path: 'postie does not read the invitation from a file: give its text as "content"',
    href: 'postie does not download: give the invitation\'s text as "content"',
  });
  return event;
}

/**
 * Checks every field of a message and formats its header fields; composes no body and opens no
 * file (file attachments are checked by `checkFiles`).
 *
 * @param message The message, as given.
 * @returns The message, checked.
 * @throws {TypeError} For an unknown field, a value of the wrong kind, an invalid address, or
 *   CR, LF, NUL or a lone surrogate in a header value (the error names the field).
 * @throws {RangeError} For an invalid date, or a value too long for its header line.
 */
export function checkMessage(message: Message): CheckedMessage {
  if (message === null || typeof message !== "object") throw fail("message is not an object");
  checkFields(message, MESSAGE_FIELDS, "message", NODEMAILER_MESSAGE);
  if (message.from === undefined) throw fail("from is required");

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
  if (message.subject !== undefined) {
    if (typeof message.subject !== "string") throw fail("subject is not a string");
    head += formatUnstructured("Subject", message.subject);
  }
  const date = messageDate(message.date);
  const messageId = message.messageId === undefined
    ? undefined
    : normalizeMessageId("Message-ID", message.messageId);

  let tail = "";
  if (message.inReplyTo !== undefined) {
    tail += formatIds("In-Reply-To", [normalizeMessageId("In-Reply-To", message.inReplyTo)]);
  }
  if (message.references !== undefined) {
    const ids = referenceIds(message.references);
    if (ids.length > 0) tail += formatIds("References", ids);
  }
  const priority = message.priority ?? "normal";
  if (priority === "high") tail += "X-Priority: 1 (Highest)\r\nImportance: High\r\n";
  else if (priority === "low") tail += "X-Priority: 5 (Lowest)\r\nImportance: Low\r\n";
  else if (priority !== "normal") {
    throw fail(`priority must be "high", "normal" or "low", got ${JSON.stringify(priority)}`);
  }
  if (readReceiptTo.length > 0) {
    tail += formatAddresses("Disposition-Notification-To", readReceiptTo);
  }
  const xMailer = message.xMailer ?? "postie";
  if (xMailer === "postie") tail += DEFAULT_X_MAILER;
  else if (xMailer !== false) tail += formatUnstructured("X-Mailer", xMailer);
  tail += formatCustomHeaders(message.headers, "headers");
  tail += "MIME-Version: 1.0\r\n";

  const text = bodyText("text", message.text);
  const html = bodyText("html", message.html);
  const list = message.attachments ?? [];
  if (!Array.isArray(list)) throw fail("attachments must be a list");
  // Built with push, not map(): V8's optimised map() makes holey arrays, which deoptimised the
  // code that reads them.
  const attachments: PreparedAttachment[] = [];
  for (let i = 0; i < list.length; i++) {
    attachments.push(prepareAttachment(list[i]!, i, html !== undefined));
  }
  let calendar: CheckedMessage["calendar"];
  if (message.icalEvent !== undefined) {
    const event = calendarEvent(message.icalEvent);
    const method = (event.method ?? "REQUEST").toUpperCase();
    if (!/^[A-Z-]+$/.test(method)) {
      throw fail(`icalEvent.method ${JSON.stringify(method)} is invalid`);
    }
    calendar = { content: event.content, method };
    attachments.push(prepareAttachment(
      {
        filename: event.filename ?? "invite.ics",
        content: event.content,
        contentType: "application/ics",
      },
      attachments.length,
      false,
      "icalEvent",
    ));
  }

  const envelopeSender = sender ?? from;
  const envelope = message.envelope === undefined
    ? { from: envelopeSender.address, to: uniqueAddresses([...to, ...cc, ...bcc]) }
    : messageEnvelope(message.envelope, envelopeSender);
  const everyone = [from, ...(sender ? [sender] : []), ...to, ...cc, ...bcc, ...replyTo];
  return {
    from,
    head,
    tail,
    date,
    messageId,
    text,
    html,
    calendar,
    attachments,
    envelope,
    smtpUtf8: [...everyone, ...readReceiptTo].some((m) => needsSmtpUtf8(m.address)) ||
      (message.envelope !== undefined &&
        [envelope.from, ...envelope.to].some((address) => needsSmtpUtf8(address))),
    oneShot: attachments.some((a) => a.content instanceof ReadableStream),
  };
}
