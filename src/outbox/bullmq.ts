/**
 * `@postie/smtp/outbox/bullmq`: the outbox on BullMQ and Redis, for many worker processes on
 * many machines. `bullmq` (and its Redis client, `ioredis`) are optional peer dependencies:
 * only this entry point imports them.
 *
 * Mapping: one BullMQ job per message, its id the outbox job's id (BullMQ adds a job id once:
 * idempotency); its data the message (base64) and the job as enqueued; its progress the job as
 * it stands. A worker takes jobs with `Worker.getNextJob` under a lock (the lease), extends the
 * lock on every write, moves a job to `delayed` for a retry, to `completed` when sent and to
 * `failed` when failed or unknown. BullMQ's stalled-job check gives a job whose worker died
 * back to the queue once its lock runs out.
 *
 * @example An outbox on Redis
 * ```ts ignore
 * import { Outbox } from "@postie/smtp/outbox";
 * import { bullmqStore } from "@postie/smtp/outbox/bullmq";
 *
 * const store = bullmqStore({ connection: { host: "127.0.0.1", port: 6379 } });
 * const outbox = new Outbox({ smtp: { hostname: "smtp.example.com" }, store });
 * await outbox.enqueue({ from: "a@example.com", to: "b@example.com", text: "Hi" });
 * outbox.start({ concurrency: 4 });
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { type ConnectionOptions, type Job, type JobType, Queue, Worker } from "bullmq";

import {
  type OutboxJob,
  type OutboxLease,
  OutboxLeaseLostError,
  type OutboxState,
  type OutboxStore,
} from "./types.ts";

/** Options of {@linkcode bullmqStore}. */
export interface BullmqStoreOptions {
  /** How to reach Redis: ioredis options (`{ host, port }`) or a client, as BullMQ takes them. */
  readonly connection: ConnectionOptions;
  /**
   * The BullMQ queue's name: one outbox per name.
   * @default {"postie-outbox"}
   */
  readonly queueName?: string;
  /** BullMQ's key prefix. @default {"bull"} */
  readonly prefix?: string;
}

/** An {@linkcode OutboxStore} on BullMQ, with the connections it opened. */
export interface BullmqStore extends OutboxStore {
  /** The BullMQ queue (for its own monitoring tools). */
  readonly queue: Queue;
  /** Closes the queue and the worker connections. */
  close(): Promise<void>;
}

interface Data {
  readonly job: OutboxJob;
  /** The message, base64; emptied once it was sent. */
  readonly body: string;
}

type BullJob = Job<Data, unknown, string>;

/** The job as it stands: its progress once a worker wrote it, else as enqueued. */
function recordOf(bull: BullJob): OutboxJob {
  const progress = bull.progress as unknown;
  if (progress && typeof progress === "object" && "id" in progress) return progress as OutboxJob;
  return bull.data.job;
}

/** BullMQ lists in which a job in each state may be. */
const LISTS: Record<OutboxState, JobType[]> = {
  queued: ["wait", "delayed", "prioritized"],
  sending: ["active", "wait"],
  retrying: ["delayed", "wait"],
  sent: ["completed"],
  failed: ["failed"],
  unknown: ["failed"],
};

/**
 * An {@linkcode OutboxStore} on BullMQ (Redis). Close it with `close()` when done.
 *
 * @param options How to reach Redis, and the queue's name.
 * @returns The store.
 */
export function bullmqStore(options: BullmqStoreOptions): BullmqStore {
  return new BullStore(options);
}

class BullStore implements BullmqStore {
  readonly queue: Queue;
  readonly #options: BullmqStoreOptions;
  readonly #name: string;
  #worker: Worker | undefined;
  #stalledTimer: Promise<void> | undefined;

