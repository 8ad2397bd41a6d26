import { Redis } from "ioredis";
import { bullmqStore } from "../../src/outbox/bullmq.ts";
import { test } from "../_helpers/test.ts";
import { redisUnavailable, startRedis } from "../_helpers/redis.mjs";
import { outboxSuite } from "./_suite.ts";

const skip = redisUnavailable();
if (skip) console.log(`BULLMQ SKIPPED: ${skip}`);

let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
let queues = 0;
const redisPort = async () => (redis ??= await startRedis()).port;

/** An ioredis client (BullMQ on Deno takes a client, not options). */
const client = async () =>
  new Redis({ host: "127.0.0.1", port: await redisPort(), maxRetriesPerRequest: null });

outboxSuite("BullMQ", async () => {
  const connection = await client();
  const store = bullmqStore({ connection, queueName: `suite-${++queues}` });
  return {
    store,
    async [Symbol.asyncDispose]() {
      await store.close();
      connection.disconnect();
    },
  };
}, skip);

test("outbox (BullMQ): the private redis-server stops", {
  sanitize: false,
  ignore: skip !== undefined,
}, async () => {
  await redis?.stop();
  redis = undefined;
});
