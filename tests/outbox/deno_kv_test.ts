import { denoKvStore } from "../../src/outbox/deno_kv.ts";
import { outboxSuite } from "./_suite.ts";

outboxSuite("Deno KV", async () => {
  const path = await Deno.makeTempFile({ prefix: "postie-outbox-", suffix: ".sqlite" });
  const kv = await Deno.openKv(path);
  return {
    store: denoKvStore(kv),
    async [Symbol.asyncDispose]() {
      kv.close();
      for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(path + suffix).catch(() => {});
    },
  };
});
