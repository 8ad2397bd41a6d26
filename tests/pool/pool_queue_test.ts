/**
 * The pool's queue is unbounded by default: a plain `Promise.all` over a mailing list queues
 * every send at once and each one is delivered, exactly once. `smtp-server` plays the server.
 */

import assert from "node:assert/strict";
import { SmtpPool } from "../../src/pool.ts";
import { test } from "../_helpers/test.ts";
import { startSmtpServer } from "../_helpers/smtp_server.ts";

test("SmtpPool with default options delivers 2,000 sends queued at once, each once", async () => {
  await using server = await startSmtpServer();
  const pool = new SmtpPool({ hostname: "127.0.0.1", port: server.port, tls: "none" });
  const recipients = Array.from({ length: 2000 }, (_, i) => `r${i}@example.com`);
  const sends = recipients.map((to, i) =>
    pool.send({ from: "a@example.com", to, subject: `Message ${i}`, text: `Hello ${i}\n` })
  );
  assert.equal(pool.stats.queued + pool.stats.inFlight, recipients.length);
  const results = await Promise.all(sends);
  await pool.close();

  assert.deepEqual(
    results.map((result) => result.accepted.map((r) => r.address)),
    recipients.map((to) => [to]),
    "every result names its own recipient",
  );
  assert.equal(server.received.length, recipients.length);
  const delivered = server.received.map((message) => message.to.join(",")).sort();
  assert.deepEqual(delivered, [...recipients].sort(), "each recipient got exactly one message");
  for (const message of server.received) {
    const n = /^Subject: Message (\d+)$/m.exec(message.text)?.[1];
    assert.equal(message.to[0], `r${n}@example.com`, "the message body matches its envelope");
  }
});
