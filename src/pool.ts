/**
 * {@linkcode SmtpPool}: a bounded set of {@linkcode SmtpClient} connections shared by many
 * sends, with reuse, a per-connection message cap, idle expiry, a bounded wait queue, an
 * optional rate limit and retries of transient failures on a fresh connection.
 *
 * @module
 */

import { attemptSend, SmtpClient } from "./client.ts";
import type { AttemptOutcome } from "./send_loop.ts";
import { isTransient, mayRetry, reportedError } from "./delivery.ts";
import { resolveDkim, type ResolvedSigner } from "./dkim/_signer.ts";
import { PoolQueueFullError, SmtpConnectionError } from "./errors.ts";
import { Outgoing } from "./outgoing.ts";
import {
  CHECK_AFTER_IDLE_MS,
  type Job,
  keepsConnection,
  MAX_SENDS_PER_CONNECTION,
  newSlot,
  retryDelay,
  type Slot,
  unref,
} from "./_pool_jobs.ts";
import { type PoolOptions, type PoolStats, resolvePoolOptions } from "./pool_options.ts";
import { RateLimiter } from "./rate_limiter.ts";
import { fileOpener } from "./client_options.ts";
import type { FileOpener } from "./transport/types.ts";
import type { ClientOptions, SendOptions } from "./options.ts";
import type { SendResult } from "./types.ts";

export type { RateLimit } from "./rate_limiter.ts";
export type { PoolOptions, PoolStats } from "./pool_options.ts";

/** What {@linkcode SmtpPool.send} accepts: whatever {@linkcode SmtpClient.send} accepts. */
export type PoolMessage = Parameters<SmtpClient["send"]>[0];

/**
 * A pool of SMTP connections to one server. Sends wait in a bounded queue and are spread over
 * up to `maxConnections` connections, several at a time on each (the client pipelines them).
 * Connections are reused, replaced after `maxMessages`, checked with NOOP after a pause,
 * discarded when broken and closed after `idleTimeoutMs` without use.
 *
 * @example Send many messages over a few connections
 * ```ts
 * import { SmtpPool } from "@postie/smtp";
 * import { MockSmtpServer } from "@postie/smtp/testing";
 * import assert from "node:assert/strict";
 *
 * // A mail server in memory for this example (see @postie/smtp/testing).
 * await using server = new MockSmtpServer({ users: { "me@example.com": "secret" } });
 *
 * await using pool = new SmtpPool({
 *   hostname: "smtp.example.com",
 *   auth: { username: "me@example.com", password: "secret" },
 *   maxConnections: 3,
 *   transport: server.transport, // leave out to connect for real
 * });
 * const results = await Promise.all(["ann", "bob", "cyd"].map((name) =>
 *   pool.send({ from: "me@example.com", to: `${name}@example.com`, subject: "Hi", text: "Hello" })
 * ));
 * assert.equal(results.length, 3);
 * assert.equal(server.messages.length, 3);
 * assert.ok(server.connections <= 3);
 * ```
 */
export class SmtpPool implements AsyncDisposable {
  #options: ClientOptions;
  #maxConnections: number;
  #maxMessages: number;
  #idleTimeoutMs: number;
  #maxQueue: number;
  #rateLimiter: RateLimiter | undefined;
  #retries: number;
  #retryDelayMs: number;
  /** Who signs every message with DKIM, resolved once for all connections. */
  #dkim: readonly ResolvedSigner[];
  /** Opens `{ path }` attachments: the transport's opener, else the runtime's. */
  #openFile: FileOpener;

