/**
 * {@linkcode denoKvStore}: the outbox on Deno KV (a local SQLite file with `Deno.openKv(path)`,
 * or Deno Deploy's KV), or anything with the same API.
 *
 * Layout under the prefix: `job/<id>` the job and its lease, `body/<id>/<ref>/<n>` the message
 * in chunks (KV takes at most 64 KiB per value and 800 KiB per atomic operation), `due/<time>/<id>`
 * the queued and retrying jobs by due time, `lease/<until>/<id>` the jobs being sent by lease
 * end, `state/<state>/<id>` every job by state, `open/<id>` the jobs not final. Every change of a job is one atomic operation
 * checked against the versionstamp its writer read: two workers never both take a job, and a
 * worker whose lease was taken over cannot write.
 *
 * @module
 */

import { concat } from "../_bytes.ts";
import {
  FINAL_STATES,
  type OutboxJob,
  type OutboxLease,
  OutboxLeaseLostError,
  type OutboxState,
  type OutboxStore,
} from "./types.ts";

/** A part of a {@linkcode KvKey}. */
export type KvKeyPart = Uint8Array | string | number | bigint | boolean | symbol;
/** A Deno KV key. */
export type KvKey = readonly KvKeyPart[];

/** An atomic operation, as `Deno.AtomicOperation` has it (the part the store uses). */
export interface KvAtomicOperation {
  /** Fails the commit unless each key has this versionstamp (`null`: the key is absent). */
  check(...checks: { key: KvKey; versionstamp: string | null }[]): this;
  /** Sets a key. */
  set(key: KvKey, value: unknown): this;
  /** Deletes a key. */
  delete(key: KvKey): this;
  /** Commits the operation. */
  commit(): Promise<{ ok: true; versionstamp: string } | { ok: false }>;
}

/** The part of `Deno.Kv` the store uses: a `Deno.Kv` is one. */
export interface KvLike {
  /** Reads one key. */
  get<T = unknown>(key: KvKey): Promise<{ value: T | null; versionstamp: string | null }>;
  /** Lists keys by prefix, up to an end key. */
  list<T = unknown>(
    selector: { prefix: KvKey; end?: KvKey },
    options?: { limit?: number },
  ): AsyncIterable<{ key: KvKey; value: T; versionstamp: string }>;
  /** Starts an atomic operation. */
  atomic(): KvAtomicOperation;
}

/** Options of {@linkcode denoKvStore}. */
export interface DenoKvStoreOptions {
  /**
   * The key prefix of everything the store keeps: one outbox per prefix.
   * @default {["postie_outbox"]}
   */
  readonly prefix?: KvKey;
}

/** Bytes per body chunk: under KV's 64 KiB per value. */
const CHUNK = 60_000;
/** Chunks per atomic operation: under KV's 800 KiB per operation. */
const CHUNKS_PER_OP = 10;
/** A sent message's body chunks deleted in the job's last write when there are this few. */
const BODY_DELETES_PER_RELEASE = 16;
/** Due jobs looked at per take. */
const SCAN = 16;

interface Stored {
  readonly job: OutboxJob;
  readonly lease?: { readonly token: string; readonly until: number };
  readonly body: { readonly ref: string; readonly chunks: number };
}

/**
 * SQLite answers "database is locked" while another process writes the same file: such a call
 * is tried again after a short random pause, for up to about ten seconds.
 */
async function retried<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0;; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= 400 || !/database is locked|busy/i.test(String(error))) throw error;
      await new Promise((resolve) => setTimeout(resolve, 2 + Math.random() * 40));
    }
  }
}

/**
 * An {@linkcode OutboxStore} on Deno KV. The caller opens (and closes) the KV: a file for
 * one machine (`Deno.openKv("outbox.sqlite")`, any number of processes may share it), Deno
 * Deploy's KV for many. Needs `--unstable-kv` (or `"unstable": ["kv"]` in `deno.json`).
 *
 * @param kv A `Deno.Kv`, or an object with the same API.
 * @param options The key prefix.
 * @returns The store.
 *
 * @example An outbox on a local SQLite file
 * ```ts
 * import { denoKvStore, Outbox } from "@postie/smtp/outbox";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile({ suffix: ".sqlite" });
 * using kv = await Deno.openKv(path);
 * const outbox = new Outbox({
 *   smtp: { hostname: "smtp.example.com", port: 587 },
 *   store: denoKvStore(kv),
 * });
 * const id = await outbox.enqueue({ from: "a@example.com", to: "b@example.com", text: "Hi" });
 * assert.equal((await outbox.status(id))?.state, "queued");
 * ```
 */
export function denoKvStore(kv: KvLike, options: DenoKvStoreOptions = {}): OutboxStore {
  return new KvStore(kv, options.prefix ?? ["postie_outbox"]);
}

class KvStore implements OutboxStore {
  readonly kv: KvLike;
  readonly prefix: KvKey;

