/**
 * The outbox's specification, run against each store (Deno KV, BullMQ): the same behaviour
 * whatever the engine.
 */
import assert from "node:assert/strict";
import { Outbox } from "../../src/outbox/outbox.ts";
import type { OutboxOptions } from "../../src/outbox/outbox_options.ts";
import {
  type OutboxEvent,
  type OutboxJob,
  OutboxLeaseLostError,
  type OutboxStore,
} from "../../src/outbox/types.ts";
import { type FaultRule, MockSmtpServer } from "../../src/testing/mod.ts";
import { test } from "../_helpers/test.ts";

/** A store on a fresh engine, and how to close it. */
export interface OpenedStore extends AsyncDisposable {
  readonly store: OutboxStore;
}

/** Opens a fresh, empty store, or says why it cannot (the tests are then skipped). */
export type StoreFactory = () => Promise<OpenedStore>;

const message = (n = 0, to: string | string[] = "bob@example.com") => ({
  from: "ann@example.com",
  to,
  subject: `Message ${n}`,
  text: `Hello ${n}`,
});

async function setup(
  open: StoreFactory,
  faults: FaultRule[] = [],
  options: Partial<OutboxOptions> = {},
) {
  const server = new MockSmtpServer({ faults });
  const opened = await open();
  const events: OutboxEvent[] = [];
  const outbox = new Outbox({
    smtp: { ...server.clientOptions() },
    store: opened.store,
    retryDelayMs: 5,
    maxRetryDelayMs: 20,
    pollIntervalMs: 10,
    leaseMs: 2000,
    onEvent: (event) => events.push(event),
    ...options,
  });
  return {
    server,
    store: opened.store,
    outbox,
    events,
    transitions: (id: string) =>
      events.filter((e) => e.id === id).map((e) => `${e.previous}>${e.state}`),
    async [Symbol.asyncDispose]() {
      await outbox.close();
      await server.close();
      await opened[Symbol.asyncDispose]();
    },
  };
}

async function sendAll(outbox: Outbox, concurrency = 2): Promise<void> {
  outbox.start({ concurrency });
  await outbox.drain({ signal: AbortSignal.timeout(20_000) });
  await outbox.close();
}

