/**
 * The outbox rows of `scripts/bench.ts`: messages from `enqueue()` to accepted at the bench
 * sink, through the outbox on Deno KV (one worker) and on BullMQ (one worker, then four worker
 * processes), beside the same messages sent straight through an `SmtpPool` in the same run.
 * Messages are enqueued `ENQUEUERS` at a time. A worker sends `CONCURRENCY` jobs at a time over
 * a pool of 2 connections; the direct row uses
 * the same pool with every send queued at once. The BullMQ rows need `redis-server` (started
 * on a free 127.0.0.1 port in a temporary folder); without it they are skipped with the reason.
 *
 * @module
 */

import { Redis } from "ioredis";
import { denoKvStore } from "../src/outbox/deno_kv.ts";
import { bullmqStore } from "../src/outbox/bullmq.ts";
import { Outbox } from "../src/outbox/outbox.ts";
import type { OutboxStore } from "../src/outbox/types.ts";
import { SmtpPool } from "../src/pool.ts";
import { redisUnavailable, startRedis } from "../tests/_helpers/redis.mjs";

/** Jobs a worker sends at a time. */
const CONCURRENCY = 8;
/** Enqueues in progress at a time. */
const ENQUEUERS = 16;

/** A running bench sink. */
export interface BenchSink {
  readonly port: number;
  /** Messages the sink accepted so far. */
  accepted(): Promise<number>;
  end(): Promise<void>;
}

interface Row {
  readonly what: string;
  readonly ms: number;
  readonly enqueueMs?: number;
  readonly accepted: number;
}

const message = (i: number) => ({
  from: "bench@example.com",
  to: "sink@example.com",
  subject: `Outbox ${i}`,
  text: `Message ${i} of the outbox benchmark.`,
});

const smtp = (port: number) => ({
  hostname: "127.0.0.1",
  port,
  tls: "none" as const,
  maxConnections: 2,
});

async function direct(sink: BenchSink, count: number): Promise<Row> {
  const before = await sink.accepted();
  const started = performance.now();
  await using pool = new SmtpPool(smtp(sink.port));
  await Promise.all(Array.from({ length: count }, (_, i) => pool.send(message(i))));
  const ms = performance.now() - started;
  return {
    what: "SmtpPool.send, all queued at once",
    ms,
    accepted: await sink.accepted() - before,
  };
}

/** Enqueues `count` messages, runs the workers, and times it until the store is drained. */
async function throughOutbox(
  what: string,
  sink: BenchSink,
  store: OutboxStore,
  count: number,
  workers: () => Promise<() => Promise<void>>,
): Promise<Row> {
  const before = await sink.accepted();
  const outbox = new Outbox({ smtp: smtp(sink.port), store, pollIntervalMs: 20 });
  const stop = await workers();
  const started = performance.now();
  // Enqueued as a busy application would: many requests at once.
  let next = 0;
  await Promise.all(Array.from({ length: ENQUEUERS }, async () => {
    while (next < count) await outbox.enqueue(message(next++));
  }));
  const enqueueMs = performance.now() - started;
  await outbox.drain();
  const ms = performance.now() - started;
  await stop();
  return { what, ms, enqueueMs, accepted: await sink.accepted() - before };
}

function inProcess(store: OutboxStore, port: number) {
  return () => {
    const worker = new Outbox({ smtp: smtp(port), store, pollIntervalMs: 20 });
    worker.start({ concurrency: CONCURRENCY });
    return Promise.resolve(() => worker.close());
  };
}

function processes(count: number, redisPort: number, queue: string, sinkPort: number) {
  return async () => {
    const script = new URL("./_bench_outbox_worker.ts", import.meta.url).pathname;
    const children = Array.from({ length: count }, () =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", script, String(redisPort), queue, String(sinkPort), `${CONCURRENCY}`],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn());
    // Each says it is ready before the clock starts.
    const outputs = children.map((child) => child.stdout.getReader());
    for (const reader of outputs) await reader.read();
    return async () => {
      for (const child of children) await child.stdin.close();
      const timer = setTimeout(() => children.forEach((c) => c.kill("SIGKILL")), 10_000);
      for (const [i, child] of children.entries()) {
        await child.status;
        await outputs[i]!.cancel();
      }
      clearTimeout(timer);
    };
  };
}

/**
 * Runs the outbox rows and returns them as a Markdown table.
 *
 * @param startSink Starts a bench sink.
 * @param count Messages per row.
 */
export async function outboxBench(
  startSink: () => Promise<BenchSink>,
  count: number,
): Promise<string> {
  const sink = await startSink();
  const rows: Row[] = [];
  const notes: string[] = [];
  const dir = await Deno.makeTempDir({ prefix: "postie_bench_outbox_" });
  try {
    rows.push(await direct(sink, count));
    {
      using kv = await Deno.openKv(`${dir}/outbox.sqlite`);
      const store = denoKvStore(kv);
      rows.push(
        await throughOutbox(
          "outbox, Deno KV file, 1 worker",
          sink,
          store,
          count,
          inProcess(store, sink.port),
        ),
      );
    }
    const unavailable = redisUnavailable();
    if (unavailable) {
      notes.push(`BullMQ rows skipped: ${unavailable}`);
    } else {
      await using redis = await startRedis();
      const connection = new Redis({
        host: "127.0.0.1",
        port: redis.port,
        maxRetriesPerRequest: null,
      });
      try {
        for (const [workers, queue] of [[1, "bench-1"], [4, "bench-4"]] as const) {
          const store = bullmqStore({ connection, queueName: queue });
          try {
            const start = workers === 1
              ? inProcess(store, sink.port)
              : processes(workers, redis.port, queue, sink.port);
            const what = workers === 1
              ? "outbox, BullMQ, 1 worker"
              : `outbox, BullMQ, ${workers} worker processes`;
            rows.push(await throughOutbox(what, sink, store, count, start));
          } finally {
            await store.close();
          }
        }
      } finally {
        connection.disconnect();
      }
    }
  } finally {
    await sink.end();
    await Deno.remove(dir, { recursive: true });
  }
  const baseline = rows[0]!.ms;
  const lines = [
    `\nOutbox: ${count} small messages, enqueue() (${ENQUEUERS} at a time) to accepted at the ` +
    `sink; a worker sends ${CONCURRENCY} at a time over 2 connections.`,
    "",
    "| path | msgs/s | ms | enqueue msgs/s | accepted at sink | time vs SmtpPool |",
    "|---|---|---|---|---|---|",
    ...rows.map((row) =>
      `| ${row.what} | ${Math.round(count / row.ms * 1000)} | ${Math.round(row.ms)} | ${
        row.enqueueMs === undefined ? "-" : Math.round(count / row.enqueueMs * 1000)
      } | ${row.accepted} | ${(row.ms / baseline).toFixed(1)}× |`
    ),
    ...notes,
  ];
  for (const row of rows) {
    if (row.accepted !== count) {
      throw new Error(`${row.what}: the sink accepted ${row.accepted} of ${count} messages`);
    }
  }
  return lines.join("\n");
}
