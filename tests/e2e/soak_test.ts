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

test("aborting sends at random moments: the others are delivered once, or say that they may have been", async () => {
  const copies = new Map<string, number>();
  await using server = startScriptedServer(async (conn) => {
    const log = await serveEsmtp(conn, { extensions: ["PIPELINING", "CHUNKING"] });
    for (const { data } of log.messages) {
      const id = /^X-Id: (\S+)/m.exec(data)![1]!;
      copies.set(id, (copies.get(id) ?? 0) + 1);
    }
  });
  const client = await SmtpClient.connect({
    hostname: "127.0.0.1",
    port: server.port,
    tls: "none",
  });
  const sent: string[] = [];
  const unknown: string[] = [];
  let aborted = 0;
  for (let round = 0; round < 20; round++) {
    const controller = new AbortController();
    const ids = Array.from({ length: 20 }, (_, i) => `${round}.${i}`);
    const sends = ids.map((id, i) =>
      client.send(
        { raw: `X-Id: ${id}\r\n${raw}`, envelope },
        i % 3 === 0 ? { signal: controller.signal } : {},
      )
    );
    await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 3)));
    controller.abort(new Error("stop"));
    for (const [i, outcome] of (await Promise.allSettled(sends)).entries()) {
      if (outcome.status === "fulfilled") sent.push(ids[i]!);
      else if ((outcome.reason as Error).message === "stop") aborted++;
      // A send pipelined behind an aborted one loses its connection. If its message was not
      // complete it is sent again; if it was, the error says the server may hold it.
      else if (outcome.reason instanceof SmtpError && outcome.reason.outcomeUnknown) {
        unknown.push(ids[i]!);
      } else throw outcome.reason;
    }
  }
  // Still usable afterwards: reconnects if an abort closed the connection.
  const result = await client.send({ raw: `X-Id: last\r\n${raw}`, envelope });
  assert.equal(result.reply.code, 250);
  await client.quit();
  await server.close();
  assert.ok(sent.length > 0);
  assert.ok(aborted > 0, "some sends were aborted");
  for (const id of sent) assert.equal(copies.get(id), 1, `message ${id} was delivered twice`);
  for (const id of unknown) assert.ok((copies.get(id) ?? 0) <= 1, `message ${id}: two copies`);
  for (const [id, n] of copies) assert.equal(n, 1, `message ${id}: ${n} copies`);
});
