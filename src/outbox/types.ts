/**
 * The outbox's values: a job's state and record, the events it sends, and the store adapter
 * interface that a queue engine implements ({@linkcode denoKvStore}, `bullmqStore`).
 *
 * @module
 */

import type { DsnOptions } from "../options.ts";
import type { SmtpReply } from "../types.ts";

/**
 * Where a job stands:
 * - `queued`: waiting for its first attempt (or its `notBefore` time);
 * - `sending`: a worker holds it and is sending it;
 * - `retrying`: an attempt failed without delivering it (4xx, or not sent): it waits for the
 *   next, with exponential back-off and jitter;
 * - `sent`: every recipient is final, accepted or refused for good (each listed);
 * - `failed`: given up (a 5xx, `maxAttempts` or `maxAgeMs`): a dead letter with its last reply;
 * - `unknown`: an attempt ended after the end of the message may have reached the server (the
 *   server may hold it): not sent again unless `resendUnknown` says so.
 */
export type OutboxState = "queued" | "sending" | "retrying" | "sent" | "failed" | "unknown";

/** States a job is never taken out of. */
export const FINAL_STATES: ReadonlySet<OutboxState> = new Set(["sent", "failed", "unknown"]);

/** What is known about one recipient of a job. */
export interface OutboxRecipient {
  /** The address as given to RCPT TO. */
  readonly address: string;
  /**
   * `pending` (not tried yet, or the attempt did not get an answer for it), `accepted`,
   * `refused` (for good: a 5xx), or `deferred` (a 4xx: tried again alone).
   */
  readonly state: "pending" | "accepted" | "refused" | "deferred";
  /** The server's last reply about it. */
  readonly reply?: SmtpReply;
}

/** Why the last attempt of a job failed. */
export interface OutboxError {
  /** The error's class name, e.g. `SmtpReplyError`. */
  readonly name: string;
  /** The error's message. */
  readonly message: string;
  /** The server's reply, when there was one. */
  readonly reply?: SmtpReply;
}

/** One message in the outbox, as stored (plain JSON data, times in ms since the epoch). */
export interface OutboxJob {
  /** The job's id: random, or derived from the idempotency key. */
  readonly id: string;
  /** Where it stands. */
  readonly state: OutboxState;
  /** Attempts started so far. */
  readonly attempts: number;
  /** When it was enqueued. */
  readonly createdAt: number;
  /** When it last changed. */
  readonly updatedAt: number;
  /** When it is due next (for `queued` and `retrying`). */
  readonly nextAttemptAt: number;
  /** The envelope sender. */
  readonly from: string;
  /** Every envelope recipient and what became of it. */
  readonly recipients: readonly OutboxRecipient[];
  /** The message's Message-ID, when it was composed. */
  readonly messageId?: string;
  /** The size of the stored message in bytes. */
  readonly size: number;
  /** Delivery status notification requests. */
  readonly dsn?: DsnOptions;
  /** The idempotency key it was enqueued with. */
  readonly idempotencyKey?: string;
  /** Why the last attempt failed, when it did. */
  readonly lastError?: OutboxError;
  /**
   * Write-ahead mark: set (to the time) just before the end of the message is written, cleared
   * once the attempt's outcome is recorded. A job found with it by another worker may have been
   * delivered.
   */
  readonly terminatorAt?: number;
}

/** A state change of a job, given to `onEvent`. */
export interface OutboxEvent {
  /** The job's id. */
  readonly id: string;
  /** The state before. */
  readonly previous: OutboxState;
  /** The state now. */
  readonly state: OutboxState;
  /** The job as recorded now. */
  readonly job: OutboxJob;
}

/**
 * A job taken by one worker. The lease keeps other workers off it until it runs out; every
 * write checks it atomically (versionstamps, or the engine's job lock) and extends it.
 */
export interface OutboxLease {
  /** The job as claimed. */
  readonly job: OutboxJob;
  /** The stored message bytes. */
  body(): Promise<Uint8Array>;
  /**
   * Saves the job and extends the lease; rejects with {@linkcode OutboxLeaseLostError} when
   * the lease was lost (another worker took the job).
   */
  update(job: OutboxJob): Promise<void>;
  /** Extends the lease; rejects with {@linkcode OutboxLeaseLostError} when it was lost. */
  extend(): Promise<void>;
  /**
   * Saves the job and ends the lease: a final job stays as it is, a `queued` or `retrying` one
   * is due again at `nextAttemptAt`. Rejects with {@linkcode OutboxLeaseLostError} when the
   * lease was lost.
   */
  release(job: OutboxJob): Promise<void>;
}

/**
 * The adapter between the outbox and a queue engine. Implementations: {@linkcode denoKvStore}
 * (Deno KV) and `bullmqStore` (BullMQ on Redis, `@postie/smtp/outbox/bullmq`).
 */
export interface OutboxStore {
  /**
   * Stores a new job with its message, unless a job with the same id exists.
   *
   * @returns The job as stored: the new one, or the one that existed.
   */
  add(job: OutboxJob, body: Uint8Array): Promise<OutboxJob>;
  /**
   * Leases a job that is due: `queued` or `retrying` with `nextAttemptAt` passed, or `sending`
   * under a lease that ran out (its worker died). `claim` gives the job as it is to be stored.
   *
   * @returns The lease, or `undefined` when no job is due.
   */
  take(claim: (job: OutboxJob) => OutboxJob, leaseMs: number): Promise<OutboxLease | undefined>;
  /** The job with this id. */
  get(id: string): Promise<OutboxJob | undefined>;
  /** Jobs, in the given state when one is given, at most `limit`. */
  list(filter: { state?: OutboxState; limit?: number }): Promise<OutboxJob[]>;
  /** How many jobs are not final (queued, sending or retrying). */
  unfinished(): Promise<number>;
}

/** A worker's lease on a job ran out and another worker took it: this worker must stop. */
export class OutboxLeaseLostError extends Error {
  /**
   * Creates the error.
   *
   * @param id The job's id.
   */
  constructor(id: string) {
    super(`Lease lost on outbox job ${id}: another worker took it`);
    this.name = "OutboxLeaseLostError";
  }
}