  #slots = new Set<Slot>();
  #queue: Job[] = [];
  /** Jobs waiting out a retry delay. */
  #delayed = new Set<Job>();
  /** Consecutive rounds of failed connection attempts, for the connect back-off. */
  #connectFailures = 0;
  #connectRound = 0;
  #connectPausedUntil = 0;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #closing = false;
  #closed: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  /**
   * Creates the pool; no connection is opened until the first send.
   *
   * @param options The server and client options, and the pool's limits.
   */
  constructor(options: PoolOptions) {
    const { settings, client } = resolvePoolOptions(options);
    const { maxConnections, maxMessages, idleTimeoutMs, maxQueue, rateLimit } = settings;
    const { retries, retryDelayMs } = settings;
    this.#options = client;
    this.#maxConnections = maxConnections;
    this.#maxMessages = maxMessages;
    this.#idleTimeoutMs = idleTimeoutMs;
    this.#maxQueue = maxQueue;
    this.#rateLimiter = rateLimit ? new RateLimiter(rateLimit, () => this.#pump()) : undefined;
    this.#retries = retries;
    this.#retryDelayMs = retryDelayMs;
    this.#dkim = client.dkim === undefined ? [] : resolveDkim(client.dkim);
    this.#openFile = fileOpener(client);
  }

  /** The pool's state right now. */
  get stats(): PoolStats {
    let idle = 0;
    let inFlight = 0;
    for (const slot of this.#slots) {
      inFlight += slot.inFlight;
      if (slot.client && slot.inFlight === 0 && !slot.retiring) idle++;
    }
    return {
      connections: this.#slots.size,
      idle,
      inFlight,
      queued: this.#queue.length + this.#delayed.size,
    };
  }

  /**
   * Sends one message over a pooled connection, waiting for one if all are busy. The message is
   * checked first (its fields and addresses, that it has a recipient, that its attachment files
   * can be read), so that a message that cannot be sent never waits for or opens a connection.
   *
   * @param message A message to compose, or a raw message and its envelope.
   * @param options Abort signal (also while the send waits in the queue) and send options.
   * @returns What the server accepted.
   */
  send(message: PoolMessage, options: SendOptions = {}): Promise<SendResult> {
    let outgoing: Outgoing;
    try {
      outgoing = Outgoing.of(message, options, this.#dkim, this.#openFile);
    } catch (error) {
      return Promise.reject(error);
    }
    const run = (client: SmtpClient) => attemptSend(client, outgoing, options);
    const enqueue = () => this.#enqueue<SendResult>("send", run, options.signal, outgoing);
    // Files are checked before the send waits for (or opens) a connection.
    return outgoing.hasFiles ? outgoing.checkFiles().then(enqueue) : enqueue();
  }

  /**
   * Borrows one connection for the exclusive use of `fn`, then returns it to the pool. If
   * `fn` quits or breaks the client, the connection is discarded.
   *
   * @param fn Works with the client; it must not keep it after its promise settles.
   * @param options `signal` aborts while waiting for a connection.
   * @returns What `fn` returns.
   */
  withClient<T>(
    fn: (client: SmtpClient) => Promise<T>,
    options: { signal?: AbortSignal } = {},
  ): Promise<T> {
    return this.#enqueue<T>("borrow", fn, options.signal, undefined);
  }

  /**
   * Closes the pool gracefully: refuses new sends, lets queued and running ones finish, then
   * sends QUIT on every connection. Idempotent.
   */
  close(): Promise<void> {
    this.#closed ??= this.#shutdown();
    return this.#closed;
  }

  /** `await using` support: {@linkcode SmtpPool.close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #enqueue<T>(
    kind: Job["kind"],
    run: (client: SmtpClient) => Promise<unknown>,
    signal: AbortSignal | undefined,
    outgoing: Outgoing | undefined,
  ): Promise<T> {
    if (this.#closing) {
      return Promise.reject(
        new SmtpConnectionError("Cannot send message: the pool is closed", "command"),
      );
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const job: Job = {
        kind,
        run,
        resolve: resolve as (value: unknown) => void,
        reject,
        signal,
        outgoing,
        attempts: 0,
        retryTimer: undefined,
        onAbort: undefined,
      };
      if (signal) {
        job.onAbort = () => this.#abortWaiting(job);
        signal.addEventListener("abort", job.onAbort, { once: true });
      }
      this.#queue.push(job);
      this.#pump();
      if (this.#queue.length > this.#maxQueue && this.#queue.at(-1) === job) {
        this.#queue.pop();
        this.#finish(job, new PoolQueueFullError(this.#maxQueue), false);
      }
    });
  }

  /** Settles a job and forgets its abort listener; releases a message body never read. */
  #finish(job: Job, value: unknown, ok: boolean): void {
    if (job.onAbort) job.signal!.removeEventListener("abort", job.onAbort);
    job.onAbort = undefined;
    void job.outgoing?.release();
    if (ok) job.resolve(value);
    else job.reject(value);
  }

