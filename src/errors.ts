/**
 * Error classes. Every failure that talks to a server is an {@linkcode SmtpError}; bad input is
 * a `TypeError` or `RangeError` thrown before any network I/O.
 *
 * @module
 */

import type { RecipientResult, SmtpReply } from "./types.ts";

/** The step of the session in which an error happened. */
export type SmtpPhase =
  | "connect"
  | "tls"
  | "greeting"
  | "ehlo"
  | "starttls"
  | "auth"
  | "mail"
  | "rcpt"
  | "data"
  | "quit"
  | "command";

/** The options every {@linkcode SmtpError} takes: a cause, and whether the outcome is known. */
export interface SmtpErrorOptions extends ErrorOptions {
  /**
   * True when the message may have been delivered: the whole message was sent and the
   * connection then failed before the server's reply to it.
   * @default {false}
   */
  readonly outcomeUnknown?: boolean;
  /**
   * Recipients that have the message although the send failed: those that accepted it in an
   * earlier transaction of the same send (see {@linkcode SmtpError.accepted}).
   * @default {[]}
   */
  readonly accepted?: readonly RecipientResult[];
}

/** Base class of every error that comes from talking to an SMTP server. */
export class SmtpError extends Error {
  /** The step of the session that failed. */
  readonly phase: SmtpPhase;
  /**
   * Whether the server may hold the message after this failure. `false`: the message was not
   * delivered (nothing of it reached the server's queue), whatever else went wrong. `true`: the
   * whole message, with its terminating `.` or `BDAT ... LAST`, had been sent when the
   * connection broke, timed out or was aborted, before the server's reply to it: the server
   * may have accepted it. postie never sends such a message again on its own; check the
   * Message-ID on the receiving side before resending.
   */
  readonly outcomeUnknown: boolean;
  /**
   * Recipients that have the message although this error ended the send. A message to more
   * recipients than the server takes in one transaction goes out in several (see "Recipient
   * limits" in the README); when a later one fails, the recipients of the earlier ones already
   * have it: they are listed here, and the message says how many. Leave them out when sending
   * the message again. For {@linkcode SmtpRecipientsError}, the recipients that accepted the
   * message. Empty when no recipient has it.
   */
  readonly accepted: readonly RecipientResult[];

  /**
   * Creates the error.
   *
   * @param message What failed.
   * @param phase The step of the session that failed.
   * @param options The underlying cause, whether the outcome is unknown, and the recipients
   * that have the message already.
   */
  constructor(message: string, phase: SmtpPhase, options?: SmtpErrorOptions) {
    super(message, options);
    this.name = "SmtpError";
    this.phase = phase;
    this.outcomeUnknown = options?.outcomeUnknown ?? false;
    this.accepted = options?.accepted ?? [];
  }
}

/** Formats a reply as `550 5.1.1 text` for error messages. */
export function formatReply(reply: SmtpReply): string {
  const status = reply.enhancedStatus;
  const enhanced = status ? ` ${status.class}.${status.subject}.${status.detail}` : "";
  return `${reply.code}${enhanced} ${reply.lines.join(" ")}`.trimEnd();
}

/**
 * Names refused recipients with their replies, for error messages:
 * `b@example.com (550 5.1.1 No such user), c@example.com (452 4.2.2 Mailbox full)`; after
 * `max` of them, how many more.
 */
export function describeRecipients(
  recipients: readonly { address: string; reply: SmtpReply }[],
  max = 3,
): string {
  const named = recipients.slice(0, max).map((r) => `${r.address} (${formatReply(r.reply)})`);
  const more = recipients.length - named.length;
  return named.join(", ") + (more > 0 ? ` and ${more} more` : "");
}

/** The server answered a command with an error reply (4xx or 5xx, or an unexpected code). */
export class SmtpReplyError extends SmtpError {
  /** The server's reply. */
  readonly reply: SmtpReply;
  /** The command that was answered, with secrets redacted (e.g. `MAIL FROM:<a@example.com>`). */
  readonly command: string;

  /**
   * Creates the error.
   *
   * @param message What failed.
   * @param phase The step of the session that failed.
   * @param command The command that was answered, already redacted.
   * @param reply The server's reply.
   * @param options The underlying cause, if any, and the recipients that have the message.
   */
  constructor(
    message: string,
    phase: SmtpPhase,
    command: string,
    reply: SmtpReply,
    options?: SmtpErrorOptions,
  ) {
    super(`${message}: ${formatReply(reply)}`, phase, options);
    this.name = "SmtpReplyError";
    this.command = command;
    this.reply = reply;
  }

  /** The three-digit reply code. */
  get code(): number {
    return this.reply.code;
  }

  /** True for 4xx replies: trying again later may succeed. */
  get temporary(): boolean {
    return this.reply.code >= 400 && this.reply.code < 500;
  }
}