  constructor(options: BullmqStoreOptions) {
    this.#options = options;
    this.#name = options.queueName ?? "postie-outbox";
    this.queue = new Queue(this.#name, {
      connection: options.connection,
      ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
    });
  }

  async add(job: OutboxJob, body: Uint8Array): Promise<OutboxJob> {
    const existing = await this.queue.getJob(job.id) as BullJob | undefined;
    if (existing) return recordOf(existing);
    const data: Data = { job, body: Buffer.from(body).toString("base64") };
    await this.queue.add("message", data, {
      jobId: job.id,
      delay: Math.max(0, job.nextAttemptAt - Date.now()),
      attempts: 1,
      removeOnComplete: false,
      removeOnFail: false,
    });
    const stored = await this.queue.getJob(job.id) as BullJob | undefined;
    return stored ? recordOf(stored) : job;
  }

  async #workerFor(leaseMs: number): Promise<Worker> {
    if (!this.#worker) {
      this.#worker = new Worker(this.#name, null, {
        connection: this.#options.connection,
        ...(this.#options.prefix === undefined ? {} : { prefix: this.#options.prefix }),
        autorun: false,
        lockDuration: leaseMs,
        // A job whose worker died goes back to the queue however often that happens: the
        // outbox decides what becomes of it.
        maxStalledCount: Number.MAX_SAFE_INTEGER,
        stalledInterval: Math.min(30_000, leaseMs),
      });
      this.#stalledTimer = this.#worker.startStalledCheckTimer();
    }
    await this.#stalledTimer;
    return this.#worker;
  }

  async take(
    claim: (job: OutboxJob) => OutboxJob,
    leaseMs: number,
  ): Promise<OutboxLease | undefined> {
    const worker = await this.#workerFor(leaseMs);
    const token = crypto.randomUUID();
    const bull = await worker.getNextJob(token, { block: false }) as BullJob | undefined;
    if (!bull) return undefined;
    const job = claim(recordOf(bull));
    await bull.updateProgress(job as unknown as object);
    return new BullLease(bull, token, job, leaseMs);
  }

  async get(id: string): Promise<OutboxJob | undefined> {
    const bull = await this.queue.getJob(id) as BullJob | undefined;
    return bull ? recordOf(bull) : undefined;
  }

  async list(filter: { state?: OutboxState; limit?: number }): Promise<OutboxJob[]> {
    const types = filter.state === undefined
      ? [...new Set(Object.values(LISTS).flat())]
      : LISTS[filter.state];
    const jobs = await this.queue.getJobs(types, 0, -1, true) as BullJob[];
    const seen = new Set<string>();
    const records: OutboxJob[] = [];
    for (const bull of jobs) {
      if (!bull || seen.has(bull.id!)) continue;
      seen.add(bull.id!);
      const record = recordOf(bull);
      if (filter.state === undefined || record.state === filter.state) records.push(record);
    }
    records.sort((a, b) => a.createdAt - b.createdAt);
    return records.slice(0, filter.limit ?? Infinity);
  }

  async unfinished(): Promise<number> {
    const counts = await this.queue.getJobCounts(
      "active",
      "wait",
      "delayed",
      "prioritized",
    );
    return Object.values(counts).reduce((sum, n) => sum + n, 0);
  }

  async close(): Promise<void> {
    await this.#worker?.close();
    await this.queue.close();
  }
}

class BullLease implements OutboxLease {
  readonly #bull: BullJob;
  readonly #token: string;
  readonly #leaseMs: number;
  #job: OutboxJob;

  constructor(bull: BullJob, token: string, job: OutboxJob, leaseMs: number) {
    this.#bull = bull;
    this.#token = token;
    this.#job = job;
    this.#leaseMs = leaseMs;
  }

  get job(): OutboxJob {
    return this.#job;
  }

  body(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(Buffer.from(this.#bull.data.body, "base64")));
  }

  /**
   * Extends the lock, or throws when it is another worker's now. The lock then holds for
   * `leaseMs`: a write right after it is made under the lock.
   */
  async extend(): Promise<void> {
    let extended: number;
    try {
      extended = await this.#bull.extendLock(this.#token, this.#leaseMs);
    } catch {
      extended = 0;
    }
    if (!extended) throw new OutboxLeaseLostError(this.#job.id);
  }

  async update(job: OutboxJob): Promise<void> {
    const since = Date.now();
    await this.extend();
    await this.#bull.updateProgress(job as unknown as object);
    // Written within the lock it extended: no other worker can have taken the job meanwhile.
    if (Date.now() - since > this.#leaseMs / 2) throw new OutboxLeaseLostError(job.id);
    this.#job = job;
  }

  async release(job: OutboxJob): Promise<void> {
    await this.extend();
    await this.#bull.updateProgress(job as unknown as object);
    this.#job = job;
    try {
      if (job.state === "sent") {
        await this.#bull.updateData({ job: this.#bull.data.job, body: "" });
        await this.#bull.moveToCompleted("sent", this.#token, false);
      } else if (job.state === "failed" || job.state === "unknown") {
        await this.#bull.moveToFailed(
          new Error(job.lastError?.message ?? job.state),
          this.#token,
          false,
        );
      } else {
        await this.#bull.moveToDelayed(job.nextAttemptAt, this.#token);
      }
    } catch (error) {
      if (/lock/i.test(String(error))) throw new OutboxLeaseLostError(job.id);
      throw error;
    }
  }
}
