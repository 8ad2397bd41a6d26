/** Hostile and broken servers: stalls. See tests/hostile/_helpers.ts for the shared tools. */

import assert from "node:assert/strict";
import { SmtpClient, SmtpTimeoutError } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { expectLine, greet, startScriptedServer } from "../_helpers/scripted_server.ts";
import { check, clientCloses, envelope, plain, raw, rejection, sleep } from "./_helpers.ts";

for (const extensions of [["PIPELINING"], ["PIPELINING", "CHUNKING"]]) {
  const mode = extensions.includes("CHUNKING") ? "BDAT LAST" : "DATA's final dot";
  test(`a stall after ${mode}: SmtpTimeoutError after dataEndMs, socket closed`, async () => {
    let after: { closed: boolean; lines: string[] } | undefined;
    await using server = startScriptedServer(async (conn) => {
      await greet(conn, extensions);
      await expectLine(conn, "MAIL FROM:");
      await expectLine(conn, "RCPT TO:");
      if (extensions.includes("CHUNKING")) {
        const bdat = await expectLine(conn, /^BDAT \d+ LAST$/);
        await conn.readBytes(Number(bdat.split(" ")[1]));
        await conn.send("250 OK\r\n250 OK\r\n");
      } else {
        await expectLine(conn, "DATA");
        await conn.send("250 OK\r\n250 OK\r\n354 Go ahead\r\n");
        await conn.readData();
      }
      // ...and never a word about the message.
      after = await clientCloses(conn, 5000);
    });
    const client = await SmtpClient.connect(plain(server.port, {
      timeouts: { commandMs: 10_000, dataEndMs: 300 },
    }));
    const started = performance.now();
    const error = await rejection(client.send({ raw, envelope }));
    const elapsed = performance.now() - started;
    const timeout = check(error, SmtpTimeoutError, "data");
    assert.equal(timeout.timeoutMs, 300);
    assert.ok(elapsed >= 250 && elapsed < 3000, `elapsed ${elapsed} ms`);
    assert.equal(client.connected, false);
    await client.quit();
    await server.close();
    assert.ok(after?.closed, "the client kept the connection open");
    assert.deepEqual(after?.lines, [], "the client sent more after the timeout");
    assert.equal(server.connections.length, 1, "the message was sent again");
  });
}

test("a reply line that never ends: the command deadline holds while bytes trickle in", async () => {
  let trickled = 0;
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, []);
    await expectLine(conn, "NOOP");
    await conn.send("250 still thinking");
    // One byte every 20 ms, never a line end, until the client hangs up.
    while (true) {
      await sleep(20);
      try {
        await conn.send(".");
      } catch {
        return;
      }
      trickled++;
      if (trickled > 500) throw new Error("the client kept reading a line that never ends");
    }
  });
  const client = await SmtpClient.connect(plain(server.port, { timeouts: { commandMs: 300 } }));
  const started = performance.now();
  const error = await rejection(client.noop());
  const elapsed = performance.now() - started;
  const timeout = check(error, SmtpTimeoutError, "command");
  assert.equal(timeout.timeoutMs, 300);
  assert.ok(elapsed < 2000, `the trickle kept the client waiting ${elapsed} ms`);
  assert.equal(client.connected, false);
  await server.close();
  assert.ok(trickled > 3, `trickled ${trickled}`);
  assert.equal(server.connections.length, 1);
});
