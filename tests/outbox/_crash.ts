/**
 * The crash test, for any engine: 1,000 messages through 2-4 worker processes, killed with
 * SIGKILL at random moments and replaced; at the end every message was delivered exactly once
 * (counted at the server by Message-ID), except those in state `unknown`, at most one per kill
 * (each worker sends one job at a time), and none is lost.
 */
import assert from "node:assert/strict";
import { Outbox } from "../../src/outbox/outbox.ts";
import type { OutboxStore } from "../../src/outbox/types.ts";
import { MockSmtpServer } from "../../src/testing/mod.ts";

const WORKER = new URL("./_crash_worker.ts", import.meta.url).pathname;

/** What the crash test counted. */
export interface CrashReport {
  messages: number;
  kills: number;
  sent: number;
  unknown: number;
  duplicates: number;
  lost: number;
  seconds: number;
}

export async function crashTest(options: {
  engine: "kv" | "bullmq";
  location: string;
  store: OutboxStore;
  messages?: number;
  kills?: number;
}): Promise<CrashReport> {
  const total = options.messages ?? 1000;
  const wantedKills = options.kills ?? 8;
  await using server = new MockSmtpServer();
  const { port } = await server.listen();
  const started = performance.now();
  const enqueuer = new Outbox({ smtp: { hostname: "127.0.0.1", port }, store: options.store });
  const ids: string[] = [];
  for (let i = 0; i < total; i++) {
    ids.push(
      await enqueuer.enqueue({
        from: "crash@example.com",
        to: `rcpt${i % 7}@example.com`,
        subject: `Crash ${i}`,
        text: `Message ${i}`,
      }),
    );
  }

  const workers = new Set<Deno.ChildProcess>();
  const spawn = () => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--unstable-kv", WORKER, options.engine, options.location, String(port)],
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    workers.add(child);
    return child;
  };
  const random = (min: number, max: number) => min + Math.random() * (max - min);
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  let kills = 0;
  try {
    for (let i = 0; i < 3; i++) spawn();
    const deadline = Date.now() + 120_000;
    // Kill while there is work, keeping 2 to 4 workers.
    while (kills < wantedKills && (await options.store.unfinished()) > 0) {
      await sleep(random(300, 900));
      const victims = [...workers];
      const victim = victims[Math.floor(Math.random() * victims.length)]!;
      victim.kill("SIGKILL");
      await victim.status;
      workers.delete(victim);
      kills++;
      const more = workers.size < 2 ? 2 : workers.size >= 4 ? 0 : Math.random() < 0.5 ? 1 : 2;
      for (let i = 0; i < more && workers.size < 4; i++) spawn();
      if (Date.now() > deadline) break;
    }
    while ((await options.store.unfinished()) > 0) {
      if (Date.now() > deadline) throw new Error("The workers did not finish in time");
      await sleep(100);
    }
  } finally {
    for (const child of workers) {
      child.kill("SIGKILL");
      await child.status;
    }
  }

  const counts = new Map<string, number>();
  for (const message of server.messages) {
    const id = message.headers.get("Message-ID") ?? "";
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  let sent = 0, unknown = 0, duplicates = 0, lost = 0;
  for (const id of ids) {
    const job = await options.store.get(id);
    const count = counts.get(job?.messageId ?? "") ?? 0;
    if (count > 1) duplicates++;
    if (job?.state === "sent" && count === 1) sent++;
    else if (job?.state === "unknown" && count <= 1) unknown++;
    else lost++;
  }
  const report = {
    messages: total,
    kills,
    sent,
    unknown,
    duplicates,
    lost,
    seconds: Math.round((performance.now() - started) / 100) / 10,
  };
  console.log(`crash test (${options.engine}): ${JSON.stringify(report)}`);
  assert.equal(duplicates, 0);
  assert.equal(lost, 0);
  assert.ok(unknown <= kills, `${unknown} unknown after ${kills} kills`);
  assert.equal(sent + unknown, total);
  assert.ok(kills >= 3, `only ${kills} kills: the workers finished too soon`);
  return report;
}
