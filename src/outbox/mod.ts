/**
 * Durable sending: `@postie/smtp/outbox`.
 *
 * An {@linkcode Outbox} checks and composes a message when it is enqueued, stores its exact
 * bytes in a queue engine, and sends it with workers in any number of processes: retries with
 * back-off for what was not delivered, per-recipient results, a dead letter for what cannot be,
 * and state `unknown` for the rare message that may have arrived when the connection broke.
 *
 * - {@linkcode denoKvStore}: Deno KV (a local SQLite file, or Deno Deploy's KV).
 * - `bullmqStore` from `@postie/smtp/outbox/bullmq`: BullMQ on Redis (Node.js, and Deno through
 *   `npm:`), for many worker processes on many machines.
 * - {@linkcode OutboxStore}: the adapter interface, for another engine.
 *
 * @example Durable sending on a Deno KV file
 * ```ts
 * import { denoKvStore, Outbox } from "@postie/smtp/outbox";
 * import { MockSmtpServer } from "@postie/smtp/testing";
 * import assert from "node:assert/strict";
 *
 * await using server = new MockSmtpServer({
 *   faults: [{ command: "RCPT", match: "later@example.com", reply: "451 4.7.1 Greylisted", times: 1 }],
 * });
 * using kv = await Deno.openKv(await Deno.makeTempFile({ suffix: ".sqlite" }));
 * const outbox = new Outbox({
 *   smtp: { hostname: "smtp.example.com", transport: server.transport },
 *   store: denoKvStore(kv),
 *   retryDelayMs: 10,
 * });
 * const id = await outbox.enqueue({
 *   from: "me@example.com",
 *   to: ["now@example.com", "later@example.com"],
 *   subject: "Report",
 *   text: "Attached.",
 * });
 * outbox.start({ concurrency: 2 });
 * await outbox.drain();
 * await outbox.close();
 * const job = await outbox.status(id);
 * assert.equal(job?.state, "sent");
 * assert.equal(job?.attempts, 2); // the greylisted recipient was retried alone
 * assert.deepEqual(server.messages.map((m) => m.envelope.to), [
 *   ["now@example.com"],
 *   ["later@example.com"],
 * ]);
 * ```
 *
 * @module
 */

export { Outbox } from "./outbox.ts";
export type { EnqueueOptions, OutboxOptions } from "./outbox_options.ts";
export {
  denoKvStore,
  type DenoKvStoreOptions,
  type KvAtomicOperation,
  type KvKey,
  type KvKeyPart,
  type KvLike,
} from "./deno_kv.ts";
export {
  type OutboxError,
  type OutboxEvent,
  type OutboxJob,
  type OutboxLease,
  OutboxLeaseLostError,
  type OutboxRecipient,
  type OutboxState,
  type OutboxStore,
} from "./types.ts";
