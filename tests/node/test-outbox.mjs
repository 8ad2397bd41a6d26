/**
 * The outbox on Node.js, from the built package: `@postie/smtp/outbox` with
 * `@postie/smtp/outbox/bullmq` over a private redis-server on 127.0.0.1 (BullMQ and ioredis
 * from npm/.deps, the optional peer dependencies a user installs). Skipped with the reason
 * printed where redis-server is not installed (`.ci/run` installs it).
 */
import assert from "node:assert/strict";
import { existsSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { depsDir, npmDir, requireDependency } from "./_helpers.cjs";
import { redisUnavailable, startRedis } from "../_helpers/redis.mjs";

const redisMissing = redisUnavailable();
if (redisMissing) console.log(`BULLMQ SKIPPED: ${redisMissing}`);

// The package resolves its peer dependency by name, as in a user's project.
const link = join(npmDir, "node_modules");
if (!existsSync(link)) symlinkSync(join(depsDir, "node_modules"), link, "dir");

test("outbox on Node.js: BullMQ workers send every message once", {
  skip: redisMissing ?? false,
  timeout: 60_000,
}, async () => {
  const { Outbox } = await import(join(npmDir, "esm/src/outbox/mod.js"));
  const { bullmqStore } = await import(join(npmDir, "esm/src/outbox/bullmq.js"));
  const { MockSmtpServer } = await import(join(npmDir, "esm/src/testing/mod.js"));
  assert.ok(requireDependency("bullmq"));
  const redis = await startRedis();
  const server = new MockSmtpServer({
    faults: [{ command: "MAIL", reply: "451 4.3.0 Try later", times: 3 }],
  });
  const store = bullmqStore({ connection: { host: "127.0.0.1", port: redis.port } });
  try {
    const outbox = new Outbox({
      smtp: server.clientOptions(),
      store,
      retryDelayMs: 5,
      pollIntervalMs: 10,
    });
    const ids = [];
    for (let i = 0; i < 20; i++) {
      ids.push(await outbox.enqueue({ from: "a@example.com", to: "b@example.com", text: `${i}` }));
    }
    assert.equal(
      await outbox.enqueue({ from: "a@example.com", to: "b@example.com", text: "x" }, {
        idempotencyKey: "once",
      }),
      await outbox.enqueue({ from: "a@example.com", to: "b@example.com", text: "x" }, {
        idempotencyKey: "once",
      }),
    );
    outbox.start({ concurrency: 4 });
    await outbox.drain({ signal: AbortSignal.timeout(30_000) });
    await outbox.close();
    assert.equal(server.messages.length, 21);
    for (const id of ids) assert.equal((await outbox.status(id)).state, "sent");
    assert.equal((await outbox.list({ state: "sent" })).length, 21);
  } finally {
    await store.close();
    await server.close();
    await redis.stop();
  }
});
