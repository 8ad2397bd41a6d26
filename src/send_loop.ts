/**
 * The loops of one send, apart from the connection they run on: attempts until the message is
 * sent or the delivery rules say stop (`delivery.ts`), transactions until every recipient is
 * settled, and one transaction's outcome settling the recipients it was given. The client gives
 * each loop the step it runs on its connection.
 *
 * @module
 */

import { type Failure, mayRetry, reportedError } from "./delivery.ts";
import { describeRecipients, SmtpRecipientsError } from "./errors.ts";
import type { SendOptions } from "./options.ts";
import type { Outgoing, PreparedMessage } from "./outgoing.ts";
import type { Capabilities } from "./protocol/capabilities.ts";
import type { TransactionOutcome, Written } from "./protocol/_transaction.ts";
import type { SendResult } from "./types.ts";

/** How many times the client itself sends a message again after it was not sent. */
const CLIENT_RETRIES = 1;

/** How one attempt ended: what the server accepted, or how far it got and why it stopped. */
export type AttemptOutcome =
  | { readonly ok: true; readonly result: SendResult }
  | { readonly ok: false; readonly failure: Failure };

/**
 * The result of a sent message, or the error that `rejectOnPartialFailure` asks for when some
 * recipients refused it (the message was delivered to the others all the same).
 */
export function finishSend(result: SendResult, options: SendOptions): SendResult {
  if (options.rejectOnPartialFailure && result.rejected.length > 0) {
    throw new SmtpRecipientsError(
      `Message sent, but ${result.rejected.length} of ` +
        `${result.accepted.length + result.rejected.length} recipients were refused: ` +
        describeRecipients(result.rejected),
      result.accepted,
      result.rejected,
    );
  }
  return result;
}

/**
 * Attempts until the message is sent or the delivery rules say stop; at most
 * {@linkcode CLIENT_RETRIES} retries, which send only to the recipients that do not have the
 * message yet. The message's unread body is released at the end.
 *
 * @param outgoing The message.
 * @param options The send options (`signal`, `rejectOnPartialFailure`).
 * @param attempt One attempt (every transaction the recipients need).
 * @param note Writes a line to the transcript (before a retry).
 * @returns The result of the attempt that sent the message.
 */
export async function deliver(
  outgoing: Outgoing,
  options: SendOptions,
  attempt: () => Promise<AttemptOutcome>,
  note: (line: string) => void,
): Promise<SendResult> {
  try {
    for (let attempts = 0;; attempts++) {
      const outcome = await attempt();
      if (outcome.ok) return finishSend(outcome.result, options);
      const { failure } = outcome;
      const retry = attempts < CLIENT_RETRIES && !options.signal?.aborted &&
        mayRetry(failure, outgoing.replayable, "client");
      if (!retry) throw reportedError(failure, outgoing.accepted);
      // The failed attempt's connection is closed already (a 421 or a broken connection).
      note(`retrying on a new connection after: ${(failure.error as Error).message}`);
    }
  } finally {
    await outgoing.release();
  }
}

/**
 * Sends to every recipient still waiting: one transaction after another, until all are settled
 * or one fails. More than one when the server takes fewer recipients per transaction than the
 * message has (`LIMITS RCPTMAX`, or "452 4.5.3 too many recipients"); the result merges them.
 *
 * @param outgoing The message.
 * @param transaction One transaction in its turn: the failure that ends the send, if any.
 * @returns How the attempt ended.
 */
export async function sendToAll(
  outgoing: Outgoing,
  transaction: () => Promise<Failure | undefined>,
): Promise<AttemptOutcome> {
  while (true) {
    let failure: Failure | undefined;
    try {
      failure = await transaction();
    } catch (error) {
      // Not even scheduled (the client quit meanwhile), or aborted: once some recipients
      // have the message, it is a failure of the send, reported with them.
      if (outgoing.accepted.length === 0) throw error;
      failure = { stage: "unsent", error };
    }
    if (failure) return { ok: false, failure };
    if (outgoing.done) return { ok: true, result: outgoing.result() };
  }
}

/**
 * One transaction of `outgoing`: the body prepared, the recipients of this batch chosen, the
 * transaction run; handed back once it has written everything, with the rest of it: its outcome
 * settling the recipients (or ending the send).
 *
 * @param outgoing The message.
 * @param capabilities What the server offers.
 * @param run Runs the transaction for `message` to the recipients at `batch`; a throw means
 *   nothing was written.
 * @returns The rest: the failure that ends the send, or `undefined` when the transaction counts.
 */
export async function transact(
  outgoing: Outgoing,
  capabilities: Capabilities,
  run: (message: PreparedMessage, batch: readonly number[]) => Promise<Written<TransactionOutcome>>,
): Promise<Written<Failure | undefined>> {
  const message = await outgoing.prepare(capabilities);
  const batch = outgoing.batch(message, capabilities.limits);
  let outcome: Promise<TransactionOutcome>;
  try {
    outcome = (await run(message, batch)).rest;
  } catch (error) {
    outcome = Promise.resolve({ ok: false, failure: { stage: "unsent", error } });
  }
  return { rest: settle(outgoing, batch, outcome) };
}

/** Settles the recipients at `batch` with the transaction's outcome. */
async function settle(
  outgoing: Outgoing,
  batch: readonly number[],
  outcome: Promise<TransactionOutcome>,
): Promise<Failure | undefined> {
  try {
    const ended = await outcome;
    await outgoing.attempted(ended.ok ? "terminated" : ended.failure.stage);
    return outgoing.settle(batch, ended);
  } catch (error) {
    return { stage: "unsent", error };
  }
}
