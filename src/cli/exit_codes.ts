/**
 * The exit codes of the `postie` command line, from `sysexits.h` where one fits, and how an
 * error maps to one.
 *
 * @module
 */

import {
  SmtpAuthError,
  SmtpConnectionError,
  SmtpError,
  SmtpProtocolError,
  SmtpRecipientsError,
  SmtpReplyError,
  SmtpTimeoutError,
  SmtpTlsError,
  SmtpUnsupportedError,
} from "../errors.ts";

/** The message was sent to every recipient (`check`: connected and greeted). */
export const EXIT_OK = 0;
/** Usage error: an unknown or missing option, or a bad option value (`EX_USAGE`). */
export const EXIT_USAGE = 64;
/** Invalid input: an address, header or body that the library refuses (`EX_DATAERR`). */
export const EXIT_DATA = 65;
/** An input file cannot be read: `--attach`, `@FILE`, `--ca-file` (`EX_NOINPUT`). */
export const EXIT_NO_INPUT = 66;
/** Rejected: the server permanently refused the message or recipients, 5xx (`EX_NOUSER`). */
export const EXIT_REJECTED = 67;
/**
 * Server unavailable: cannot connect, timed out, connection lost, the server refused the
 * session or lacks a required extension (`EX_UNAVAILABLE`).
 */
export const EXIT_UNAVAILABLE = 69;
/** Internal error: a bug in postie (`EX_SOFTWARE`). */
export const EXIT_INTERNAL = 70;
/** Temporary failure: a 4xx reply; trying again later may succeed (`EX_TEMPFAIL`). */
export const EXIT_TEMPORARY = 75;
/** Protocol error: the server broke SMTP (`EX_PROTOCOL`). */
export const EXIT_PROTOCOL = 76;
/** Authentication failed, or no usable mechanism (`EX_NOPERM`). */
export const EXIT_AUTH = 77;
/** TLS failure: handshake or certificate, or STARTTLS missing or refused (`EX_CONFIG`). */
export const EXIT_TLS = 78;
/** Interrupted (Ctrl-C), as shells report SIGINT. */
export const EXIT_INTERRUPTED = 130;

/** The table printed by `--help`: code and meaning. */
export const EXIT_CODE_TABLE: readonly (readonly [number, string])[] = [
  [EXIT_OK, "sent to every recipient (check: connected)"],
  [EXIT_USAGE, "usage error: unknown or missing option, bad option value"],
  [EXIT_DATA, "invalid input: an address, header or body postie refuses"],
  [EXIT_NO_INPUT, "an input file cannot be read (--attach, @FILE, --ca-file)"],
  [EXIT_REJECTED, "rejected (5xx): the server refused the message or its recipients"],
  [EXIT_UNAVAILABLE, "unavailable: cannot connect, timeout, connection lost, extension missing"],
  [EXIT_INTERNAL, "internal error (a bug in postie)"],
  [EXIT_TEMPORARY, "temporary failure (4xx): try again later"],
  [EXIT_PROTOCOL, "protocol error: the server broke SMTP"],
  [EXIT_AUTH, "authentication failed, or no usable mechanism"],
  [EXIT_TLS, "TLS failure: certificate or handshake, STARTTLS missing or refused"],
  [EXIT_INTERRUPTED, "interrupted"],
];

/** A usage error: the message says which option is wrong. */
export class UsageError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong with the command line.
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** An input file could not be read. */
export class InputFileError extends Error {
  /**
   * Creates the error.
   *
   * @param message Which file and why.
   * @param options The underlying cause.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "InputFileError";
  }
}

/** True for the "file not found / not permitted" errors of Deno and Node. */
export function isFileError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return ["NotFound", "PermissionDenied", "IsADirectory", "NotADirectory"].includes(error.name) ||
    (typeof code === "string" && /^E(NOENT|ACCES|PERM|ISDIR|NOTDIR)$/.test(code));
}

function allTemporary(replies: readonly { reply: { code: number } }[]): boolean {
  return replies.length > 0 && replies.every((r) => r.reply.code >= 400 && r.reply.code < 500);
}

/**
 * The exit code for an error thrown while sending or checking.
 *
 * @param error What was thrown.
 * @param interrupted True when the user interrupted the run.
 * @returns One of the `EXIT_*` codes.
 */
export function exitCodeFor(error: unknown, interrupted = false): number {
  if (interrupted) return EXIT_INTERRUPTED;
  if (error instanceof UsageError) return EXIT_USAGE;
  if (error instanceof InputFileError || isFileError(error)) return EXIT_NO_INPUT;
  if (error instanceof SmtpRecipientsError) {
    return allTemporary(error.rejected) ? EXIT_TEMPORARY : EXIT_REJECTED;
  }
  if (error instanceof SmtpAuthError) return error.temporary ? EXIT_TEMPORARY : EXIT_AUTH;
  if (error instanceof SmtpReplyError) {
    if (error.temporary) return EXIT_TEMPORARY;
    if (error.phase === "starttls") return EXIT_TLS;
    if (error.phase === "auth") return EXIT_AUTH;
    if (error.phase === "greeting" || error.phase === "ehlo") return EXIT_UNAVAILABLE;
    return EXIT_REJECTED;
  }
  if (error instanceof SmtpTlsError) return EXIT_TLS;
  if (error instanceof SmtpUnsupportedError) {
    if (error.extension === "STARTTLS") return EXIT_TLS;
    if (error.phase === "auth") return EXIT_AUTH;
    return EXIT_UNAVAILABLE;
  }
  if (error instanceof SmtpConnectionError || error instanceof SmtpTimeoutError) {
    return EXIT_UNAVAILABLE;
  }
  if (error instanceof SmtpProtocolError) return EXIT_PROTOCOL;
  if (error instanceof SmtpError) return error.phase === "auth" ? EXIT_AUTH : EXIT_UNAVAILABLE;
  if (error instanceof TypeError || error instanceof RangeError) return EXIT_DATA;
  return EXIT_INTERNAL;
}