  /** The caller aborted a job that has not started: it leaves the queue (or its delay) now. */
  #abortWaiting(job: Job): void {
    const index = this.#queue.indexOf(job);
    if (index !== -1) this.#queue.splice(index, 1);
    else if (this.#delayed.delete(job)) clearTimeout(job.retryTimer);
    else return; // running: the client handles the abort
    this.#finish(job, job.signal!.reason, false);
    this.#checkDrained();
  }

  /** Hands waiting jobs to connections, and opens connections for the rest. */
  #pump(): void {
    while (this.#queue.length > 0) {
      const job = this.#queue[0]!;
      if (job.kind === "send" && this.#rateLimiter?.allows() === false) break;
      const slot = this.#pickSlot(job.kind === "borrow");
      if (!slot) break;
      this.#queue.shift();
      this.#dispatch(job, slot);
    }
    this.#openConnections();
    for (const slot of this.#slots) this.#settleSlot(slot);
    this.#checkDrained();
  }

  /** The usable connection with the least work (and none for a borrow). */
  #pickSlot(exclusive: boolean): Slot | undefined {
    let best: Slot | undefined;
    for (const slot of this.#slots) {
      if (!slot.client || slot.borrowed || slot.checking || slot.retiring) continue;
      if (slot.inFlight >= (exclusive ? 1 : MAX_SENDS_PER_CONNECTION)) continue;
      if (!best || slot.inFlight < best.inFlight) best = slot;
      if (slot.inFlight === 0) break;
    }
    return best;
  }

  /** Opens connections while there is more work than open connections, up to the limit. */
  #openConnections(): void {
    if (this.#queue.length === 0) return;
    const now = performance.now();
    if (now < this.#connectPausedUntil) {
      this.#connectTimer ??= setTimeout(() => {
        this.#connectTimer = undefined;
        this.#pump();
      }, this.#connectPausedUntil - now);
      return;
    }
    let work = this.#queue.length;
    for (const slot of this.#slots) work += slot.inFlight;
    while (this.#slots.size < Math.min(this.#maxConnections, work)) this.#open();
  }

  #open(): void {
    const slot = newSlot(this.#connectRound);
    this.#slots.add(slot);
    SmtpClient.connect(this.#options).then((client) => {
      slot.client = client;
      slot.lastActive = performance.now();
      this.#connectFailures = 0;
      this.#pump();
    }, (error) => {
      this.#slots.delete(slot);
      this.#onConnectFailure(error, slot.round);
      this.#pump();
    });
  }

