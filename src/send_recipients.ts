/**
 * The recipients of one send over its transactions: which go in the next transaction (within
 * the server's `LIMITS`), and how each transaction's outcome settles them.
 *
 * @module
 */

import type { Failure } from "./delivery.ts";
import { SmtpRecipientsError } from "./errors.ts";
import type { ServerLimits } from "./protocol/capabilities.ts";
import type { TransactionOutcome } from "./protocol/_transaction.ts";
import type { RecipientResult, SmtpReply } from "./types.ts";

/** The lower-case domain of an envelope address (empty for a bare local part). */
function domainOf(address: string): string {
  const at = address.lastIndexOf("@");
  return at === -1 ? "" : address.slice(at + 1).toLowerCase();
}

/**
 * The recipients of a send: those still waiting for the message, those that accepted it and
 * those that refused it. A recipient that accepted the message is never given it again, by a
 * further transaction or by a retry.
 */
export class SendRecipients {
  /** Positions in the envelope's `to` of recipients not yet settled; set by the first batch. */
  #waiting: number[] | undefined;
  readonly #accepted: RecipientResult[] = [];
  readonly #rejected: RecipientResult[] = [];
  /** The reply to the data of the last transaction that delivered the message. */
  #reply: SmtpReply | undefined;

  /**
   * The recipients of the next transaction: positions in `to` of those still waiting, in
   * order, at most `limits.rcptMax` of them, of at most `limits.rcptDomainMax` domains; every
   * one of them when `all` (a body that can be sent only once).
   */
  batch(to: readonly string[], limits: ServerLimits, all: boolean): readonly number[] {
    // Built with push, not map(): V8's optimised map() makes holey arrays, and code optimised
    // for the packed ones the interpreter's map() makes is deoptimised when it meets them.
    let waiting = this.#waiting;
    if (waiting === undefined) {
      waiting = this.#waiting = [];
      for (let i = 0; i < to.length; i++) waiting.push(i);
    }
    if (all) return waiting;
    const max = limits.rcptMax ?? Infinity;
    const maxDomains = limits.rcptDomainMax ?? Infinity;
    const batch: number[] = [];
    const domains = new Set<string>();
    for (const position of waiting) {
      if (batch.length >= max) break;
      const domain = domainOf(to[position]!);
      if (!domains.has(domain)) {
        if (domains.size >= maxDomains) continue;
        domains.add(domain);
      }
      batch.push(position);
    }
    return batch;
  }

  /**
   * Settles the recipients of `batch` with the outcome of its transaction; `replayable` says
   * whether deferred recipients may wait for another transaction (else they are refused).
   */
  settle(
    batch: readonly number[],
    outcome: TransactionOutcome,
    replayable: boolean,
  ): Failure | undefined {
    let accepted: readonly RecipientResult[];
    let rejected: readonly RecipientResult[];
    const deferred: number[] = [];
    if (outcome.ok) {
      const { result } = outcome;
      accepted = result.accepted;
      rejected = result.rejected;
      if (replayable) { for (const d of result.deferred) deferred.push(batch[d.position]!); }
      else rejected = [...rejected, ...result.deferred.map((d) => d.result)];
      this.#reply = result.reply;
    } else {
      const { error } = outcome.failure;
      if (!(error instanceof SmtpRecipientsError) || this.#accepted.length === 0) {
        return outcome.failure;
      }
      accepted = error.accepted;
      rejected = error.rejected;
    }
    this.#accepted.push(...accepted);
    this.#rejected.push(...rejected);
    const done = new Set(batch);
    for (const position of deferred) done.delete(position);
    this.#waiting = (this.#waiting ?? []).filter((position) => !done.has(position));
    return undefined;
  }

  /** Whether every recipient is settled (accepted or refused). */
  get done(): boolean {
    return this.#waiting !== undefined && this.#waiting.length === 0;
  }

  /** The recipients that accepted the message so far (a copy). */
  get accepted(): RecipientResult[] {
    return [...this.#accepted];
  }

  /** The recipients that refused the message so far (a copy). */
  get rejected(): RecipientResult[] {
    return [...this.#rejected];
  }

  /** The reply to the data of the last transaction that delivered the message. */
  get reply(): SmtpReply | undefined {
    return this.#reply;
  }
}
