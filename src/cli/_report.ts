/**
 * Errors as the command line reports them: one line on standard error (secrets removed, option
 * names as the flags that set them, a hint for the usual mistakes), the same as JSON with
 * `--json`, and the exit code.
 *
 * @module
 */

import {
  formatReply,
  SmtpError,
  SmtpRecipientsError,
  SmtpReplyError,
  SmtpTimeoutError,
} from "../errors.ts";
import { describeFileError } from "./_files.ts";
import type { CliIo } from "./_io.ts";
import { type Out, recipientJson, replyJson } from "./_output.ts";
import {
  EXIT_DATA,
  EXIT_INTERNAL,
  EXIT_INTERRUPTED,
  EXIT_NO_INPUT,
  EXIT_USAGE,
  exitCodeFor,
  InputFileError,
  isFileError,
} from "./exit_codes.ts";

/** The user cancelled (Ctrl-C at the password prompt). */
export class Interrupted extends Error {
  constructor() {
    super("Interrupted");
    this.name = "Interrupted";
  }
}

/** Library option names in error messages, as the flags that set them. */
const FLAG_NAMES: readonly [RegExp, string][] = [
  [/tlsOptions\.caCerts/g, "--ca-file"],
  [/tlsOptions\.serverName/g, "--server-name"],
  [/\btls: "(\w+)"/g, "--tls $1"],
  [/\btls is "(\w+)"/g, "--tls is $1"],
  [/\ballowPlaintextAuth\b/g, "--allow-plaintext-auth"],
  [/\bclientName\b/g, "--ehlo"],
  [/\bdkim(?:\[\d+\])?\.domain\b/g, "--dkim-domain"],
  [/\bdkim(?:\[\d+\])?\.selector\b/g, "--dkim-selector"],
];

function hintFor(error: unknown): string | undefined {
  if (!(error instanceof SmtpError)) return undefined;
  const text = `${error.message} ${String(error.cause ?? "")}`;
  if (error.phase === "connect" && /refused/i.test(text)) {
    return "check --server host:port, and that the server is running";
  }
  if (error.phase === "connect" && /lookup|resolve|not known|ENOTFOUND|EAI_/i.test(text)) {
    return "check the host name in --server";
  }
  if (error instanceof SmtpTimeoutError && error.phase === "connect") {
    return "check --server host:port; a firewall may drop the connection";
  }
  return undefined;
}

function oneLine(text: string): string {
  return text.replace(/\s*\r?\n\s*/g, " ").trim();
}

/** Prints the error in one line (and as JSON with --json); returns the exit code. */
export function report(error: unknown, io: CliIo, out: Out): number {
  const interrupted = error instanceof Interrupted || (io.signal?.aborted ?? false);
  const code = error instanceof Interrupted ? EXIT_INTERRUPTED : exitCodeFor(error, interrupted);
  let message = error instanceof Error ? error.message : String(error);
  for (const [pattern, flag] of FLAG_NAMES) message = message.replace(pattern, flag);
  if (error instanceof SmtpRecipientsError && error.rejected.length > 0) {
    message = `${error.message.split(":")[0]}: refused ` +
      error.rejected.map((r) => `${r.address} (${formatReply(r.reply)})`).join(", ");
  }
  if (code === EXIT_INTERRUPTED) message = "Interrupted";
  if (code === EXIT_INTERNAL) {
    message = `Internal error (please report it): ${
      error instanceof Error ? error.stack ?? message : message
    }`;
  }
  if (code === EXIT_DATA && !/^Invalid|^Cannot|^Refusing/.test(message)) {
    message = `Invalid input: ${message}`;
  }
  if (code === EXIT_NO_INPUT && isFileError(error) && !(error instanceof InputFileError)) {
    message = `Cannot read a file: ${describeFileError(error)}`;
  }
  const hint = hintFor(error);
  const line = out.stderr.scrub(
    code === EXIT_INTERNAL ? message : oneLine(message + (hint ? ` (${hint})` : "")),
  );
  const help = code === EXIT_USAGE && !line.includes("--help") ? " (see --help)" : "";
  out.stderr.line(`postie: ${line}${help}`);
  if (out.json) {
    const detail: Record<string, unknown> = {
      name: error instanceof Error ? error.name : "Error",
      message: line,
    };
    if (error instanceof SmtpError) detail.phase = error.phase;
    if (error instanceof SmtpReplyError) {
      detail.command = error.command;
      detail.reply = replyJson(error.reply);
    }
    if (error instanceof SmtpRecipientsError) {
      detail.accepted = error.accepted.map(recipientJson);
      detail.rejected = error.rejected.map(recipientJson);
    }
    out.stdout.line(JSON.stringify({ ok: false, exitCode: code, error: detail }, null, 2));
  }
  return code;
}