  /**
   * A connection could not be opened. When other connections work, the pool just pauses
   * opening more. Otherwise every waiting job counts it as one failed attempt (once per round
   * of parallel attempts): a permanent failure rejects them all, a transient one lets them wait
   * for a fresh attempt after a back-off, until their retries are spent.
   */
  #onConnectFailure(error: unknown, round: number): void {
    if (round !== this.#connectRound) return; // this round was already counted
    this.#connectRound++;
    const transient = isTransient({ stage: "unsent", error }, "pool");
    if (transient) {
      this.#connectPausedUntil = performance.now() +
        retryDelay(this.#retryDelayMs, this.#connectFailures++);
    }
    for (const slot of this.#slots) if (slot.client && !slot.retiring) return;
    const waiting = this.#queue;
    this.#queue = [];
    for (const job of waiting) {
      if (transient && job.attempts < this.#retries && job.outgoing?.replayable !== false) {
        job.attempts++;
        this.#queue.push(job);
      } else {
        this.#finish(job, error, false);
      }
    }
  }

  #dispatch(job: Job, slot: Slot): void {
    if (job.signal?.aborted) return this.#finish(job, job.signal.reason, false);
    clearTimeout(slot.idleTimer);
    slot.idleTimer = undefined;
    const client = slot.client!;
    slot.inFlight++;
    slot.uses++;
    if (slot.uses >= this.#maxMessages) slot.retiring = true;
    if (job.kind === "borrow") slot.borrowed = true;
    else this.#rateLimiter?.started();
    if (slot.inFlight === 1 && performance.now() - slot.lastActive > CHECK_AFTER_IDLE_MS) {
      slot.checking = true;
      client.noop().then(() => {
        slot.checking = false;
        void this.#run(job, slot, client);
      }, () => {
        // Broken while parked: discard it and give the job to another connection, uncharged.
        slot.checking = false;
        slot.inFlight--;
        slot.borrowed = false;
        slot.retiring = true;
        this.#queue.unshift(job);
        this.#pump();
      });
      return;
    }
    void this.#run(job, slot, client);
  }

  async #run(job: Job, slot: Slot, client: SmtpClient): Promise<void> {
    let ok = false;
    let outcome: unknown;
    let retry = false;
    try {
      outcome = await job.run(client);
      ok = true;
    } catch (error) {
      outcome = error;
    }
    slot.inFlight--;
    slot.lastActive = performance.now();
    if (job.kind === "borrow") {
      slot.borrowed = false;
      if (!client.connected) slot.retiring = true;
    } else if (ok) {
      const attempt = outcome as AttemptOutcome;
      if (attempt.ok) {
        outcome = attempt.result;
      } else {
        const aborted = job.signal?.aborted ?? false;
        ok = false;
        outcome = reportedError(attempt.failure, job.outgoing!.accepted);
        retry = !aborted && job.attempts < this.#retries &&
          mayRetry(attempt.failure, job.outgoing!.replayable, "pool");
        // A transient failure is tried again on a fresh connection: this one is done.
        if (aborted || retry || isTransient(attempt.failure, "pool")) slot.retiring = true;
      }
    }
    if (!ok && job.kind === "send") {
      if (!client.connected || !keepsConnection(outcome)) slot.retiring = true;
    }
    if (retry) this.#retryLater(job);
    else this.#finish(job, outcome, ok);
    this.#pump();
  }

  /** Puts a job back at the head of the queue after its back-off delay. */
  #retryLater(job: Job): void {
    const delay = retryDelay(this.#retryDelayMs, job.attempts);
    job.attempts++;
    this.#delayed.add(job);
    job.retryTimer = setTimeout(() => {
      this.#delayed.delete(job);
      job.retryTimer = undefined;
      this.#queue.unshift(job);
      this.#pump();
    }, delay);
  }

  /** Closes a retiring connection once its work is done; parks an idle one. */
  #settleSlot(slot: Slot): void {
    if (!slot.client || slot.closing || slot.inFlight > 0 || slot.checking) return;
    if (this.#closing && this.#queue.length === 0 && this.#delayed.size === 0) {
      slot.retiring = true;
    }
    if (slot.retiring) {
      clearTimeout(slot.idleTimer);
      slot.idleTimer = undefined;
      const client = slot.client;
      const closing = client.connected ? client.quit() : Promise.resolve(client.close());
      slot.closing = closing.catch(() => {}).then(() => {
        this.#slots.delete(slot);
        this.#pump();
      });
      return;
    }
    if (slot.idleTimer === undefined && this.#queue.length === 0) {
      slot.idleTimer = setTimeout(() => {
        slot.idleTimer = undefined;
        if (slot.inFlight > 0) return;
        slot.retiring = true;
        this.#settleSlot(slot);
      }, this.#idleTimeoutMs);
      unref(slot.idleTimer);
    }
  }

  #checkDrained(): void {
    if (!this.#drained) return;
    if (this.#queue.length > 0 || this.#delayed.size > 0 || this.#slots.size > 0) return;
    this.#drained();
    this.#drained = undefined;
  }

  async #shutdown(): Promise<void> {
    this.#closing = true;
    const drained = new Promise<void>((resolve) => this.#drained = resolve);
    this.#pump();
    await drained;
    this.#rateLimiter?.close();
    clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
  }
}
