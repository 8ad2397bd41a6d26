/**
 * {@linkcode Outbox}: durable sending over a store adapter (a queue engine) and an
 * {@linkcode SmtpPool}.
 *
 * @module
 */

import { readWhole } from "../dkim/_bodies.ts";
import type { Message } from "../mime/mod.ts";
import { Outgoing } from "../outgoing.ts";
import { fileOpener } from "../client_options.ts";
import { type PoolOptions, SmtpPool } from "../pool.ts";
import { Capabilities } from "../protocol/capabilities.ts";
import type { RawMessage } from "../types.ts";
import {
  afterAttempt,
  afterLostWorker,
  claimed,
  type Outcome,
  type Policy,
  waitingRecipients,
} from "./_policy.ts";
import {
  type OutboxEvent,
  type OutboxJob,
  type OutboxLease,
  OutboxLeaseLostError,
  type OutboxState,
  type OutboxStore,
} from "./types.ts";
import {
  checkEnqueueOptions,
  type EnqueueOptions,
  type OutboxOptions,
  resolveOutboxOptions,
} from "./outbox_options.ts";

/** `promise`, or a rejection with {@linkcode OutboxLeaseLostError} after `ms`. */
async function bounded(promise: Promise<void>, ms: number, id: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new OutboxLeaseLostError(id)), ms);
  });
  try {
    await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The id of a job enqueued with an idempotency key: SHA-256 of the key, in hex. */
async function idFor(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
  return "k" + [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A durable outbox: {@linkcode Outbox.enqueue} checks and composes a message at once and
 * stores its exact bytes in a queue engine; workers ({@linkcode Outbox.start}, in any number of
 * processes on the same store) send it through an {@linkcode SmtpPool}, retry what was not
 * delivered with back-off, and record per recipient what the server said.
 *
 * Delivery rules: accepted recipients are never sent again, deferred ones (4xx) are retried
 * alone, refused ones (5xx) are final; a failure that may have delivered the message ends in
 * state `unknown` and is not resent (unless `resendUnknown`). Before the end of the message is
 * written, the job is marked as possibly delivered (write-ahead), so a worker killed at any
 * instant leaves a job that is resumed safely; leases keep two workers from one job.
 *
 * @example Enqueue, send with one worker, look at the result
 * ```ts
 * import { denoKvStore, Outbox } from "@postie/smtp/outbox";
 * import { MockSmtpServer } from "@postie/smtp/testing";
 * import assert from "node:assert/strict";
 *
 * await using server = new MockSmtpServer();
 * using kv = await Deno.openKv(":memory:");
 * const outbox = new Outbox({
 *   smtp: { hostname: "smtp.example.com", transport: server.transport },
 *   store: denoKvStore(kv),
 * });
 * const id = await outbox.enqueue(
 *   { from: "me@example.com", to: "you@example.com", subject: "Hi", text: "Hello" },
 *   { idempotencyKey: "welcome-42" },
 * );
 * outbox.start();
 * await outbox.drain();
 * await outbox.close();
 * const job = await outbox.status(id);
 * assert.equal(job?.state, "sent");
 * assert.equal(job?.recipients[0]?.state, "accepted");
 * assert.equal(server.messages.length, 1);
 * ```
 */
export class Outbox {
  readonly #store: OutboxStore;
  readonly #smtp: PoolOptions;
  readonly #policy: Policy;
  readonly #leaseMs: number;
  readonly #pollMs: number;
  readonly #maxBytes: number;
  readonly #onEvent: ((event: OutboxEvent) => void) | undefined;
  #pool: SmtpPool | undefined;
  #running = false;
  #loops: Promise<void>[] = [];
  #wakers = new Set<() => void>();
  /** Whether an idle loop is polling the store (the other idle loops wait for it). */
  #polling = false;

  /**
   * Creates the outbox; nothing is sent until {@linkcode Outbox.start}.
   *
   * @param options The server, the store and the retry policy.
   */
  constructor(options: OutboxOptions) {
    const resolved = resolveOutboxOptions(options);
    this.#store = resolved.store;
    this.#smtp = resolved.smtp;
    // The pool's options are checked now, not when the first job is sent.
    new SmtpPool(this.#smtp);
    this.#policy = resolved.policy;
    this.#leaseMs = resolved.leaseMs;
    this.#pollMs = resolved.pollMs;
    this.#maxBytes = resolved.maxBytes;
    this.#onEvent = resolved.onEvent;
  }

  /**
   * Checks and composes a message now (a bad address or a missing attachment file rejects
   * here, as `send` would) and stores its exact bytes with its envelope.
   *
   * @param message A message to compose, or a raw message and its envelope.
   * @param options Idempotency key, earliest send time, DSN, envelope.
   * @returns The job's id (the first job's, for an idempotency key enqueued before).
   */
  async enqueue(message: Message | RawMessage, options: EnqueueOptions = {}): Promise<string> {
    const due = checkEnqueueOptions(options);
    const { idempotencyKey, dsn, envelope } = options;
    if (message && typeof message === "object" && "raw" in message && message.binary) {
      throw new TypeError("Cannot enqueue message: binary MIME messages are not supported");
    }
    // Files are read as the pool would read them: through its transport's opener, if it has one.
    const outgoing = new Outgoing(message, envelope, fileOpener(this.#smtp), []);
    // Composed without 8-bit parts: the stored bytes suit any server.
    const prepared = await outgoing.prepare(Capabilities.none("outbox"));
    const body = prepared.body instanceof Uint8Array
      ? prepared.body
      : await readWhole(prepared.body, this.#maxBytes, prepared.ownsBody, "the message");
    if (body.length > this.#maxBytes) {
      throw new RangeError(
        `Cannot enqueue message: ${body.length} bytes, more than maxMessageBytes ` +
          `(${this.#maxBytes})`,
      );
    }
    const now = Date.now();
    const job: OutboxJob = {
      id: idempotencyKey === undefined ? crypto.randomUUID() : await idFor(idempotencyKey),
      state: "queued",
      attempts: 0,
      createdAt: now,
      updatedAt: now,
      nextAttemptAt: due,
      from: prepared.from,
      recipients: prepared.to.map((address) => ({ address, state: "pending" })),
      size: body.length,
      ...(prepared.messageId === undefined ? {} : { messageId: prepared.messageId }),
      ...(dsn === undefined ? {} : { dsn }),
      ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
    };
    const stored = await this.#store.add(job, body);
    if (stored === job || stored.createdAt === job.createdAt) this.#wake();
    return stored.id;
  }

  /**
   * Starts a worker in this process: `concurrency` jobs sent at a time. Any number of
   * processes may run workers on the same store. Does nothing when already started.
   *
   * @param options How many jobs to send at once.
   */
  start(options: { concurrency?: number } = {}): void {
    const concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(`Invalid concurrency: must be a positive integer, got ${concurrency}`);
    }
    if (this.#running) return;
    this.#running = true;
    this.#pool ??= new SmtpPool(this.#smtp);
    for (let i = 0; i < concurrency; i++) this.#loops.push(this.#loop());
  }

  /**
   * Resolves once no job in the store is queued, waiting for a retry or being sent (by any
   * worker on the store).
   *
   * @param options `signal` stops waiting.
   */
  async drain(options: { signal?: AbortSignal } = {}): Promise<void> {
    while ((await this.#store.unfinished()) > 0) {
      options.signal?.throwIfAborted();
      await this.#sleep(this.#pollMs, options.signal);
    }
  }

  /**
   * Stops taking jobs, lets the jobs in flight finish, then closes the pool. Jobs still queued
   * stay in the store for the next worker. Idempotent.
   */
  async close(): Promise<void> {
    this.#running = false;
    this.#wake();
    const loops = this.#loops;
    this.#loops = [];
    await Promise.all(loops);
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.close();
  }

  /** `await using` support: {@linkcode Outbox.close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * A job: its state, attempts, next attempt time, and each recipient with the server's reply.
   *
   * @param id The id {@linkcode Outbox.enqueue} returned.
   * @returns The job, or `undefined` when there is none with this id.
   */
  status(id: string): Promise<OutboxJob | undefined> {
    return this.#store.get(id);
  }

  /**
   * Jobs, in one state when `state` is given.
   *
   * @param filter The state, and at most how many.
   * @returns The jobs.
   */
  list(filter: { state?: OutboxState; limit?: number } = {}): Promise<OutboxJob[]> {
    return this.#store.list(filter);
  }

  #wake(): void {
    const wakers = [...this.#wakers];
    this.#wakers.clear();
    for (const wake of wakers) wake();
  }

  /** Waits `ms` (`Infinity`: no limit), or until woken (a job found or enqueued here, close). */
  #sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakers.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = ms === Infinity ? undefined : setTimeout(done, ms);
      this.#wakers.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      let lease: OutboxLease | undefined;
      let previous: OutboxState = "queued";
      const claim = (job: OutboxJob) => {
        previous = job.state;
        return claimed(job, Date.now());
      };
      try {
        lease = await this.#store.take(claim, this.#leaseMs);
      } catch {
        // The store is unavailable for now: try again after a pause.
      }
      if (!lease) {
        // One loop polls the store while idle; the others wait until it finds work.
        if (!this.#running) continue;
        if (this.#polling) {
          await this.#sleep(Infinity);
        } else {
          this.#polling = true;
          await this.#sleep(this.#pollMs);
          this.#polling = false;
        }
        continue;
      }
      // There may be more: the loops that wait look too.
      this.#wake();
      try {
        await this.#process(lease, previous);
      } catch {
        // Lease lost, or the store failed: the job goes back to whoever takes it next.
      }
    }
  }

  #emit(previous: OutboxState, job: OutboxJob): void {
    if (previous === job.state && previous !== "sending") return;
    try {
      this.#onEvent?.({ id: job.id, previous, state: job.state, job });
    } catch {
      // A listener's failure is not the job's.
    }
  }

  async #process(lease: OutboxLease, previous: OutboxState): Promise<void> {
    const taken = lease.job;
    this.#emit(previous, taken);
    if (taken.terminatorAt !== undefined) {
      // Its worker stopped after marking it: the server may have it.
      const next = afterLostWorker(taken, this.#policy, Date.now());
      if (next.state === "unknown") return await this.#finish(lease, taken, next);
      return await this.#send(lease, next);
    }
    return await this.#send(lease, taken);
  }

  async #send(lease: OutboxLease, job: OutboxJob): Promise<void> {
    const pool = this.#pool;
    if (!pool) return;
    const body = await lease.body();
    let current = job;
    let lost = false;
    const heartbeat = setInterval(() => {
      lease.extend().catch(() => lost = true);
    }, this.#leaseMs / 3);
    let outcome: Outcome;
    try {
      const to = waitingRecipients(job);
      const result = await pool.send({ raw: body, envelope: { from: job.from, to } }, {
        ...(job.dsn === undefined ? {} : { dsn: job.dsn }),
        beforeTerminator: async () => {
          if (lost) throw new OutboxLeaseLostError(job.id);
          current = { ...current, terminatorAt: Date.now() };
          // Bounded: a store that hangs must not hold the connection (the end is then not
          // written; a mark that lands late only makes the job unknown).
          await bounded(lease.update(current), this.#leaseMs / 2, job.id);
        },
      });
      outcome = { ok: true, result };
    } catch (error) {
      outcome = { ok: false, error };
    } finally {
      clearInterval(heartbeat);
    }
    if (!outcome.ok && outcome.error instanceof OutboxLeaseLostError) return;
    await this.#finish(lease, job, afterAttempt(current, outcome, this.#policy, Date.now()));
  }

  async #finish(lease: OutboxLease, before: OutboxJob, next: OutboxJob): Promise<void> {
    await lease.release(next);
    this.#emit(before.state, next);
  }
}
