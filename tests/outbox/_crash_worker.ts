/**
 * A worker process for the crash test: sends the outbox's jobs until it is killed.
 *
 * Usage: deno run -A _crash_worker.ts <engine> <store location> <smtp port>
 * (engine `kv`: the KV file; engine `bullmq`: the Redis port and the queue name, as
 * `port/queue`).
 */
import { Outbox } from "../../src/outbox/outbox.ts";
import type { OutboxStore } from "../../src/outbox/types.ts";
import { denoKvStore } from "../../src/outbox/deno_kv.ts";

const [engine, location, port] = Deno.args;
let store: OutboxStore;
if (engine === "kv") {
  store = denoKvStore(await Deno.openKv(location!));
} else {
  const { bullmqStore } = await import("../../src/outbox/bullmq.ts");
  const { Redis } = await import("ioredis");
  const [redisPort, queueName] = location!.split("/");
  const connection = new Redis({
    host: "127.0.0.1",
    port: Number(redisPort),
    maxRetriesPerRequest: null,
  });
  store = bullmqStore({ connection, queueName: queueName! });
}
const outbox = new Outbox({
  smtp: { hostname: "127.0.0.1", port: Number(port), tls: "none", maxConnections: 1 },
  store,
  leaseMs: 3000,
  pollIntervalMs: 20,
  retryDelayMs: 20,
  maxRetryDelayMs: 200,
});
outbox.start({ concurrency: 1 });
console.log("ready");
// Runs until killed; a SIGTERM stops it gracefully.
Deno.addSignalListener("SIGTERM", () => {
  outbox.close().then(() => Deno.exit(0));
});
