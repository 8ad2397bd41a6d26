import assert from "node:assert/strict";
import { SmtpPool } from "../../src/pool.ts";
import { test } from "../_helpers/test.ts";
import { serveEsmtp, startScriptedServer } from "../_helpers/scripted_server.ts";

const MESSAGES = 10_000;
const ROUND = 1000;
const MAX_CONNECTIONS = 4;

function used(): number {
  const memory = Deno.memoryUsage();
  return memory.heapUsed + memory.external;
}

/**
 * The TCP sockets this process holds open to `port` (the client ends of its connections to
 * that server), as the kernel sees them: the inodes of this process's socket descriptors that
 * `/proc/net/tcp*` lists with that remote port. Only descriptors count, so a socket the client
 * forgot to close shows even though the server hung up. Linux only (`undefined` elsewhere).
 * Counted by port, not all sockets: other test files run in this process under `--parallel`.
 */
function socketsTo(port: number): number | undefined {
  if (Deno.build.os !== "linux") return undefined;
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(table);
    } catch {
      continue;
    }
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[9] === "0") continue;
      if (parseInt(fields[2]!.split(":")[1]!, 16) === port) inodes.add(fields[9]!);
    }
  }
  let count = 0;
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(Deno.readLinkSync(`/proc/self/fd/${entry.name}`));
      if (inode && inodes.has(inode[1]!)) count++;
    } catch {
      // closed meanwhile (the directory's own descriptor, or another test's file)
    }
  }
  return count;
}

async function until(condition: () => boolean, ms = 2000): Promise<void> {
  const start = performance.now();
  while (!condition()) {
    if (performance.now() - start > ms) throw new Error("Condition not reached in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test(`10,000 messages through a pool of ${MAX_CONNECTIONS}: memory and sockets stay flat`, async () => {
  // Each message has its own recipient; the server counts how often it saw each one.
  const seen = new Uint8Array(MESSAGES);
  let delivered = 0;
  let open = 0;
  let maxOpen = 0;
  await using server = startScriptedServer(async (conn) => {
    maxOpen = Math.max(maxOpen, ++open);
    try {
      const log = await serveEsmtp(conn, {
        extensions: ["PIPELINING", "CHUNKING"],
        record: false,
        rcpt: (address) => {
          seen[Number(/^m(\d+)@/.exec(address)![1])]!++;
          return "250 OK";
        },
      });
      // Not `delivered += await ...`: that would read `delivered` before the await.
      delivered += log.count;
    } finally {
      open--;
    }
  });
  const pool = new SmtpPool({
    hostname: "127.0.0.1",
    port: server.port,
    tls: "none",
    maxConnections: MAX_CONNECTIONS,
    // The default, stated: every connection is replaced after 100 messages, so the run opens
    // and closes 100 of them; a leak per connection would show.
    maxMessages: 100,
  });
  const samples: number[] = [];
  const sockets: (number | undefined)[] = [];
  let mismatched = 0;
  for (let round = 0; round < MESSAGES / ROUND; round++) {
    // 1,000 at a time, queued at once: the pool spreads them over its connections, each of
    // which pipelines them.
    await Promise.all(
      Array.from({ length: ROUND }, (_, i) => {
        const to = `m${round * ROUND + i}@example.com`;
        const raw = `Subject: pool soak\r\nTo: ${to}\r\n\r\nA small message body.\r\n`;
        return pool.send({ raw, envelope: { from: "a@example.com", to: [to] } }).then(
          (result) => {
            if (result.accepted.length !== 1 || result.accepted[0]!.address !== to) mismatched++;
          },
        );
      }),
    );
    // deno-lint-ignore no-explicit-any
    (globalThis as any).gc?.();
    samples.push(used());
    sockets.push(socketsTo(server.port));
  }
  await pool.close();
  assert.deepEqual(pool.stats, { connections: 0, idle: 0, inFlight: 0, queued: 0 });
  // Every client socket is closed: none is left for the kernel to report.
  if (sockets[0] !== undefined) await until(() => socketsTo(server.port) === 0);
  await until(() => open === 0);
  await server.close();

  assert.equal(delivered, MESSAGES);
  assert.equal(mismatched, 0, "every result names its own recipient");
  const counts = new Map<number, number>();
  for (const n of seen) counts.set(n, (counts.get(n) ?? 0) + 1);
  assert.deepEqual([...counts], [[1, MESSAGES]], "every message reached the server exactly once");
  assert.equal(server.connections.length, MESSAGES / 100);
  assert.ok(maxOpen <= MAX_CONNECTIONS, `the server saw ${maxOpen} connections open at once`);
  for (const [round, count] of sockets.entries()) {
    if (count === undefined) break;
    assert.ok(count <= MAX_CONNECTIONS, `round ${round + 1}: ${count} client sockets open`);
  }
  const growth = (samples.at(-1)! - samples[1]!) / 2 ** 20;
  assert.ok(growth < 16, `memory grew by ${growth.toFixed(1)} MiB from round 2 to round 10`);
});