/** Registers the outbox's tests for one engine. */
export function outboxSuite(engine: string, open: StoreFactory, skip?: string): void {
  const t = (name: string, fn: () => Promise<void>) =>
    test(`outbox (${engine}): ${name}`, { ignore: skip !== undefined, sanitize: false }, fn);

  t("a message is stored, sent and recorded per recipient", async () => {
    await using s = await setup(open);
    const id = await s.outbox.enqueue(message(1, ["bob@example.com", "cyd@example.com"]));
    const queued = await s.outbox.status(id);
    assert.equal(queued?.state, "queued");
    assert.equal(s.server.messages.length, 0);
    await sendAll(s.outbox);
    const job = await s.outbox.status(id);
    assert.equal(job?.state, "sent");
    assert.equal(job?.attempts, 1);
    assert.equal(job?.terminatorAt, undefined);
    assert.deepEqual(job?.recipients.map((r) => [r.address, r.state, r.reply?.code]), [
      ["bob@example.com", "accepted", 250],
      ["cyd@example.com", "accepted", 250],
    ]);
    assert.equal(s.server.messages.length, 1);
    assert.equal(s.server.messages[0]!.headers.get("Message-ID"), job?.messageId);
    assert.deepEqual(s.transitions(id), ["queued>sending", "sending>sent"]);
    assert.deepEqual((await s.outbox.list({ state: "sent" })).map((j) => j.id), [id]);
    assert.deepEqual(await s.outbox.list({ state: "queued" }), []);
  });

  t("enqueue checks and composes at once: a bad message stores nothing", async () => {
    await using s = await setup(open);
    await assert.rejects(s.outbox.enqueue(message(1, "not an address")), TypeError);
    await assert.rejects(
      s.outbox.enqueue({
        ...message(2),
        attachments: [{ filename: "x.pdf", path: "/nonexistent/postie/x.pdf" }],
      }),
    );
    await assert.rejects(s.outbox.enqueue({ from: "ann@example.com", text: "nobody" }), TypeError);
    assert.deepEqual(await s.outbox.list({}), []);
  });

  t("the same idempotency key enqueued twice is one message", async () => {
    await using s = await setup(open);
    const first = await s.outbox.enqueue(message(1), { idempotencyKey: "order-17" });
    const second = await s.outbox.enqueue(message(1), { idempotencyKey: "order-17" });
    const other = await s.outbox.enqueue(message(1), { idempotencyKey: "order-18" });
    assert.equal(first, second);
    assert.notEqual(first, other);
    await sendAll(s.outbox);
    // Enqueued again once sent: still the one message.
    assert.equal(await s.outbox.enqueue(message(1), { idempotencyKey: "order-17" }), first);
    assert.equal(s.server.messages.length, 2);
    assert.equal((await s.outbox.list({})).length, 2);
  });

  t("notBefore holds a message until its time", async () => {
    await using s = await setup(open);
    const at = Date.now() + 400;
    const id = await s.outbox.enqueue(message(1), { notBefore: new Date(at) });
    s.outbox.start();
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(s.server.messages.length, 0);
    assert.equal((await s.outbox.status(id))?.nextAttemptAt, at);
    await s.outbox.drain({ signal: AbortSignal.timeout(10_000) });
    assert.ok(Date.now() >= at);
    assert.equal(s.server.messages.length, 1);
  });

  t("a 4xx is retried with back-off until it goes through", async () => {
    await using s = await setup(open, [
      { command: "MAIL", reply: "451 4.3.0 Try later", times: 2 },
    ]);
    const id = await s.outbox.enqueue(message(1));
    await sendAll(s.outbox);
    const job = await s.outbox.status(id);
    assert.equal(job?.state, "sent");
    assert.equal(job?.attempts, 3);
    assert.deepEqual(s.transitions(id), [
      "queued>sending",
      "sending>retrying",
      "retrying>sending",
      "sending>retrying",
      "retrying>sending",
      "sending>sent",
    ]);
    assert.equal(s.server.messages.length, 1);
  });

  t("a broken connection before the end of the message is retried", async () => {
    await using s = await setup(open, [{ command: "DATA", drop: true, times: 1 }]);
    const id = await s.outbox.enqueue(message(1));
    await sendAll(s.outbox);
    assert.equal((await s.outbox.status(id))?.state, "sent");
    assert.equal(s.server.messages.length, 1);
  });

  t("accepted recipients are never sent again; deferred ones are retried alone", async () => {
    await using s = await setup(open, [
      { command: "RCPT", match: "cyd@example.com", reply: "450 4.2.1 Mailbox busy", times: 2 },
    ]);
    const id = await s.outbox.enqueue(message(1, ["bob@example.com", "cyd@example.com"]));
    await sendAll(s.outbox);
    const job = await s.outbox.status(id);
    assert.equal(job?.state, "sent");
    assert.equal(job?.attempts, 3);
    assert.deepEqual(s.server.messages.map((m) => m.envelope.to), [
      ["bob@example.com"],
      ["cyd@example.com"],
    ]);
    // The very same bytes: one Message-ID.
    const ids = new Set(s.server.messages.map((m) => m.headers.get("Message-ID")));
    assert.equal(ids.size, 1);
    assert.deepEqual(job?.recipients.map((r) => r.state), ["accepted", "accepted"]);
  });

  t("a 5xx is final for its recipient; the others get the message", async () => {
    await using s = await setup(open, [
      { command: "RCPT", match: "gone@example.com", reply: "550 5.1.1 No such user" },
    ]);
    const id = await s.outbox.enqueue(message(1, ["bob@example.com", "gone@example.com"]));
    await sendAll(s.outbox);
    const job = await s.outbox.status(id);
    assert.equal(job?.state, "sent");
    assert.equal(job?.attempts, 1);
    assert.deepEqual(job?.recipients.map((r) => [r.state, r.reply?.code]), [
      ["accepted", 250],
      ["refused", 550],
    ]);
    assert.deepEqual(job?.recipients[1]?.reply?.enhancedStatus, {
      class: 5,
      subject: 1,
      detail: 1,
    });
  });

  t("a message refused with a 5xx fails at once, kept with the reply", async () => {
    await using s = await setup(open, [{ command: "MESSAGE", reply: "554 5.7.1 Spam" }]);
    const id = await s.outbox.enqueue(message(1));
    await sendAll(s.outbox);
    const job = await s.outbox.status(id);
    assert.equal(job?.state, "failed");
    assert.equal(job?.attempts, 1);
    assert.equal(job?.lastError?.reply?.code, 554);
    assert.deepEqual(job?.lastError?.reply?.lines, ["Spam"]);
    assert.deepEqual(job?.recipients.map((r) => r.state), ["refused"]);
    assert.deepEqual((await s.outbox.list({ state: "failed" })).map((j) => j.id), [id]);
  });

  t("a message that may have arrived is left unknown and not sent again", async () => {
    await using s = await setup(open, [{ command: "MESSAGE", drop: true, times: 1 }]);
    const id = await s.outbox.enqueue(message(1));
    await sendAll(s.outbox);
    const job = await s.outbox.status(id);
    assert.equal(job?.state, "unknown");
    assert.equal(job?.attempts, 1);
    assert.match(job?.lastError?.message ?? "", /may have accepted it/);
    assert.deepEqual(s.transitions(id), ["queued>sending", "sending>unknown"]);
    assert.equal(s.server.connections, 1);
  });

  t("resendUnknown sends such a message again", async () => {
    await using s = await setup(open, [{ command: "MESSAGE", drop: true, times: 1 }], {
      resendUnknown: true,
    });
    const id = await s.outbox.enqueue(message(1));
    await sendAll(s.outbox);
    const job = await s.outbox.status(id);
    assert.equal(job?.state, "sent");
    assert.equal(job?.attempts, 2);
  });

  t("maxAttempts ends a message in failed with its last reply (dead letter)", async () => {
    await using s = await setup(open, [{ command: "MAIL", reply: "421 4.3.2 Shutting down" }], {
      maxAttempts: 3,
    });
    const id = await s.outbox.enqueue(message(1));
    await sendAll(s.outbox);
    const job = await s.outbox.status(id);
    assert.equal(job?.state, "failed");
    assert.equal(job?.attempts, 3);
    assert.equal(job?.lastError?.reply?.code, 421);
    assert.match(job?.lastError?.message ?? "", /^Gave up after 3 attempts/);
    assert.deepEqual(job?.recipients.map((r) => r.state), ["pending"]);
  });

  t("maxAgeMs ends a message that is still not delivered", async () => {
    await using s = await setup(open, [{ command: "MAIL", reply: "451 4.3.0 Later" }], {
      maxAgeMs: 600,
      maxAttempts: 1000,
      retryDelayMs: 40,
      maxRetryDelayMs: 80,
    });
    const id = await s.outbox.enqueue(message(1));
    await sendAll(s.outbox);
    const job = await s.outbox.status(id);
    assert.equal(job?.state, "failed");
    assert.match(job?.lastError?.message ?? "", /older than maxAgeMs/);
    assert.ok(job!.attempts >= 2);
  });

  t("a large message is stored in chunks and sent byte for byte", async () => {
    await using s = await setup(open);
    const content = new Uint8Array(1_500_000);
    for (let i = 0; i < content.length; i++) content[i] = (i * 7919) % 251;
    const id = await s.outbox.enqueue({
      ...message(1),
      attachments: [{ filename: "big.bin", content }],
    });
    assert.ok((await s.outbox.status(id))!.size > 2_000_000);
    await sendAll(s.outbox);
    assert.equal((await s.outbox.status(id))?.state, "sent");
    const text = s.server.messages[0]!.text;
    const base64 = text.slice(text.lastIndexOf("\r\n\r\n") + 4).split("--postie_")[0]!;
    const decoded = Uint8Array.from(atob(base64.replace(/\s/g, "")), (c) => c.charCodeAt(0));
    assert.deepEqual(decoded, content);
  });

  t("two workers never take the same job; a lost lease cannot write", async () => {
    await using s = await setup(open);
    const id = await s.outbox.enqueue(message(1));
    const claim = (job: OutboxJob): OutboxJob => ({ ...job, state: "sending" });
    const leases = await Promise.all([
      s.store.take(claim, 200),
      s.store.take(claim, 200),
      s.store.take(claim, 200),
    ]);
    const taken = leases.filter((lease) => lease !== undefined);
    assert.equal(taken.length, 1);
    // The lease runs out: another worker takes the job over.
    await new Promise((resolve) => setTimeout(resolve, 1300));
    const second = await s.store.take(claim, 5000);
    assert.equal(second?.job.id, id);
    await assert.rejects(
      taken[0]!.update({ ...taken[0]!.job, terminatorAt: Date.now() }),
      OutboxLeaseLostError,
    );
    await second!.release({ ...second!.job, state: "queued" });
  });

  t("a restarted worker resumes every state safely", async () => {
    await using s = await setup(open);
    const ids: Record<string, string> = {};
    for (const name of ["queued", "unmarked", "marked", "retrying", "sent", "failed", "unknown"]) {
      ids[name] = await s.outbox.enqueue(message(0, `${name}@example.com`));
    }
    // A first worker that dies: it took jobs and wrote states, then stopped for good.
    const take = async (name: string) => {
      for (let n = 0; n < 50; n++) {
        const lease = await s.store.take((job) => ({ ...job, state: "sending" }), 1500);
        if (lease && lease.job.id === ids[name]) return lease;
        if (lease) await lease.release({ ...lease.job, state: "queued" });
      }
      throw new Error(`could not take ${name}`);
    };
    const now = Date.now();
    const unmarked = await take("unmarked");
    const marked = await take("marked");
    await marked.update({ ...marked.job, terminatorAt: now });
    for (const state of ["retrying", "sent", "failed", "unknown"] as const) {
      const lease = await take(state);
      await lease.release({ ...lease.job, state, nextAttemptAt: now });
    }
    void unmarked;
    assert.equal((await s.outbox.status(ids.marked!))?.state, "sending");
    // A new worker: the leases of the dead one run out, and it takes over.
    await sendAll(s.outbox);
    const states = Object.fromEntries(
      await Promise.all(
        Object.entries(ids).map(async ([name, id]) => [name, (await s.outbox.status(id))?.state]),
      ),
    );
    assert.deepEqual(states, {
      queued: "sent",
      unmarked: "sent",
      marked: "unknown",
      retrying: "sent",
      sent: "sent",
      failed: "failed",
      unknown: "unknown",
    });
    const received = s.server.messages.map((m) => m.envelope.to[0]).sort();
    assert.deepEqual(received, [
      "queued@example.com",
      "retrying@example.com",
      "unmarked@example.com",
    ]);
  });
}
