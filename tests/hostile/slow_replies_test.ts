/** Hostile and broken servers: slow but correct. See tests/hostile/_helpers.ts for the shared tools. */

import assert from "node:assert/strict";
import { SmtpClient } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import {
  expectLine,
  type ScriptedConnection,
  startScriptedServer,
} from "../_helpers/scripted_server.ts";
import { encoder, envelope, plain, raw, sleep } from "./_helpers.ts";

/** Sends `text` one byte per write, with a pause between bytes. */
async function trickle(conn: ScriptedConnection, text: string): Promise<void> {
  for (const byte of encoder.encode(text)) {
    await conn.send(new Uint8Array([byte]));
    await sleep(1);
  }
}

test("replies trickling in one byte at a time: the whole session works", async () => {
  let data: string | null = null;
  await using server = startScriptedServer(async (conn) => {
    await trickle(conn, "220-hostile.test ESMTP\r\n220 slow but correct\r\n");
    await expectLine(conn, "EHLO");
    await trickle(
      conn,
      "250-hostile.test\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250 8BITMIME\r\n",
    );
    await expectLine(conn, "MAIL FROM:<a@example.com>");
    await expectLine(conn, "RCPT TO:<b@example.com>");
    await expectLine(conn, "DATA");
    await trickle(conn, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n354 Go ahead\r\n");
    data = await conn.readData();
    await trickle(conn, "250-2.0.0 Queued\r\n250 2.0.0 as 42\r\n");
    await expectLine(conn, "QUIT");
    await trickle(conn, "221 2.0.0 Bye\r\n");
  });
  const client = await SmtpClient.connect(plain(server.port, { timeouts: { commandMs: 5000 } }));
  assert.equal(client.capabilities.maxSize, 100000);
  const result = await client.send({ raw, envelope });
  assert.deepEqual(result.reply.lines, ["Queued", "as 42"]);
  assert.deepEqual(result.reply.enhancedStatus, { class: 2, subject: 0, detail: 0 });
  await client.quit();
  assert.equal(client.connected, false);
  await server.close();
  assert.match(data ?? "", /Subject: hostile\r\n\r\nHello/);
  assert.equal(server.connections.length, 1);
});