  constructor(kv: KvLike, prefix: KvKey) {
    this.kv = kv;
    this.prefix = prefix;
  }

  jobKey(id: string): KvKey {
    return [...this.prefix, "job", id];
  }
  dueKey(at: number, id: string): KvKey {
    return [...this.prefix, "due", at, id];
  }
  leaseKey(until: number, id: string): KvKey {
    return [...this.prefix, "lease", until, id];
  }
  stateKey(state: OutboxState, id: string): KvKey {
    return [...this.prefix, "state", state, id];
  }
  /** Present while the job is not final: one key per job, for a consistent count. */
  openKey(id: string): KvKey {
    return [...this.prefix, "open", id];
  }
  bodyKey(id: string, ref: string): KvKey {
    return [...this.prefix, "body", id, ref];
  }

  /** The key that schedules a stored job: its lease end, or its due time; none when final. */
  scheduleKey(stored: Stored): KvKey | undefined {
    const { job, lease } = stored;
    if (lease) return this.leaseKey(lease.until, job.id);
    return FINAL_STATES.has(job.state) ? undefined : this.dueKey(job.nextAttemptAt, job.id);
  }

  async add(job: OutboxJob, body: Uint8Array): Promise<OutboxJob> {
    const key = this.jobKey(job.id);
    const existing = await retried(() => this.kv.get<Stored>(key));
    if (existing.value) return existing.value.job;
    const ref = crypto.randomUUID();
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < body.length; at += CHUNK) chunks.push(body.subarray(at, at + CHUNK));
    const prefix = this.bodyKey(job.id, ref);
    const separate = chunks.length > CHUNKS_PER_OP;
    if (separate) {
      for (let first = 0; first < chunks.length; first += CHUNKS_PER_OP) {
        await retried(() => {
          const op = this.kv.atomic();
          chunks.slice(first, first + CHUNKS_PER_OP).forEach((chunk, i) => {
            op.set([...prefix, first + i], chunk);
          });
          return op.commit();
        });
      }
    }
    const stored: Stored = { job, body: { ref, chunks: chunks.length } };
    const result = await retried(() => {
      const op = this.kv.atomic()
        .check({ key, versionstamp: null })
        .set(key, stored)
        .set(this.scheduleKey(stored)!, true)
        .set(this.stateKey(job.state, job.id), true)
        .set(this.openKey(job.id), true);
      if (!separate) chunks.forEach((chunk, i) => op.set([...prefix, i], chunk));
      return op.commit();
    });
    if (result.ok) return job;
    // Added meanwhile by another enqueue with the same key: that one stands.
    if (separate) await this.deleteBody(job.id, ref, chunks.length);
    const winner = await retried(() => this.kv.get<Stored>(key));
    return winner.value?.job ?? job;
  }

  async deleteBody(id: string, ref: string, count: number): Promise<void> {
    const prefix = this.bodyKey(id, ref);
    for (let first = 0; first < count; first += 100) {
      await retried(() => {
        const op = this.kv.atomic();
        for (let i = first; i < Math.min(count, first + 100); i++) op.delete([...prefix, i]);
        return op.commit();
      });
    }
  }

  async #ids(end: KvKey, prefix: KvKey): Promise<string[]> {
    const ids: string[] = [];
    await retried(async () => {
      ids.length = 0;
      for await (const entry of this.kv.list({ prefix, end }, { limit: SCAN })) {
        ids.push(String(entry.key.at(-1)));
      }
    });
    return ids;
  }

  async take(
    claim: (job: OutboxJob) => OutboxJob,
    leaseMs: number,
  ): Promise<OutboxLease | undefined> {
    const now = Date.now();
    const ids = [
      ...await this.#ids([...this.prefix, "due", now + 1], [...this.prefix, "due"]),
      ...await this.#ids([...this.prefix, "lease", now + 1], [...this.prefix, "lease"]),
    ];
    // Workers that look at once should not all try the same job first.
    const start = Math.floor(Math.random() * ids.length);
    for (let n = 0; n < ids.length; n++) {
      const id = ids[(start + n) % ids.length]!;
      const key = this.jobKey(id);
      const entry = await retried(() => this.kv.get<Stored>(key));
      const stored = entry.value;
      if (!stored) continue;
      const due = stored.lease
        ? stored.lease.until <= now
        : !FINAL_STATES.has(stored.job.state) && stored.job.nextAttemptAt <= now;
      if (!due) continue;
      const job = claim(stored.job);
      const lease = { token: crypto.randomUUID(), until: Date.now() + leaseMs };
      const next: Stored = { job, lease, body: stored.body };
      const result = await retried(() =>
        this.kv.atomic()
          .check({ key, versionstamp: entry.versionstamp })
          .delete(this.scheduleKey(stored)!)
          .delete(this.stateKey(stored.job.state, id))
          .set(key, next)
          .set(this.scheduleKey(next)!, true)
          .set(this.stateKey(job.state, id), true)
          .commit()
      );
      if (result.ok) return new KvLease(this, next, result.versionstamp, leaseMs);
    }
    return undefined;
  }

  async get(id: string): Promise<OutboxJob | undefined> {
    const entry = await retried(() => this.kv.get<Stored>(this.jobKey(id)));
    return entry.value?.job;
  }

  async list(filter: { state?: OutboxState; limit?: number }): Promise<OutboxJob[]> {
    const limit = filter.limit ?? Infinity;
    const jobs: OutboxJob[] = [];
    if (filter.state === undefined) {
      await retried(async () => {
        jobs.length = 0;
        for await (const entry of this.kv.list<Stored>({ prefix: [...this.prefix, "job"] })) {
          if (jobs.length >= limit) break;
          jobs.push(entry.value.job);
        }
      });
      return jobs;
    }
    const ids: string[] = [];
    await retried(async () => {
      ids.length = 0;
      for await (
        const entry of this.kv.list({ prefix: [...this.prefix, "state", filter.state!] })
      ) {
        if (ids.length >= limit) break;
        ids.push(String(entry.key.at(-1)));
      }
    });
    for (const id of ids) {
      const job = await this.get(id);
      if (job?.state === filter.state) jobs.push(job);
    }
    return jobs;
  }

  async unfinished(): Promise<number> {
    let count = 0;
    await retried(async () => {
      count = 0;
      for await (const _ of this.kv.list({ prefix: [...this.prefix, "open"] })) count++;
    });
    return count;
  }
}

