/**
 * Output formatting: the ordered writer for standard output and standard error (secrets
 * removed, progress bar cleared), results as text or JSON, TLS details.
 *
 * @module
 */

import { formatReply } from "../errors.ts";
import type { TlsInfo } from "../transport/types.ts";
import type { RecipientResult, SendResult, SmtpReply } from "../types.ts";
import type { CliOutput } from "./_io.ts";
import { EXIT_OK, EXIT_REJECTED, EXIT_TEMPORARY } from "./exit_codes.ts";

/** Writes in order, whatever the sink does: transcript callbacks cannot await. */
export class Printer {
  #out: CliOutput;
  #tail: Promise<void> = Promise.resolve();
  #barShown = false;
  #secrets: string[] = [];

  constructor(out: CliOutput) {
    this.#out = out;
  }

  get isTerminal(): boolean {
    return this.#out.isTerminal ?? false;
  }

  /** Strings never to print (passwords, tokens), replaced by `[redacted]`. */
  hide(secret: string): void {
    if (secret.length >= 4) this.#secrets.push(secret);
  }

  scrub(text: string): string {
    for (const secret of this.#secrets) text = text.replaceAll(secret, "[redacted]");
    return text;
  }

  #write(data: string | Uint8Array): void {
    this.#tail = this.#tail.then(() => this.#out.write(data)).catch(() => {});
  }

  /** Writes text as is (after removing secrets). */
  text(text: string): void {
    this.#clearBar();
    this.#write(this.scrub(text));
  }

  /** Writes one line. */
  line(text = ""): void {
    this.text(text + "\n");
  }

  bytes(data: Uint8Array): void {
    this.#write(data);
  }

  draw(line: string): void {
    this.#write(`\r\x1b[2K${line}`);
    this.#barShown = true;
  }

  finish(line: string): void {
    this.#write(`\r\x1b[2K${line}\n`);
    this.#barShown = false;
  }

  #clearBar(): void {
    if (this.#barShown) this.#write("\r\x1b[2K");
    this.#barShown = false;
  }

  async flush(): Promise<void> {
    await this.#tail;
  }
}

/** The two outputs, with JSON mode. */
export interface Out {
  readonly stdout: Printer;
  readonly stderr: Printer;
  readonly json: boolean;
}

/** A reply as JSON: code, enhanced status as text, and the lines joined. */
export function replyJson(reply: SmtpReply) {
  const status = reply.enhancedStatus;
  return {
    code: reply.code,
    enhancedStatus: status ? `${status.class}.${status.subject}.${status.detail}` : null,
    text: reply.lines.join("\n"),
  };
}

/** A recipient's result as JSON. */
export function recipientJson(recipient: RecipientResult) {
  return { address: recipient.address, ...replyJson(recipient.reply) };
}

/** Prints the result of a send (text or JSON); returns the exit code it comes to. */
export function printResult(result: SendResult, out: Out): number {
  const refused = result.rejected;
  const code = refused.length === 0
    ? EXIT_OK
    : refused.every((r) => r.reply.code >= 400 && r.reply.code < 500)
    ? EXIT_TEMPORARY
    : EXIT_REJECTED;
  if (out.json) {
    out.stdout.line(JSON.stringify(
      {
        ok: code === EXIT_OK,
        exitCode: code,
        messageId: result.messageId ?? null,
        envelope: result.envelope,
        accepted: result.accepted.map(recipientJson),
        rejected: refused.map(recipientJson),
        reply: replyJson(result.reply),
      },
      null,
      2,
    ));
  } else {
    const names = result.accepted.map((r) => r.address).join(", ");
    out.stdout.line(
      `Sent${result.messageId ? ` ${result.messageId}` : ""} to ${names}: ` +
        formatReply(result.reply),
    );
  }
  if (refused.length > 0) {
    out.stderr.line(
      `postie: sent to ${result.accepted.length} of ` +
        `${result.accepted.length + refused.length} recipients; refused: ` +
        refused.map((r) => `${r.address} (${formatReply(r.reply)})`).join(", "),
    );
  }
  return code;
}

/** TLS details for people: version, cipher, certificate. */
export function describeTls(tls: TlsInfo): string {
  const certificate = tls.peerSubject
    ? `certificate ${tls.peerSubject} verified`
    : "certificate verified";
  const parts = [tls.protocol, tls.cipher, certificate].filter(Boolean).join(", ");
  return tls.protocol ? parts : `${parts} (this runtime does not report the TLS version or cipher)`;
}
