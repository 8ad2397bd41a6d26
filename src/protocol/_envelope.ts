/**
 * The envelope of one transaction: its MAIL and RCPT commands, and the bookkeeping of its
 * recipients (accepted, refused, deferred for too many recipients, LMTP's per-recipient replies).
 *
 * @module
 */

import { isTooManyRecipients } from "../delivery.ts";
import { describeRecipients, SmtpRecipientsError, SmtpReplyError } from "../errors.ts";
import type { RecipientResult, SmtpReply } from "../types.ts";
import * as commands from "./_commands.ts";
import type { CommandLine, Wait } from "./_session.ts";
import { withPhase } from "./_deadlines.ts";
import { positive, type Replies, type Turn } from "./_turn.ts";
import type { TransactionInput } from "./_transaction.ts";

/**
 * A recipient refused only because the transaction had too many (a 452 `4.5.3`): it may go in a
 * further transaction of the same message.
 */
export interface Deferral {
  /** Where the recipient is in the transaction's `to`. */
  readonly position: number;
  /** The server's reply to its RCPT. */
  readonly result: RecipientResult;
}

/** What the server accepted. */
export interface TransactionResult {
  readonly accepted: RecipientResult[];
  /** Recipients refused for any other reason than too many recipients. */
  readonly rejected: RecipientResult[];
  /** Recipients refused because the transaction had too many. */
  readonly deferred: readonly Deferral[];
  readonly reply: SmtpReply;
}

/** The commands of one transaction, and the bookkeeping of its recipients. */
export class Envelope {
  readonly mail: CommandLine;
  readonly rcpts: CommandLine[];
  readonly accepted: RecipientResult[] = [];
  /** Every refused recipient, in order, including the deferred ones. */
  readonly rejected: RecipientResult[] = [];
  readonly deferred: Deferral[] = [];
  mailReply: SmtpReply | undefined;

  constructor(readonly input: TransactionInput) {
    this.mail = { line: commands.mailFrom(input.from, input.mailParams) };
    const to = input.to;
    this.rcpts = [];
    for (let i = 0; i < to.length; i++) {
      const address = to[i]!;
      this.rcpts.push({ line: commands.rcptTo(address, input.rcptParams(address)) });
    }
  }

  /** The commands to write first: RSET when earlier replies are outstanding, then MAIL. */
  opening(turn: Turn): CommandLine[] {
    return turn.resetFirst ? [{ line: "RSET" }, this.mail] : [this.mail];
  }

  /** The text of {@linkcode opening} and every RCPT, each line ended with CRLF. */
  openingText(turn: Turn): string {
    let text = turn.resetFirst ? `RSET\r\n${this.mail.line}\r\n` : `${this.mail.line}\r\n`;
    for (const rcpt of this.rcpts) text += rcpt.line + "\r\n";
    return text;
  }

  /** Reads the replies to {@linkcode opening} and to every RCPT. */
  async readReplies(replies: Replies, wait: Wait, turn: Turn): Promise<void> {
    if (turn.resetFirst) await replies.read(withPhase(wait, "command"), "RSET");
    this.mailReply = await replies.read(wait, this.mail.line);
    const to = this.input.to;
    const rcptWait = withPhase(wait, "rcpt");
    for (let i = 0; i < to.length; i++) {
      this.record(i, to[i]!, await replies.read(rcptWait, this.rcpts[i]!.line));
    }
  }

  /** Without pipelining: MAIL, then each RCPT, waiting for every reply. */
  async sendOneByOne(replies: Replies, wait: Wait): Promise<void> {
    this.mailReply = await replies.command(this.mail, wait);
    if (!positive(this.mailReply)) return;
    const to = this.input.to;
    const rcptWait = withPhase(wait, "rcpt");
    for (let i = 0; i < to.length; i++) {
      this.record(i, to[i]!, await replies.command(this.rcpts[i]!, rcptWait));
    }
  }

  record(position: number, address: string, reply: SmtpReply): void {
    const result = { address, reply };
    if (positive(reply)) {
      this.accepted.push(result);
    } else {
      this.rejected.push(result);
      if (isTooManyRecipients(reply)) this.deferred.push({ position, result });
    }
  }

  /**
   * The result once the message was accepted. A transaction that accepted no recipient fails
   * instead ({@linkcode failure}), with the deferred ones among the refused: they are not
   * deferred again, so that a server that takes none cannot make the client loop.
   */
  result(reply: SmtpReply): TransactionResult {
    if (this.deferred.length === 0) {
      return { accepted: this.accepted, rejected: this.rejected, deferred: this.deferred, reply };
    }
    const deferred = new Set(this.deferred.map((d) => d.result));
    const rejected = this.rejected.filter((r) => !deferred.has(r));
    return { accepted: this.accepted, rejected, deferred: this.deferred, reply };
  }

  /** The error that ends the transaction before its data, if any. */
  failure(): SmtpReplyError | SmtpRecipientsError | undefined {
    if (this.mailReply && !positive(this.mailReply)) {
      return new SmtpReplyError("Sender refused", "mail", this.mail.line, this.mailReply);
    }
    if (this.mailReply && this.accepted.length === 0) {
      return noRecipientError(this.accepted, this.rejected);
    }
    return undefined;
  }
}

/**
 * LMTP (RFC 2033 section 4.2): after the data, one reply per accepted recipient, in RCPT order;
 * each is that recipient's final delivery. A recipient refused then joins the refused ones with
 * that reply; when none has the message, the send fails as if no RCPT was accepted.
 */
export async function lmtpReplies(
  replies: Replies,
  envelope: Envelope,
  wait: Wait,
): Promise<TransactionResult> {
  const accepted = envelope.accepted.splice(0);
  let last: SmtpReply | undefined;
  for (const recipient of accepted) {
    const reply = await replies.read(wait, ".");
    last = reply;
    const result = { address: recipient.address, reply };
    if (positive(reply)) envelope.accepted.push(result);
    else envelope.rejected.push(result);
  }
  if (envelope.accepted.length === 0 || !last) {
    throw noRecipientError(envelope.accepted, envelope.rejected);
  }
  return envelope.result(last);
}

export function noRecipientError(
  accepted: RecipientResult[],
  rejected: RecipientResult[],
): SmtpRecipientsError {
  const detail = rejected.length > 0 ? `: ${describeRecipients(rejected)}` : "";
  return new SmtpRecipientsError(
    `Cannot send message: no recipient was accepted${detail}`,
    accepted,
    rejected,
  );
}
