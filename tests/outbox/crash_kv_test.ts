import { denoKvStore } from "../../src/outbox/deno_kv.ts";
import { test } from "../_helpers/test.ts";
import { crashTest } from "./_crash.ts";

test("outbox (Deno KV): 1,000 messages survive SIGKILLed workers, each delivered once", {
  sanitize: false,
}, async () => {
  const path = await Deno.makeTempFile({ prefix: "postie-crash-", suffix: ".sqlite" });
  const kv = await Deno.openKv(path);
  try {
    await crashTest({ engine: "kv", location: path, store: denoKvStore(kv) });
  } finally {
    kv.close();
    for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(path + suffix).catch(() => {});
  }
});
