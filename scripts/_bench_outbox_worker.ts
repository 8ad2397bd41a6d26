/**
 * One outbox worker process for `scripts/bench.ts`: sends the jobs of a BullMQ queue to the
 * bench sink until stdin ends.
 *
 *     deno run -A scripts/_bench_outbox_worker.ts <redis port> <queue> <sink port> <concurrency>
 *
 * @module
 */

import { Redis } from "ioredis";
import { bullmqStore } from "../src/outbox/bullmq.ts";
import { Outbox } from "../src/outbox/outbox.ts";

const [redisPort, queueName, sinkPort, concurrency] = Deno.args;
const connection = new Redis({
  host: "127.0.0.1",
  port: Number(redisPort),
  maxRetriesPerRequest: null,
});
const store = bullmqStore({ connection, queueName: queueName! });
const outbox = new Outbox({
  smtp: { hostname: "127.0.0.1", port: Number(sinkPort), tls: "none", maxConnections: 2 },
  store,
  pollIntervalMs: 20,
});
outbox.start({ concurrency: Number(concurrency) });
console.log(JSON.stringify({ ready: true }));
// Runs until the benchmark closes stdin.
for await (const _ of Deno.stdin.readable) { /* ignore */ }
await outbox.close();
await store.close();
connection.disconnect();
