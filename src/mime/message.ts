/**
 * The {@linkcode Message} a user describes as data: nodemailer's field names and shapes, so that
 * a nodemailer message object is sent unchanged where the meaning is the same.
 *
 * @module
 */

import type { AddressInput } from "./address.ts";

/**
 * A file to attach, or an image to embed: give exactly one of `content`, `path` and `raw`
 * (nodemailer's shapes: `{ filename, path }`, `{ filename, content, encoding }`, `{ cid, path }`,
 * `{ raw }`).
 */
export interface Attachment {
  /**
   * The file name shown to the recipient, sent exactly as given: a name that is not short
   * printable ASCII goes as RFC 2231 `filename*` with an RFC 2047 `name=` fallback. `false`
   * sends none, even for a file.
   * @default {the last part of the file path; none otherwise}
   */
  readonly filename?: string | false;
  /**
   * The content: bytes (a Node.js `Buffer` too), a string (see `encoding`), a stream (a
   * `ReadableStream`, or any async iterable of bytes such as a Node.js `Readable`; read only
   * while the message is sent), or a file as `{ path }`.
   */
  readonly content?:
    | Uint8Array
    | string
    | ReadableStream<Uint8Array>
    | AsyncIterable<Uint8Array>
    | { readonly path: string };
  /**
   * A file to attach, read while the message is sent: the same as `content: { path }`. It is
   * checked (it must exist and be readable) before any connection is made.
   */
  readonly path?: string;
  /**
   * The whole MIME part, header fields, empty line and body, sent as given (bare LF and CR
   * become CRLF): for a part prepared elsewhere. No other field may be set with it.
   */
  readonly raw?: string | Uint8Array;
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
  /** nodemailer's name for `contentId` (give one of the two). */
  readonly cid?: string;
  /**
   * How the recipient's program should show it.
   * @default {"inline" when `contentId` is set, else "attachment"}
   */
  readonly contentDisposition?: "attachment" | "inline";
  /**
   * How a string `content` is turned into bytes: UTF-8 text, base64 or hex encoded binary, or
   * one byte per character (`latin1`, also called `binary`), as Node.js `Buffer.from` does.
   * @default {"utf-8"}
   */
  readonly encoding?: "utf-8" | "utf8" | "base64" | "hex" | "latin1" | "binary";
  /**
   * Extra header fields of this part. They may not replace the ones that describe the content
   * (`Content-Type`, `Content-Disposition`, ...): use the fields above for those.
   */
  readonly headers?: CustomHeaders;
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

/**
 * Custom header fields, as a record or as a list (which allows repeated names). A record value
 * may be a list too: one field for each.
 */
export type CustomHeaders =
  | Readonly<Record<string, string | readonly string[]>>
  | readonly { readonly key: string; readonly value: string }[];

/**
 * An SMTP envelope given in the message, as nodemailer takes it: the addresses to use instead of
 * those derived from the headers. Display names are dropped.
 */
export interface MessageEnvelope {
  /**
   * The envelope sender (MAIL FROM).
   * @default {the message's `sender`, else `from`}
   */
  readonly from?: AddressInput;
  /** Envelope recipients (RCPT TO). */
  readonly to?: AddressInput | readonly AddressInput[];
  /** More envelope recipients: nodemailer joins them to `to`. */
  readonly cc?: AddressInput | readonly AddressInput[];
  /** More envelope recipients: nodemailer joins them to `to`. */
  readonly bcc?: AddressInput | readonly AddressInput[];
}

/**
 * A message described as data. Field names and shapes follow nodemailer's: a field postie does
 * not know is refused with a `TypeError` that names the field meant, so that a typo in plain
 * JavaScript (`attachements`) cannot send a message without its attachment.
 */
export interface Message {
  /**
   * The author (the `From` header); also the envelope sender unless `sender` is set. The `name`
   * of a `{ name, address }` is sent exactly as given, surrounding whitespace included.
   */
  readonly from: AddressInput;
  /** The `Sender` header; when set it is also the envelope sender (MAIL FROM). */
  readonly sender?: AddressInput;
  /** Recipients shown in `To`: strings (one address or a list) and `{ name, address }`. */
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
  /** The plain-text body (bytes are read as UTF-8). */
  readonly text?: string | Uint8Array;
  /** The HTML body (bytes are read as UTF-8). */
  readonly html?: string | Uint8Array;
  /** Files to attach and images to embed. */
  readonly attachments?: readonly Attachment[];
  /** A calendar invitation: the iCalendar text, or it with its method and file name. */
  readonly icalEvent?: CalendarEvent | string;
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
   * The `Date` header (a string is read with `new Date()`).
   * @default {now}
   */
  readonly date?: Date | string;
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
  /**
   * The SMTP envelope, when the one derived from the headers is not the one to use. An
   * `envelope` in the send options takes precedence.
   * @default {from `sender` or `from`, to every address of `to`, `cc` and `bcc`}
   */
  readonly envelope?: MessageEnvelope;
}
