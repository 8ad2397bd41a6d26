/**
 * Delivery guarantees in one place: how far a transaction got, what a failure then means for
 * the message, and whether the message may be sent again. {@linkcode SmtpClient} and
 * {@linkcode SmtpPool} ask these functions; they decide nothing about retries on their own.
 *
 * The rule: a failure before the message's terminator (DATA's final `.`, or `BDAT ... LAST`
 * with its chunk) was handed to the connection leaves the message *not sent*: the server cannot
 * hold it. From the moment the terminator is written until a reply settles it, the message is
 * *maybe delivered* (`outcomeUnknown`): it is never sent again by the library. A server reply
 * is final: a refusal of MAIL, of every RCPT or of the data means the server does not hold it.
 * With BDAT and PIPELINING the terminator goes out together with MAIL and RCPT, so a connection
 * lost while their replies are read already leaves the outcome unknown: the stage decides, not
 * the command whose reply was awaited.
 *
 * Recipient limits: a recipient refused because the transaction has too many
 * ({@linkcode isTooManyRecipients}) is not refused for good; it goes in a further transaction of
 * the same message. A failure after an earlier transaction delivered the message is reported
 * with the recipients that have it ({@linkcode reportedError}).
 *
 * @module
 */

import {
  formatReply,
  SmtpAuthError,
  SmtpConnectionError,
  SmtpError,
  type SmtpErrorOptions,
  SmtpProtocolError,
  SmtpRecipientsError,
  SmtpReplyError,
  SmtpTimeoutError,
  SmtpTlsError,
  SmtpUnsupportedError,
} from "./errors.ts";
import type { RecipientResult, SmtpReply } from "./types.ts";

/**
 * How far one transaction got, in order:
 * - `unsent`: nothing of it was written;
 * - `envelope`: MAIL and RCPT (and DATA) were written, the body was not touched;
 * - `data`: the body is being read and written, its terminator not yet;
 * - `terminated`: the terminator was handed to the connection.
 */
export type Stage = "unsent" | "envelope" | "data" | "terminated";

/** What a failed transaction means for its message. */
export type Verdict =
  /** The server cannot hold the message. */
  | "not-sent"
  /** The server answered, and refused the message (or every recipient). */
  | "refused"
  /** The whole message was sent and no reply settled it: the server may hold it. */
  | "maybe-delivered";

/** A failed attempt: how far it got and the error it ended with. */
export interface Failure {
  readonly stage: Stage;
  readonly error: unknown;
}

/** Judges a failed transaction from how far it got and how it ended. */
export function verdictOf(failure: Failure): Verdict {
  const { error } = failure;
  if (error instanceof SmtpReplyError || error instanceof SmtpRecipientsError) return "refused";
  return failure.stage === "terminated" ? "maybe-delivered" : "not-sent";
}

/** True once the body may have been read: a one-shot source cannot be produced again. */
export function bodyTouched(stage: Stage): boolean {
  return stage === "data" || stage === "terminated";
}

/**
 * Whether a reply to RCPT refuses the recipient only because the transaction has too many
 * (RFC 5321 4.5.3.1.10): 452, or 552 (which RFC 821 listed for it, and which RFC 5321 asks
 * clients to treat the same), with the enhanced status `x.5.3`, or, without an enhanced status,
 * with "too many recipients" in its text. Such a recipient goes in a further transaction.
 */
export function isTooManyRecipients(reply: SmtpReply): boolean {
  if (reply.code !== 452 && reply.code !== 552) return false;
  const status = reply.enhancedStatus;
  if (status) return status.subject === 5 && status.detail === 3;
  return /too many recipients/i.test(reply.lines.join(" "));
}

/**
 * The error to report for a failed transaction: the error itself, or the same kind of error
 * with more said:
 * - when the server may hold the message: `outcomeUnknown` set, and a message that says so;
 * - when `accepted` lists recipients that have the message from an earlier transaction of the
 *   same send: those, as the error's `accepted`, and their number in its message.
 *
 * An abort's reason, and an error that is not an `SmtpError`, are reported as they are.
 *
 * @param failure The failed transaction.
 * @param accepted The recipients that accepted the message in earlier transactions.
 */
