/**
 * What an attempt's outcome does to a job, as pure functions of values: the job before, how
 * the send ended, the policy and the time. The worker stores what they return.
 *
 * @module
 */

import { SmtpError, SmtpRecipientsError, SmtpReplyError, SmtpUnsupportedError } from "../errors.ts";
import type { RecipientResult, SendResult, SmtpReply } from "../types.ts";
import type { OutboxError, OutboxJob, OutboxRecipient } from "./types.ts";

/** The retry policy, defaults applied. */
export interface Policy {
  readonly maxAttempts: number;
  readonly maxAgeMs: number;
  readonly retryDelayMs: number;
  readonly maxRetryDelayMs: number;
  readonly resendUnknown: boolean;
}

/** How one attempt ended. */
export type Outcome =
  | { readonly ok: true; readonly result: SendResult }
  | { readonly ok: false; readonly error: unknown };

/** Stored replies are cut to this many lines of this many characters. */
const MAX_REPLY_LINES = 8;
const MAX_LINE = 512;

/** A reply cut to a size fit for storage. */
export function storedReply(reply: SmtpReply): SmtpReply {
  const lines = reply.lines.slice(0, MAX_REPLY_LINES).map((line) => line.slice(0, MAX_LINE));
  const enhanced = reply.enhancedStatus;
  return enhanced === undefined ? { code: reply.code, lines } : {
    code: reply.code,
    enhancedStatus: {
      class: enhanced.class,
      subject: enhanced.subject,
      detail: enhanced.detail,
    },
    lines,
  };
}

/** The job as a worker claims it: `sending`, one more attempt. */
export function claimed(job: OutboxJob, now: number): OutboxJob {
  return { ...job, state: "sending", attempts: job.attempts + 1, updatedAt: now };
}

/** The recipients still to send to: not yet answered, or answered with a 4xx. */
export function waitingRecipients(job: OutboxJob): string[] {
  return job.recipients
    .filter((r) => r.state === "pending" || r.state === "deferred")
    .map((r) => r.address);
}

/**
 * The back-off before attempt `attempts + 1`: `retryDelayMs * 2^(attempts - 1)` up to
 * `maxRetryDelayMs`, of which a random half is taken off (jitter, so that jobs that failed
 * together do not come back together).
 */
export function backoff(policy: Policy, attempts: number, random = Math.random()): number {
  const full = Math.min(policy.maxRetryDelayMs, policy.retryDelayMs * 2 ** (attempts - 1));
  return Math.round(full / 2 + (full / 2) * random);
}

function describe(error: unknown): OutboxError {
  const name = error instanceof Error ? error.constructor.name || error.name : "Error";
  const message = error instanceof Error ? error.message : String(error);
  const reply = error instanceof SmtpReplyError
    ? error.reply
    : error instanceof SmtpRecipientsError
    ? error.rejected[0]?.reply
    : undefined;
  return reply === undefined
    ? { name, message: message.slice(0, 2000) }
    : { name, message: message.slice(0, 2000), reply: storedReply(reply) };
}

/** Recipients with the server's answers about them applied. */
function answered(
  recipients: readonly OutboxRecipient[],
  accepted: readonly RecipientResult[],
  rejected: readonly RecipientResult[],
): OutboxRecipient[] {
  const answers = new Map<string, OutboxRecipient>();
  for (const r of accepted) {
    answers.set(r.address, { address: r.address, state: "accepted", reply: storedReply(r.reply) });
  }
  for (const r of rejected) {
    const state = r.reply.code >= 500 ? "refused" : "deferred";
    answers.set(r.address, { address: r.address, state, reply: storedReply(r.reply) });
  }
  return recipients.map((r) =>
    r.state === "accepted" || r.state === "refused" ? r : answers.get(r.address) ?? r
  );
}

/**
 * The job after an attempt: recipients answered, and the next state.
 *
 * - Accepted and refused (5xx) recipients are final; deferred (4xx) ones wait for a retry.
 * - A failure that may have delivered the message (`outcomeUnknown`) ends in `unknown`
 *   (`retrying` under `resendUnknown`).
 * - A 5xx reply to the message as a whole (MAIL, the data) ends in `failed`, its waiting
 *   recipients refused with that reply; so does a server that lacks what the message needs
 *   (its recipients left as they were).
 * - Anything else was not sent: `retrying`, with back-off, until `maxAttempts` or `maxAgeMs`
 *   end it in `failed`.
 * - Once no recipient waits: `sent` when at least one accepted, else `failed`.
 */