/** Authentication failed, or no mechanism could be used. */
export class SmtpAuthError extends SmtpReplyError {
  /**
   * Creates the error.
   *
   * @param message What failed.
   * @param command The AUTH command, redacted to its mechanism name.
   * @param reply The server's reply.
   * @param options The underlying cause, if any, and the recipients that have the message.
   */
  constructor(message: string, command: string, reply: SmtpReply, options?: SmtpErrorOptions) {
    super(message, "auth", command, reply, options);
    this.name = "SmtpAuthError";
  }
}

/** Not every recipient was accepted and the caller asked for that to be an error. */
export class SmtpRecipientsError extends SmtpError {
  /** Recipients that the server refused. */
  readonly rejected: readonly RecipientResult[];

  /**
   * Creates the error.
   *
   * @param message What failed.
   * @param accepted Recipients that the server accepted (the error's `accepted`).
   * @param rejected Recipients that the server refused.
   * @param options The underlying cause, if any.
   */
  constructor(
    message: string,
    accepted: readonly RecipientResult[],
    rejected: readonly RecipientResult[],
    options?: ErrorOptions,
  ) {
    super(message, "rcpt", { ...options, accepted });
    this.name = "SmtpRecipientsError";
    this.rejected = rejected;
  }
}

/** The connection could not be opened, or broke while in use. */
export class SmtpConnectionError extends SmtpError {
  /**
   * Creates the error.
   *
   * @param message What failed.
   * @param phase The step of the session that failed.
   * @param options The cause, and whether the outcome of a sent message is unknown.
   */
  constructor(message: string, phase: SmtpPhase, options?: SmtpErrorOptions) {
    super(message, phase, options);
    this.name = "SmtpConnectionError";
  }
}

/** The TLS handshake failed: an untrusted or expired certificate, a wrong host name, etc. */
export class SmtpTlsError extends SmtpError {
  /**
   * Creates the error.
   *
   * @param message What failed.
   * @param options The underlying cause, whether the outcome is unknown, and the recipients
   * that have the message.
   */
  constructor(message: string, options?: SmtpErrorOptions) {
    super(message, "tls", options);
    this.name = "SmtpTlsError";
  }
}

/** The server did not answer in time. */
export class SmtpTimeoutError extends SmtpError {
  /** The time limit that ran out, in milliseconds. */
  readonly timeoutMs: number;

  /**
   * Creates the error.
   *
   * @param message What timed out.
   * @param phase The step of the session that timed out.
   * @param timeoutMs The time limit that ran out.
   * @param options The underlying cause, and whether the outcome is unknown.
   */
  constructor(
    message: string,
    phase: SmtpPhase,
    timeoutMs: number,
    options?: SmtpErrorOptions,
  ) {
    super(message, phase, options);
    this.name = "SmtpTimeoutError";
    this.timeoutMs = timeoutMs;
  }
}

/** The server broke the protocol: malformed or oversized replies, unexpected data. */
export class SmtpProtocolError extends SmtpError {
  /**
   * Creates the error.
   *
   * @param message What was wrong.
   * @param phase The step of the session in which it happened.
   * @param options The underlying cause, and whether the outcome is unknown.
   */
  constructor(message: string, phase: SmtpPhase, options?: SmtpErrorOptions) {
    super(message, phase, options);
    this.name = "SmtpProtocolError";
  }
}

/**
 * {@linkcode SmtpPool.send} was refused because `maxQueue` sends were already waiting for a
 * connection (back-pressure: nothing was sent).
 */
export class PoolQueueFullError extends SmtpError {
  /** The queue bound that was reached. */
  readonly maxQueue: number;

  /**
   * Creates the error.
   *
   * @param maxQueue The queue bound that was reached.
   */
  constructor(maxQueue: number) {
    super(
      `Cannot queue message: ${maxQueue} sends are already waiting for a connection ` +
        `(maxQueue); wait for some to finish, or raise maxQueue`,
      "command",
    );
    this.name = "PoolQueueFullError";
    this.maxQueue = maxQueue;
  }
}

/** The server lacks an extension that the message or the options need. */
export class SmtpUnsupportedError extends SmtpError {
  /** The missing extension, e.g. `STARTTLS` or `SMTPUTF8`. */
  readonly extension: string;

  /**
   * Creates the error.
   *
   * @param message What is missing and why it is needed.
   * @param phase The step of the session in which it was found.
   * @param extension The missing extension.
   * @param options The recipients that have the message already, if any.
   */
  constructor(
    message: string,
    phase: SmtpPhase,
    extension: string,
    options?: SmtpErrorOptions,
  ) {
    super(message, phase, options);
    this.name = "SmtpUnsupportedError";
    this.extension = extension;
  }
}
