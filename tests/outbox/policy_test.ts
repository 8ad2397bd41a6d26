/**
 * What an attempt's outcome does to a job (src/outbox/_policy.ts), as a table: outcome in,
 * state and recipients out.
 */
import assert from "node:assert/strict";
import {
  SmtpConnectionError,
  SmtpRecipientsError,
  SmtpReplyError,
  SmtpTimeoutError,
  SmtpUnsupportedError,
} from "../../src/errors.ts";
import {
  afterAttempt,
  afterLostWorker,
  backoff,
  claimed,
  type Outcome,
  type Policy,
} from "../../src/outbox/_policy.ts";
import type { OutboxJob } from "../../src/outbox/types.ts";
import type { SmtpReply } from "../../src/types.ts";
import { test } from "../_helpers/test.ts";

const policy: Policy = {
  maxAttempts: 5,
  maxAgeMs: 60_000,
  retryDelayMs: 1000,
  maxRetryDelayMs: 8000,
  resendUnknown: false,
};
const NOW = 1_000_000;
const job: OutboxJob = {
  id: "j",
  state: "sending",
  attempts: 1,
  createdAt: NOW - 1000,
  updatedAt: NOW - 1000,
  nextAttemptAt: NOW - 1000,
  from: "a@example.com",
  recipients: [
    { address: "b@example.com", state: "pending" },
    { address: "c@example.com", state: "pending" },
  ],
  size: 100,
  terminatorAt: NOW - 10,
};
const reply = (code: number): SmtpReply => ({ code, lines: [`${code} reply`] });
const b = (code: number) => ({ address: "b@example.com", reply: reply(code) });
const c = (code: number) => ({ address: "c@example.com", reply: reply(code) });
const sent = (accepted: ReturnType<typeof b>[], rejected: ReturnType<typeof b>[]): Outcome => ({
  ok: true,
  result: { envelope: { from: "a", to: [] }, accepted, rejected, reply: reply(250) },
});
const failed = (error: unknown): Outcome => ({ ok: false, error });

const table: [string, Outcome, string, string[]][] = [
  ["both accepted", sent([b(250), c(250)], []), "sent", ["accepted", "accepted"]],
  ["one refused for good", sent([b(250)], [c(550)]), "sent", ["accepted", "refused"]],
  ["one deferred", sent([b(250)], [c(450)]), "retrying", ["accepted", "deferred"]],
  [
    "every recipient 4xx",
    failed(new SmtpRecipientsError("none", [], [b(451), c(451)])),
    "retrying",
    ["deferred", "deferred"],
  ],
  [
    "every recipient 5xx",
    failed(new SmtpRecipientsError("none", [], [b(550), c(550)])),
    "failed",
    ["refused", "refused"],
  ],
  [
    "4xx to MAIL",
    failed(new SmtpReplyError("Sender refused", "mail", "MAIL", reply(451))),
    "retrying",
    ["pending", "pending"],
  ],
  [
    "5xx to the data",
    failed(new SmtpReplyError("Message refused", "data", ".", reply(554))),
    "failed",
    ["refused", "refused"],
  ],
  [
    "connection lost before the end",
    failed(new SmtpConnectionError("lost", "data")),
    "retrying",
    ["pending", "pending"],
  ],
  [
    "connection lost after the end",
    failed(new SmtpConnectionError("lost", "data", { outcomeUnknown: true })),
    "unknown",
    ["pending", "pending"],
  ],
  [
    "timeout after the end, one recipient had it from an earlier transaction",
    failed(new SmtpTimeoutError("late", "data", 5, { outcomeUnknown: true, accepted: [b(250)] })),
    "unknown",
    ["accepted", "pending"],
  ],
  [
    "the server lacks an extension",
    failed(new SmtpUnsupportedError("no SMTPUTF8", "mail", "SMTPUTF8")),
    "failed",
    ["pending", "pending"],
  ],
  ["an unexpected error", failed(new Error("store down")), "retrying", ["pending", "pending"]],
];

for (const [what, outcome, state, recipients] of table) {
  test(`outbox policy: ${what} -> ${state} (${recipients.join(", ")})`, () => {
    const next = afterAttempt(job, outcome, policy, NOW, 0.5);
    assert.equal(next.state, state);
    assert.deepEqual(next.recipients.map((r) => r.state), recipients);
    assert.equal(next.terminatorAt, undefined);
    if (state === "retrying") assert.equal(next.nextAttemptAt, NOW + 750);
  });
}

test("outbox policy: the 5xx of a refused message is kept per recipient", () => {
  const next = afterAttempt(
    job,
    failed(new SmtpReplyError("Message refused", "data", ".", reply(554))),
    policy,
    NOW,
  );
  assert.deepEqual(next.recipients.map((r) => r.reply?.code), [554, 554]);
  assert.equal(next.lastError?.reply?.code, 554);
});

test("outbox policy: accepted and refused recipients stay as they were on a retry", () => {
  const earlier: OutboxJob = {
    ...job,
    recipients: [
      { address: "b@example.com", state: "accepted", reply: reply(250) },
      { address: "c@example.com", state: "deferred", reply: reply(450) },
    ],
  };
  const next = afterAttempt(earlier, sent([c(250)], []), policy, NOW);
  assert.equal(next.state, "sent");
  assert.deepEqual(next.recipients.map((r) => [r.state, r.reply?.code]), [
    ["accepted", 250],
    ["accepted", 250],
  ]);
});

test("outbox policy: resendUnknown retries what may have been delivered", () => {
  const lost = failed(new SmtpConnectionError("lost", "data", { outcomeUnknown: true }));
  const next = afterAttempt(job, lost, { ...policy, resendUnknown: true }, NOW, 0);
  assert.equal(next.state, "retrying");
});

test("outbox policy: maxAttempts and maxAgeMs end in failed with the last reply", () => {
  const busy = failed(new SmtpReplyError("Sender refused", "mail", "MAIL", reply(421)));
  const last = afterAttempt({ ...job, attempts: 5 }, busy, policy, NOW);
  assert.equal(last.state, "failed");
  assert.equal(last.lastError?.reply?.code, 421);
  assert.match(last.lastError!.message, /^Gave up after 5 attempts: Sender refused/);
  const old = afterAttempt({ ...job, createdAt: NOW - 59_999 }, busy, policy, NOW);
  assert.equal(old.state, "failed");
  assert.match(old.lastError!.message, /^Gave up older than maxAgeMs/);
});

test("outbox policy: back-off doubles up to its limit, with up to half taken off", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 9].map((n) => backoff(policy, n, 1)), [
    1000,
    2000,
    4000,
    8000,
    8000,
    8000,
  ]);
  assert.deepEqual([1, 2, 4].map((n) => backoff(policy, n, 0)), [500, 1000, 4000]);
});

test("outbox policy: a job found with its write-ahead mark is unknown, or sent again", () => {
  assert.equal(afterLostWorker(job, policy, NOW).state, "unknown");
  const again = afterLostWorker(job, { ...policy, resendUnknown: true }, NOW);
  assert.equal(again.state, "sending");
  assert.equal(again.terminatorAt, undefined);
  assert.deepEqual(claimed({ ...job, state: "queued", attempts: 0 }, NOW), {
    ...job,
    state: "sending",
    attempts: 1,
    updatedAt: NOW,
  });
});
