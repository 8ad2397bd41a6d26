/**
 * The deadline timer that every wait shares: a wait that ends leaves it to stop itself at its
 * next tick, so that back-to-back sends reuse one timer; a session that closes stops it at
 * once; and a wait on a reused timer still times out. Every test runs with the op sanitizer on:
 * a timer left running when a test ends fails it.
 */
import assert from "node:assert/strict";
import { SmtpClient, SmtpTimeoutError } from "../../mod.ts";
import {
  arm,
  Deadline,
  disarm,
  stopTimerIfIdle,
  type Wait,
} from "../../src/protocol/_deadlines.ts";
import { MockSmtpServer } from "../../src/testing/mod.ts";
import { test } from "../_helpers/test.ts";

const wait: Wait = { phase: "command", timeoutMs: 1_000, signal: undefined, total: undefined };

test("a wait that ends leaves the timer to stop itself at its next tick", async () => {
  const deadline = new Deadline(() => assert.fail("the deadline expired"));
  arm(deadline, wait);
  disarm(deadline);
  // The tick comes within 20 ms, finds nothing to check and schedules no other.
  await new Promise((resolve) => setTimeout(resolve, 60));
});

test("stopTimerIfIdle() stops the timer at once when no wait needs it", () => {
  const deadline = new Deadline(() => assert.fail("the deadline expired"));
  arm(deadline, wait);
  stopTimerIfIdle(); // a wait is active: the timer stays
  disarm(deadline);
  stopTimerIfIdle(); // nothing needs it: cleared, or this test ends with a timer running
});

test("back-to-back sends on a loopback server reuse the timer, and a stalled reply still times out", async () => {
  await using server = new MockSmtpServer({
    faults: [{ command: "MESSAGE", match: /Subject: stalled/, delayMs: 300, times: 1 }],
  });
  const { port } = await server.listen();
  const client = await SmtpClient.connect({
    hostname: "127.0.0.1",
    port,
    tls: "none",
    clientName: "client.example.com",
    timeouts: { dataEndMs: 100 },
  });
  try {
    const message = (subject: string) => ({
      from: "a@example.com",
      to: "b@example.com",
      subject,
      text: "Hello",
    });
    for (let i = 0; i < 3; i++) {
      const result = await client.send(message(`number ${i}`));
      assert.deepEqual(result.accepted.map((r) => r.address), ["b@example.com"]);
    }
    const started = performance.now();
    const error = await client.send(message("stalled")).then(
      () => assert.fail("the stalled send resolved"),
      (error: unknown) => error,
    );
    const elapsed = performance.now() - started;
    assert.ok(error instanceof SmtpTimeoutError, String(error));
    assert.equal(error.outcomeUnknown, true);
    // 100 ms, checked every 20 ms at most: well before the server's 300 ms answer.
    assert.ok(elapsed >= 100 && elapsed < 290, `timed out after ${elapsed.toFixed(0)} ms`);
    assert.equal(server.messages.length, 3);
  } finally {
    client.close();
  }
});
