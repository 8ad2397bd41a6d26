/**
 * A message that cannot be sent fails before any network I/O: no recipient, a typo in a field,
 * an invalid address, a missing attachment file. `sendMail()` and a pool's first send check it
 * before they connect; a connected client before it writes anything.
 */

import assert from "node:assert/strict";
import { sendMail, SmtpClient, SmtpPool } from "../../mod.ts";
import { MockSmtpServer, TranscriptRecorder } from "../../src/testing/mod.ts";
import { test } from "../_helpers/test.ts";

/** A message as a JavaScript user might write it: no type checker in the way. */
// deno-lint-ignore no-explicit-any
type Loose = any;

const from = "ann@example.com";

/** Messages that cannot be sent, and what the error must say. */
const unsendable: [string, Loose, RegExp][] = [
  [
    "a composed message without recipient",
    { from, subject: "Hi", text: "Hello" },
    /^Cannot send message: no recipient: to, cc and bcc are all empty$/,
  ],
  [
    "a typo in to",
    { from, too: ["bob@example.com"], text: "Hello" },
    /^Unknown field "too" in message: did you mean "to"\?$/,
  ],
  [
    "a typo in attachments",
    { from, to: "bob@example.com", attachements: [{ path: "a.pdf" }] },
    /did you mean "attachments"\?/,
  ],
  [
    "a typo in an attachment",
    { from, to: "bob@example.com", attachments: [{ fileName: "a.txt", content: "x" }] },
    /^Unknown field "fileName" in attachment 0: did you mean "filename"\?$/,
  ],
  [
    "nodemailer's href",
    { from, to: "bob@example.com", attachments: [{ href: "https://example.com/a.pdf" }] },
    /"href" in attachment 0: postie does not download/,
  ],
  [
    "an invalid address",
    { from, to: "bob at example.com", text: "Hello" },
    /^Cannot compose message: to: Invalid address/,
  ],
  [
    "a line break in a header",
    { from, to: "bob@example.com", subject: "Hi\r\nBcc: eve@example.com" },
    /Subject.*line break/,
  ],
  [
    "an envelope of its own without recipient",
    { from, to: "bob@example.com", envelope: { to: [] } },
    /^Cannot send message: the message's envelope has no recipient$/,
  ],
  [
    "a raw message without envelope",
    { raw: "Subject: Hi\r\n\r\nHello\r\n", from, to: "bob@example.com" },
    /"from" in raw message: a raw message is sent as it is: give envelope: \{ from, to \}/,
  ],
  [
    "a raw message with an empty recipient list",
    { raw: "Subject: Hi\r\n\r\nHello\r\n", envelope: { from, to: [] } },
    /^Cannot send message: the envelope has no recipient$/,
  ],
];

/** Messages whose attachment files cannot be read. */
const unreadable: [string, Loose, RegExp][] = [
  [
    "a missing attachment file",
    { from, to: "bob@example.com", attachments: [{ path: "/nonexistent/report.pdf" }] },
    /^Cannot read attachment "\/nonexistent\/report\.pdf"/,
  ],
  [
    "a directory as attachment file",
    { from, to: "bob@example.com", attachments: [{ content: { path: "/" } }] },
    /^Cannot read attachment "\/"/,
  ],
];

/** Asserts that `promise` rejects with a `TypeError` whose message matches `expected`. */
async function refused(promise: Promise<unknown> | (() => Promise<unknown>), expected: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof TypeError, String(error));
    assert.match(error.message, expected);
    return true;
  });
}

for (const [what, message, expected] of [...unsendable, ...unreadable]) {
  test(`sendMail() refuses ${what} before connecting`, async () => {
    await using server = new MockSmtpServer();
    await refused(
      sendMail({ hostname: "smtp.example.com", transport: server.transport }, message),
      expected,
    );
    assert.equal(server.connections, 0);
  });

  test(`a pool's first send refuses ${what} before connecting`, async () => {
    await using server = new MockSmtpServer();
    await using pool = new SmtpPool({ hostname: "smtp.example.com", transport: server.transport });
    await refused(pool.send(message), expected);
    assert.equal(server.connections, 0);
    assert.equal(pool.stats.connections, 0);
  });
}

for (const [what, message, expected] of unsendable) {
  test(`a connected client's send() refuses ${what} before writing anything`, async () => {
    await using server = new MockSmtpServer();
    const transcript = new TranscriptRecorder();
    await using client = await SmtpClient.connect({
      hostname: "smtp.example.com",
      transport: server.transport,
      onTranscript: transcript.onTranscript,
    });
    const written = transcript.lines.length;
    await refused(async () => await client.send(message), expected);
    assert.deepEqual(transcript.lines.slice(written), []);
    assert.equal(server.messages.length, 0);
  });
}

test("a message with recipients in its envelope only is sent to them", async () => {
  await using server = new MockSmtpServer();
  const result = await sendMail({ hostname: "smtp.example.com", transport: server.transport }, {
    from,
    subject: "Hi",
    text: "Hello",
    envelope: { to: ["bob@example.com"], bcc: { name: "Carol", address: "carol@example.com" } },
  });
  assert.deepEqual(result.envelope, { from, to: ["bob@example.com", "carol@example.com"] });
  assert.deepEqual(server.messages[0]!.envelope.to, ["bob@example.com", "carol@example.com"]);
});

test("send options' envelope gives a message without recipient headers its recipients", async () => {
  await using server = new MockSmtpServer();
  const result = await sendMail(
    { hostname: "smtp.example.com", transport: server.transport },
    { from, subject: "Hi", text: "Hello" },
    { envelope: { from, to: ["bob@example.com"] } },
  );
  assert.equal(result.accepted.length, 1);
});

test("custom headers stay open: any name the builder does not write is taken", async () => {
  await using server = new MockSmtpServer();
  await sendMail({ hostname: "smtp.example.com", transport: server.transport }, {
    from,
    to: "bob@example.com",
    headers: { "X-Campaign": "spring", "x-anything-else": ["one", "two"] },
  });
  const headers = server.messages[0]!.headers;
  assert.equal(headers.get("X-Campaign"), "spring");
  assert.deepEqual(headers.getAll("X-Anything-Else"), ["one", "two"]);
});

test("sendMail() refuses a nodemailer-style callback before connecting", async () => {
  await using server = new MockSmtpServer();
  await refused(
    sendMail(
      { hostname: "smtp.example.com", transport: server.transport },
      { from, to: "bob@example.com" },
      (() => {}) as Loose,
    ),
    /postie takes no callback: await the promise instead/,
  );
  assert.equal(server.connections, 0);
});
