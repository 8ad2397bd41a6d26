/** Hostile and broken servers: quit(). See tests/hostile/_helpers.ts for the shared tools. */

import assert from "node:assert/strict";
import { SmtpClient } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { expectLine, greet, startScriptedServer } from "../_helpers/scripted_server.ts";
import { clientCloses, plain } from "./_helpers.ts";

test("quit() when the server never answers QUIT: returns within quitMs, socket closed", async () => {
  let after: { closed: boolean; lines: string[] } | undefined;
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, []);
    await expectLine(conn, "QUIT");
    after = await clientCloses(conn, 5000);
  });
  const client = await SmtpClient.connect(plain(server.port, { timeouts: { quitMs: 300 } }));
  const started = performance.now();
  await client.quit();
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 250 && elapsed < 2000, `quit() took ${elapsed} ms`);
  assert.equal(client.connected, false);
  await server.close();
  assert.ok(after?.closed, "the client kept the connection open");
});

for (
  const [what, answer] of [
    ["garbage", "this is not SMTP\r\n"],
    ["an error reply", "500 5.5.1 what QUIT\r\n"],
    ["a line of a megabyte", "221 " + "z".repeat(1024 * 1024) + "\r\n"],
    ["nothing but a close", ""],
  ] as const
) {
  test(`quit() when the server answers QUIT with ${what}: resolves, socket closed`, async () => {
    let after: { closed: boolean; lines: string[] } | undefined;
    await using server = startScriptedServer(async (conn) => {
      await greet(conn, []);
      await expectLine(conn, "QUIT");
      if (answer === "") {
        conn.close();
        return;
      }
      await conn.send(answer).catch(() => {});
      after = await clientCloses(conn, 5000);
    });
    const client = await SmtpClient.connect(plain(server.port, { timeouts: { quitMs: 3000 } }));
    const started = performance.now();
    await client.quit();
    assert.ok(performance.now() - started < 1500, "quit() waited for its deadline");
    assert.equal(client.connected, false);
    await client.quit(); // idempotent
    await server.close();
    if (answer !== "") assert.ok(after?.closed, "the client kept the connection open");
    assert.equal(server.connections.length, 1);
  });
}