class KvLease implements OutboxLease {
  readonly #store: KvStore;
  readonly #leaseMs: number;
  #stored: Stored;
  #versionstamp: string;
  /** Writes of one lease go one after another: each checks the versionstamp of the last. */
  #writing: Promise<unknown> = Promise.resolve();

  constructor(store: KvStore, stored: Stored, versionstamp: string, leaseMs: number) {
    this.#store = store;
    this.#stored = stored;
    this.#versionstamp = versionstamp;
    this.#leaseMs = leaseMs;
  }

  get job(): OutboxJob {
    return this.#stored.job;
  }

  async body(): Promise<Uint8Array> {
    const { kv } = this.#store;
    const { job, body } = this.#stored;
    const parts: Uint8Array[] = [];
    await retried(async () => {
      parts.length = 0;
      const prefix = this.#store.bodyKey(job.id, body.ref);
      for await (const entry of kv.list<Uint8Array>({ prefix })) parts.push(entry.value);
    });
    if (parts.length !== body.chunks) {
      throw new Error(`Outbox job ${job.id}: ${parts.length} of ${body.chunks} body chunks found`);
    }
    return concat(parts);
  }

  update(job: OutboxJob): Promise<void> {
    return this.#write(job, false);
  }

  extend(): Promise<void> {
    return this.#write(undefined, false);
  }

  async release(job: OutboxJob): Promise<void> {
    await this.#write(job, true);
    const { ref, chunks } = this.#stored.body;
    // A sent message's body goes; a small one's went with the write above.
    if (job.state === "sent" && chunks > BODY_DELETES_PER_RELEASE) {
      await this.#store.deleteBody(job.id, ref, chunks).catch(() => {});
    }
  }

  #write(job: OutboxJob | undefined, release: boolean): Promise<void> {
    const write = this.#writing.then(() => this.#commit(job ?? this.#stored.job, release));
    this.#writing = write.catch(() => {});
    return write;
  }

  async #commit(job: OutboxJob, release: boolean): Promise<void> {
    const store = this.#store;
    const old = this.#stored;
    const id = old.job.id;
    const next: Stored = release ? { job, body: old.body } : {
      job,
      body: old.body,
      lease: { token: old.lease!.token, until: Date.now() + this.#leaseMs },
    };
    if (!old.lease) throw new OutboxLeaseLostError(id);
    const result = await retried(() => {
      const op = store.kv.atomic()
        .check({ key: store.jobKey(id), versionstamp: this.#versionstamp })
        .delete(store.scheduleKey(old)!)
        .delete(store.stateKey(old.job.state, id))
        .set(store.jobKey(id), next)
        .set(store.stateKey(job.state, id), true);
      const schedule = store.scheduleKey(next);
      if (schedule) op.set(schedule, true);
      else op.delete(store.openKey(id));
      const { ref, chunks } = old.body;
      if (job.state === "sent" && chunks <= BODY_DELETES_PER_RELEASE) {
        for (let i = 0; i < chunks; i++) op.delete([...store.bodyKey(id, ref), i]);
      }
      return op.commit();
    });
    if (!result.ok) throw new OutboxLeaseLostError(id);
    this.#versionstamp = result.versionstamp;
    this.#stored = next;
  }
}
