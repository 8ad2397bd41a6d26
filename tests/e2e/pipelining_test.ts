import assert from "node:assert/strict";
import { type SendResult, SmtpClient, SmtpRecipientsError } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { type EsmtpLog, serveEsmtp, startScriptedServer } from "../_helpers/scripted_server.ts";

const message = (i: number, to = `r${i}@example.com`) => ({
  raw: `Subject: message ${i}\r\n\r\nbody ${i}\r\n`,
  envelope: { from: "a@example.com", to: [to] },
});

for (const extensions of [["PIPELINING", "CHUNKING"], ["PIPELINING"]]) {
  const mode = extensions.includes("CHUNKING") ? "BDAT" : "DATA";
  test(`queued sends are pipelined across transactions (${mode}), results exact`, async () => {
    let log: EsmtpLog | undefined;
    let reads = 0;
    await using server = startScriptedServer(async (conn) => {
      log = await serveEsmtp(conn, {
        extensions,
        rcpt: (address) => address.startsWith("bad") ? "550 5.1.1 No such user" : "250 OK",
      });
      reads = conn.reads;
    });
    const client = await SmtpClient.connect({
      hostname: "127.0.0.1",
      port: server.port,
      tls: "none",
    });
    const sends = Array.from(
      { length: 50 },
      (_, i) => client.send(message(i, i === 3 ? "bad@example.com" : `r${i}@example.com`)),
    );
    const settled = await Promise.allSettled(sends);
    await client.quit();
    await server.close();
    for (const [i, outcome] of settled.entries()) {
      if (i === 3) {
        assert.equal(outcome.status, "rejected");
        assert.ok((outcome as PromiseRejectedResult).reason instanceof SmtpRecipientsError);
      } else {
        assert.equal(
          outcome.status,
          "fulfilled",
          String((outcome as PromiseRejectedResult).reason),
        );
        const result = (outcome as PromiseFulfilledResult<SendResult>).value;
        assert.deepEqual(result.accepted.map((r) => r.address), [`r${i}@example.com`]);
      }
    }
    assert.equal(log!.messages.length, 49);
    for (const m of log!.messages) {
      const i = Number(/message (\d+)/.exec(m.data)![1]);
      assert.deepEqual(m.to, [`r${i}@example.com`]);
      assert.match(m.data, new RegExp(`body ${i}(\\r\\n)?$`));
    }
    // Far fewer round trips than 50 messages sent one at a time would need.
    assert.ok(reads < (mode === "BDAT" ? 25 : 60), `server reads: ${reads}`);
  });
}