export function afterAttempt(
  job: OutboxJob,
  outcome: Outcome,
  policy: Policy,
  now: number,
  random = Math.random(),
): OutboxJob {
  const { terminatorAt: _, lastError: __, ...rest } = job;
  let next: OutboxJob = { ...rest, updatedAt: now };
  let verdict: "retry" | "failed" | "unknown" = "retry";
  if (outcome.ok) {
    const { result } = outcome;
    next = { ...next, recipients: answered(job.recipients, result.accepted, result.rejected) };
    const deferred = result.rejected.find((r) => r.reply.code < 500);
    if (deferred) {
      next = {
        ...next,
        lastError: {
          name: "SmtpRecipientsError",
          message: `Recipient deferred: ${deferred.address}`,
          reply: storedReply(deferred.reply),
        },
      };
    }
  } else {
    const { error } = outcome;
    next = { ...next, lastError: describe(error) };
    if (error instanceof SmtpError) {
      const rejected = error instanceof SmtpRecipientsError ? error.rejected : [];
      next = { ...next, recipients: answered(next.recipients, error.accepted, rejected) };
    }
    if (error instanceof SmtpError && error.outcomeUnknown) {
      verdict = policy.resendUnknown ? "retry" : "unknown";
    } else if (
      (error instanceof SmtpReplyError && error.code >= 500) ||
      error instanceof SmtpUnsupportedError
    ) {
      verdict = "failed";
      if (error instanceof SmtpReplyError) {
        // The server refused the message: for every recipient still waiting, for good.
        const reply = storedReply(error.reply);
        next = {
          ...next,
          recipients: next.recipients.map((r) =>
            r.state === "pending" || r.state === "deferred" ? { ...r, state: "refused", reply } : r
          ),
        };
      }
    }
  }
  if (verdict === "unknown") return { ...next, state: "unknown" };
  const waiting = waitingRecipients(next).length;
  const anyAccepted = next.recipients.some((r) => r.state === "accepted");
  if (waiting === 0) return { ...next, state: anyAccepted ? "sent" : "failed" };
  if (verdict === "failed") return { ...next, state: "failed" };
  return retryOrGiveUp(next, policy, now, random);
}

/** `retrying` after a back-off, or `failed` when the job is out of attempts or too old. */
export function retryOrGiveUp(
  job: OutboxJob,
  policy: Policy,
  now: number,
  random = Math.random(),
): OutboxJob {
  const nextAttemptAt = now + backoff(policy, Math.max(1, job.attempts), random);
  if (job.attempts >= policy.maxAttempts) {
    return { ...job, state: "failed", lastError: gaveUp(job, `after ${job.attempts} attempts`) };
  }
  if (nextAttemptAt - job.createdAt > policy.maxAgeMs) {
    return { ...job, state: "failed", lastError: gaveUp(job, `older than maxAgeMs`) };
  }
  return { ...job, state: "retrying", nextAttemptAt };
}

function gaveUp(job: OutboxJob, why: string): OutboxError {
  const last = job.lastError;
  const message = `Gave up ${why}` + (last ? `: ${last.message}` : "");
  return last?.reply ? { name: last.name, message, reply: last.reply } : {
    name: last?.name ?? "Error",
    message,
  };
}

/**
 * A job found `sending` with its write-ahead mark by a worker other than the one that set it:
 * that worker stopped after the end of the message may have gone out. `unknown`, or under
 * `resendUnknown` sent again.
 */
export function afterLostWorker(job: OutboxJob, policy: Policy, now: number): OutboxJob {
  const { terminatorAt: _, ...rest } = job;
  const lastError = {
    name: "OutboxWorkerLost",
    message: "A worker stopped while the end of the message was being sent: the server may " +
      "have it (outcome unknown)",
  };
  if (policy.resendUnknown) return { ...rest, lastError, updatedAt: now };
  return { ...rest, state: "unknown", lastError, updatedAt: now };
}