export function reportedError(
  failure: Failure,
  accepted: readonly RecipientResult[] = [],
): unknown {
  const { error } = failure;
  if (!(error instanceof SmtpError)) return error;
  const unknown = !error.outcomeUnknown && verdictOf(failure) === "maybe-delivered";
  const delivered = accepted.length > 0 && error.accepted.length === 0;
  if (!unknown && !delivered) return error;
  let note = "";
  if (unknown) {
    note += " after the whole message was sent: the server may have accepted it (outcome " +
      "unknown; check for its Message-ID before sending it again)";
  }
  if (delivered) {
    const count = accepted.length === 1 ? "1 recipient" : `${accepted.length} recipients`;
    note += ` (after ${count} had accepted it in an earlier transaction: see error.accepted)`;
  }
  return rebuilt(error, note, {
    cause: error,
    outcomeUnknown: unknown || error.outcomeUnknown,
    accepted: delivered ? accepted : error.accepted,
  });
}

/** The same kind of error, with `note` added to its message and `options` applied. */
function rebuilt(error: SmtpError, note: string, options: SmtpErrorOptions): SmtpError {
  if (error instanceof SmtpReplyError) {
    // The reply stays last: "Message refused (after ...): 554 5.7.1 ...".
    const detail = `: ${formatReply(error.reply)}`;
    const base = error.message.endsWith(detail)
      ? error.message.slice(0, -detail.length)
      : error.message;
    if (error instanceof SmtpAuthError) {
      return new SmtpAuthError(base + note, error.command, error.reply, options);
    }
    return new SmtpReplyError(base + note, error.phase, error.command, error.reply, options);
  }
  const message = error.message + note;
  if (error instanceof SmtpRecipientsError) {
    return new SmtpRecipientsError(message, options.accepted ?? [], error.rejected, options);
  }
  if (error instanceof SmtpTimeoutError) {
    return new SmtpTimeoutError(message, error.phase, error.timeoutMs, options);
  }
  if (error instanceof SmtpProtocolError) {
    return new SmtpProtocolError(message, error.phase, options);
  }
  if (error instanceof SmtpTlsError) return new SmtpTlsError(message, options);
  if (error instanceof SmtpUnsupportedError) {
    return new SmtpUnsupportedError(message, error.phase, error.extension, options);
  }
  return new SmtpConnectionError(message, error.phase, options);
}

/** Who is asking: the client's one quick retry, or the pool's retries with back-off. */
export type RetryPolicy = "client" | "pool";

const CONNECT_PHASES = new Set(["connect", "tls", "greeting", "ehlo", "starttls", "auth"]);

/**
 * Whether a failure is worth another attempt on a fresh connection, assuming the message can
 * be sent again at all (see {@linkcode mayRetry}).
 *
 * - The client retries once, at once, when the server closed the connection (421) before the
 *   message was terminated, or the connection broke.
 * - The pool, with back-off, also retries other temporary failures: a 4xx reply while
 *   connecting, to MAIL or to every RCPT (greylisting, rate limits), a connect or greeting
 *   timeout.
 */
export function isTransient(failure: Failure, policy: RetryPolicy): boolean {
  const { error } = failure;
  if (error instanceof SmtpRecipientsError) {
    // Every recipient refused, each with a 4xx: nothing was sent (greylisting, rate limits).
    return policy === "pool" && error.accepted.length === 0 && error.rejected.length > 0 &&
      error.rejected.every((r) => r.reply.code >= 400 && r.reply.code < 500);
  }
  if (error instanceof SmtpReplyError) {
    // A 421 to the terminator itself is the server's answer to the message: not retried.
    if (error.code === 421) return failure.stage !== "terminated" || error.phase !== "data";
    if (policy === "client") return false;
    const temporary = error.code >= 400 && error.code < 500;
    return temporary &&
      (CONNECT_PHASES.has(error.phase) || error.phase === "mail" || error.phase === "rcpt");
  }
  if (error instanceof SmtpConnectionError) return !error.outcomeUnknown;
  if (error instanceof SmtpTimeoutError) {
    return policy === "pool" && !error.outcomeUnknown &&
      (error.phase === "connect" || error.phase === "greeting");
  }
  return false;
}

/**
 * The one retry rule: a failed attempt may be repeated when the server cannot hold the message
 * (never when it may: at most once), the failure is transient for `policy`, and the body can be
 * produced again byte for byte (`replayable`).
 */
export function mayRetry(failure: Failure, replayable: boolean, policy: RetryPolicy): boolean {
  if (!replayable || verdictOf(failure) === "maybe-delivered") return false;
  const { error } = failure;
  return !(error instanceof SmtpError && error.outcomeUnknown) && isTransient(failure, policy);
}
