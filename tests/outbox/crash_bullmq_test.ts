import { Redis } from "ioredis";
import { bullmqStore } from "../../src/outbox/bullmq.ts";
import { redisUnavailable, startRedis } from "../_helpers/redis.mjs";
import { test } from "../_helpers/test.ts";
import { crashTest } from "./_crash.ts";

const skip = redisUnavailable();
if (skip) console.log(`BULLMQ SKIPPED: ${skip}`);

test("outbox (BullMQ): 1,000 messages survive SIGKILLed workers, each delivered once", {
  sanitize: false,
  ignore: skip !== undefined,
}, async () => {
  await using redis = await startRedis();
  const connection = new Redis({ host: "127.0.0.1", port: redis.port, maxRetriesPerRequest: null });
  const store = bullmqStore({ connection, queueName: "crash" });
  try {
    await crashTest({ engine: "bullmq", location: `${redis.port}/crash`, store });
  } finally {
    await store.close();
    connection.disconnect();
  }
});
