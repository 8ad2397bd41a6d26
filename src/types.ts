/**
 * Values shared by the protocol core, the client and the public API.
 *
 * @module
 */

/** An RFC 3463 enhanced status code such as `5.1.1`. */
export interface EnhancedStatus {
  /** 2 (success), 4 (persistent transient failure) or 5 (permanent failure). */
  readonly class: number;
  /** The subject, e.g. 1 for addressing. */
  readonly subject: number;
  /** The detail within the subject. */
  readonly detail: number;
}

/** One complete SMTP reply: a code and one or more text lines. */
export interface SmtpReply {
  /** The three-digit reply code, e.g. 250. */
  readonly code: number;
  /** The enhanced status code, when the server sent one on the first line. */
  readonly enhancedStatus?: EnhancedStatus;
  /** The text of each line, without code, separator or enhanced status code. */
  readonly lines: readonly string[];
}

/** The SMTP envelope: the reverse path and the forward paths of one transaction. */
export interface Envelope {
  /** The MAIL FROM address; an empty string sends the null reverse path `<>`. */
  readonly from: string;
  /** The RCPT TO addresses. */
  readonly to: readonly string[];
}

/** A message that is already formatted as RFC 5322 bytes, sent as is. */
export interface RawMessage {
  /** The message: header, empty line and body. Bare LF line ends are turned into CRLF. */
  readonly raw: Uint8Array | string | ReadableStream<Uint8Array>;
  /** The envelope to send it with. */
  readonly envelope: Envelope;
  /**
   * The message has binary MIME parts (`Content-Transfer-Encoding: binary`, RFC 3030): it is
   * sent byte for byte, line ends untouched, with BDAT and `BODY=BINARYMIME`. Needs the
   * server's CHUNKING and BINARYMIME; without them the send fails with `SmtpUnsupportedError`
   * before MAIL FROM.
   * @default {false}
   */
  readonly binary?: boolean;
}

/** What the server said about one recipient. */
export interface RecipientResult {
  /** The address as given in RCPT TO. */
  readonly address: string;
  /** The server's reply to RCPT TO (or, for LMTP-like per-recipient data replies, to the data). */
  readonly reply: SmtpReply;
}

/**
 * The outcome of one accepted message. A message to more recipients than the server takes in
 * one transaction goes out in several, with the same bytes; the result merges them.
 */
export interface SendResult {
  /** The envelope that was used. */
  readonly envelope: Envelope;
  /** The Message-ID header of a composed message (with angle brackets). */
  readonly messageId?: string;
  /** Recipients that the server accepted, over every transaction. */
  readonly accepted: readonly RecipientResult[];
  /**
   * Recipients that the server refused, over every transaction. A recipient the server had no
   * room for ("452 4.5.3 too many recipients") is not here but sent in a further transaction,
   * unless that cannot be: a body given as a `ReadableStream` is sent once, and a transaction
   * that accepted nobody is not repeated.
   */
  readonly rejected: readonly RecipientResult[];
  /**
   * The server's reply to the end of the message data (the queue id is usually in it): of the
   * last transaction that carried the message, when it took several.
   */
  readonly reply: SmtpReply;
}
