import assert from "node:assert/strict";
import { SmtpClient, SmtpTimeoutError } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { type ScriptedConnection, startScriptedServer } from "../_helpers/scripted_server.ts";

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Answers every line after `ms`: each wait is kept, but the whole exchange drags on. */
async function slowServer(conn: ScriptedConnection, ms: number, greetingMs = ms) {
  await delay(greetingMs);
  await conn.send("220 slow.test ESMTP\r\n");
  while (true) {
    const line = await conn.readLine();
    if (line === null) return;
    await delay(ms);
    const verb = line.split(" ")[0]!.toUpperCase();
    const reply = verb === "EHLO"
      ? "250 slow.test"
      : verb === "DATA"
      ? "354 Go"
      : verb === "QUIT"
      ? "221 Bye"
      : "250 OK";
    if (verb === "DATA") {
      await conn.send(reply + "\r\n");
      await conn.readData();
      await delay(ms);
      await conn.send("250 Queued\r\n").catch(() => {});
      continue;
    }
    await conn.send(reply + "\r\n").catch(() => {});
  }
}

test("timeouts.totalMs bounds a send whose every reply comes just in time", async () => {
  await using server = startScriptedServer((conn) => slowServer(conn, 100, 0));
  const client = await SmtpClient.connect({
    hostname: "127.0.0.1",
    port: server.port,
    tls: "none",
    timeouts: { commandMs: 1000, totalMs: 700 },
  });
  const to = Array.from({ length: 20 }, (_, i) => `r${i}@example.com`);
  const started = performance.now();
  const error = await client.send({
    raw: "Subject: slow\r\n\r\nbody\r\n",
    envelope: { from: "a@example.com", to },
  }).catch((e) => e);
  const elapsed = performance.now() - started;
  client.close();
  assert.ok(error instanceof SmtpTimeoutError, String(error));
  assert.equal(error.timeoutMs, 700);
  assert.match(error.message, /the send took longer than timeouts\.totalMs \(700 ms\)/);
  assert.equal(error.outcomeUnknown, false, "no data was sent");
  // 20 RCPTs at 100 ms each would take over 2 s; every single wait is far under commandMs.
  assert.ok(elapsed >= 650 && elapsed < 1300, `took ${Math.round(elapsed)} ms`);
});

test("timeouts.totalMs bounds the opening of a connection", async () => {
  await using server = startScriptedServer((conn) => slowServer(conn, 300));
  const started = performance.now();
  const error = await SmtpClient.connect({
    hostname: "127.0.0.1",
    port: server.port,
    tls: "none",
    timeouts: { greetingMs: 1000, commandMs: 1000, totalMs: 500 },
  }).catch((e) => e);
  const elapsed = performance.now() - started;
  assert.ok(error instanceof SmtpTimeoutError, String(error));
  assert.equal(error.phase, "ehlo");
  assert.match(error.message, /the connection setup took longer than timeouts\.totalMs/);
  assert.ok(elapsed >= 450 && elapsed < 1000, `took ${Math.round(elapsed)} ms`);
});

test("timeouts.totalMs must be a positive number", async () => {
  await assert.rejects(
    SmtpClient.connect({ hostname: "127.0.0.1", port: 1, tls: "none", timeouts: { totalMs: 0 } }),
    RangeError,
  );
});
