/**
 * Recipient limits: a message to more recipients than the server takes in one transaction
 * (it answers "452 4.5.3 too many recipients", or announces `LIMITS RCPTMAX`) goes out in
 * further transactions with the same bytes, each recipient exactly once, and one merged result;
 * `LIMITS MAILMAX` makes the client reconnect before the server's limit.
 */

import assert from "node:assert/strict";
import {
  type Message,
  type RawMessage,
  type SendResult,
  SmtpClient,
  SmtpConnectionError,
  SmtpPool,
  SmtpRecipientsError,
  SmtpReplyError,
  type TranscriptEvent,
} from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { type LimitServer, MODES, startLimitServer, type Transaction } from "./_limit_server.ts";

type Mode = keyof typeof MODES;

const recipients = (n: number, domain = "example.com") =>
  Array.from({ length: n }, (_, i) => `r${String(i + 1).padStart(2, "0")}@${domain}`);

const raw = (to: readonly string[]): RawMessage => ({
  raw: "From: a@example.com\r\nSubject: many\r\nMessage-ID: <many@example.com>\r\n\r\n" +
    "Hello, all of you.\r\n.a line with a dot\r\n",
  envelope: { from: "a@example.com", to: [...to] },
});

function connect(server: LimitServer, transcript: TranscriptEvent[] = []) {
  return SmtpClient.connect({
    hostname: "127.0.0.1",
    port: server.port,
    tls: "none",
    onTranscript: (event) => transcript.push(event),
  });
}

/** Every recipient got exactly one copy, and every copy is the same bytes. */
function assertEachOnce(delivered: readonly Transaction[], to: readonly string[]): void {
  const got = delivered.flatMap((t) => t.to);
  assert.deepEqual([...got].sort(), [...to].sort(), "each recipient exactly once");
  for (const t of delivered) assert.equal(t.data, delivered[0]!.data, "the same bytes");
}

const addresses = (results: SendResult["accepted"]) => results.map((r) => r.address);

for (const mode of Object.keys(MODES) as Mode[]) {
  test(`"452 4.5.3 too many recipients": the rest go in further transactions (${mode})`, async () => {
    await using server = startLimitServer({ extensions: MODES[mode], limit: 5 });
    const to = recipients(12);
    const client = await connect(server);
    const result = await client.send(raw(to));
    await client.quit();
    await server.close();

    assert.equal(server.delivered.length, 3);
    assert.deepEqual(server.delivered.map((t) => t.to.length), [5, 5, 2]);
    assert.deepEqual(server.delivered.map((t) => t.connection), [0, 0, 0]);
    assertEachOnce(server.delivered, to);
    assert.match(server.delivered[0]!.data, /^From: a@example\.com\r\n/);
    // One merged result: every recipient accepted in order, none refused; the last data reply.
    assert.deepEqual(addresses(result.accepted), to);
    assert.deepEqual(result.rejected, []);
    assert.deepEqual(result.envelope, { from: "a@example.com", to });
    assert.equal(result.reply.lines[0], "Ok: queued as 2");
    // Each further transaction asked only for the deferred recipients.
    const rcpts = server.commands[0]!.filter((c) => c.startsWith("RCPT"));
    assert.equal(rcpts.length, 12 + 7 + 2);
  });
}

test("without enhanced status codes, the text 'too many recipients' defers too", async () => {
  await using server = startLimitServer({
    extensions: ["PIPELINING"],
    limit: 2,
    tooMany: "452 Too many recipients",
  });
  const to = recipients(5);
  const client = await connect(server);
  const result = await client.send(raw(to));
  await client.quit();
  await server.close();
  assert.deepEqual(server.delivered.map((t) => t.to.length), [2, 2, 1]);
  assertEachOnce(server.delivered, to);
  assert.deepEqual(addresses(result.accepted), to);
});

test("552 5.5.3 (RFC 821's code for it) defers like 452; other refusals are merged", async () => {
  await using server = startLimitServer({
    extensions: ["PIPELINING", "CHUNKING"],
    limit: 3,
    tooMany: "552 5.5.3 Too many recipients",
    rcpt: (address) =>
      address.startsWith("r02") || address.startsWith("r05")
        ? "550 5.1.1 No such user"
        : "250 2.1.5 Ok",
  });
  const to = recipients(8);
  const client = await connect(server);
  const result = await client.send(raw(to));
  await client.quit();
  await server.close();
  const refused = ["r02@example.com", "r05@example.com"];
  const expected = to.filter((a) => !refused.includes(a));
  assertEachOnce(server.delivered, expected);
  assert.deepEqual([...addresses(result.accepted)].sort(), expected);
  assert.deepEqual(addresses(result.rejected).sort(), refused);
  assert.ok(result.rejected.every((r) => r.reply.code === 550));
});

for (const mode of ["DATA+PIPELINING", "BDAT+PIPELINING", "BDAT"] as const) {
  test(`a composed message with a file over 256 KiB is composed byte for byte again (${mode})`, async () => {
    const file = await Deno.makeTempFile({ prefix: "postie-limits-" });
    try {
      await Deno.writeFile(file, new Uint8Array(300 * 1024).map((_, i) => (i * 7) & 0xff));
      await using server = startLimitServer({ extensions: MODES[mode], limit: 3 });
      const to = recipients(7);
      const message: Message = {
        from: "a@example.com",
        to: to.slice(0, 4),
        bcc: to.slice(4),
        subject: "with a file",
        text: "see attached",
        html: "<p>see attached</p>",
        attachments: [{ filename: "data.bin", content: { path: file } }],
      };
      const client = await connect(server);
      const result = await client.send(message);
      await client.quit();
      await server.close();
      assert.deepEqual(server.delivered.map((t) => t.to.length), [3, 3, 1]);
      assertEachOnce(server.delivered, to);
      assert.ok(server.delivered[0]!.data.length > 400_000);
      // One Message-ID in every copy, and it is the result's.
      const ids = server.delivered.map((t) => /^Message-ID: (.*)$/m.exec(t.data)?.[1]?.trim());
      assert.deepEqual(ids, Array(3).fill(result.messageId));
      assert.deepEqual(addresses(result.accepted), to);
    } finally {
      await Deno.remove(file);
    }
  });
}

test("a composed message held in memory goes as the same bytes to every transaction", async () => {
  await using server = startLimitServer({ extensions: ["PIPELINING", "CHUNKING"], limit: 2 });
  const to = recipients(5);
  const client = await connect(server);
  const result = await client.send({
    from: "a@example.com",
    to,
    subject: "small",
    text: "hello",
    attachments: [{ filename: "a.txt", content: "attached" }],
  });
  await client.quit();
  await server.close();
  assertEachOnce(server.delivered, to);
  assert.equal(server.delivered.length, 3);
  assert.ok(server.delivered[0]!.data.includes(`Message-ID: ${result.messageId}`));
});

test("LIMITS RCPTMAX splits the recipients up front; the server never defers one", async () => {
  await using server = startLimitServer({
    extensions: ["PIPELINING", "LIMITS RCPTMAX=4"],
    limit: 4,
  });
  const to = recipients(10);
  const client = await connect(server);
  assert.equal(client.capabilities.limits.rcptMax, 4);
  const result = await client.send(raw(to));
  await client.quit();
  await server.close();
  assert.deepEqual(server.delivered.map((t) => t.to.length), [4, 4, 2]);
  assertEachOnce(server.delivered, to);
  assert.deepEqual(addresses(result.accepted), to);
  assert.equal(server.commands[0]!.filter((c) => c.startsWith("RCPT")).length, 10);
  assert.ok(!server.replies[0]!.some((r) => r.startsWith("452")), "a recipient was deferred");
});

test("LIMITS RCPTDOMAINMAX keeps each transaction to that many recipient domains", async () => {
  await using server = startLimitServer({ extensions: ["PIPELINING", "LIMITS RCPTDOMAINMAX=2"] });
  const to = [
    "a1@one.example",
    "b1@two.example",
    "c1@three.example",
    "a2@ONE.example",
    "b2@two.example",
    "c2@three.example",
  ];
  const client = await connect(server);
  const result = await client.send(raw(to));
  await client.quit();
  await server.close();
  assertEachOnce(server.delivered, to);
  const domains = server.delivered.map((t) =>
    new Set(t.to.map((a) => a.split("@")[1]!.toLowerCase()))
  );
  assert.ok(domains.every((d) => d.size <= 2), JSON.stringify(domains.map((d) => [...d])));
  assert.deepEqual(server.delivered.map((t) => t.to), [
    ["a1@one.example", "b1@two.example", "a2@ONE.example", "b2@two.example"],
    ["c1@three.example", "c2@three.example"],
  ]);
  assert.equal(result.accepted.length, 6);
});

test("a caller's stream is sent once: recipients it could not reach are refused with the server's reply", async () => {
  for (const extensions of [["PIPELINING", "CHUNKING"], ["PIPELINING", "LIMITS RCPTMAX=3"]]) {
    await using server = startLimitServer({ extensions, limit: 3 });
    const to = recipients(5);
    const bytes = new TextEncoder().encode("Subject: stream\r\n\r\nstreamed\r\n");
    const client = await connect(server);
    const result = await client.send({
      raw: new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(bytes);
          controller.close();
        },
      }),
      envelope: { from: "a@example.com", to },
    });
    await client.quit();
    await server.close();
    // One transaction (the stream cannot be read twice), every recipient asked for.
    assert.equal(server.delivered.length, 1, extensions.join(" "));
    assert.deepEqual(server.delivered[0]!.to, to.slice(0, 3));
    assert.deepEqual(addresses(result.accepted), to.slice(0, 3));
    assert.deepEqual(addresses(result.rejected), to.slice(3));
    for (const r of result.rejected) {
      assert.equal(r.reply.code, 452);
      assert.deepEqual(r.reply.enhancedStatus, { class: 4, subject: 5, detail: 3 });
    }
  }
});

test("a transaction that accepts nobody and defers some is not repeated", async () => {
  // First transaction: every recipient deferred. The send fails, after one MAIL.
  {
    await using server = startLimitServer({ extensions: ["PIPELINING"], limit: 0 });
    const client = await connect(server);
    const error = await client.send(raw(recipients(3))).catch((e) => e);
    await client.quit();
    await server.close();
    assert.ok(error instanceof SmtpRecipientsError);
    assert.equal(error.rejected.length, 3);
    assert.ok(error.rejected.every((r) => r.reply.code === 452));
    assert.equal(server.commands[0]!.filter((c) => c.startsWith("MAIL")).length, 1);
  }
  // A later transaction: the ones it deferred are refused with its reply; the send succeeds.
  {
    await using server = startLimitServer({
      extensions: ["PIPELINING", "CHUNKING"],
      limit: (transaction) => transaction === 0 ? 2 : 0,
    });
    const to = recipients(5);
    const client = await connect(server);
    const result = await client.send(raw(to));
    await client.quit();
    await server.close();
    assert.deepEqual(addresses(result.accepted), to.slice(0, 2));
    assert.deepEqual(addresses(result.rejected), to.slice(2));
    assert.ok(result.rejected.every((r) => r.reply.code === 452));
    assert.equal(server.commands[0]!.filter((c) => c.startsWith("MAIL")).length, 2);
    assert.equal(result.reply.lines[0], "Ok: queued as 0");
  }
});

test("a split send among queued, pipelined sends: every message reaches each recipient once", async () => {
  await using server = startLimitServer({ extensions: ["PIPELINING", "CHUNKING"], limit: 4 });
  const client = await connect(server);
  const big = recipients(10, "big.example");
  const sends = [
    client.send(raw(["x1@small.example"])),
    client.send(raw(big)),
    client.send(raw(["x2@small.example"])),
    client.send(raw(["x3@small.example"])),
  ];
  const results = await Promise.all(sends);
  await client.quit();
  await server.close();
  assert.deepEqual(addresses(results[1]!.accepted), big);
  const bigCopies = server.delivered.filter((t) => t.to.some((a) => a.endsWith("@big.example")));
  assertEachOnce(bigCopies, big);
  assert.equal(server.delivered.length, 3 + 3);
});

for (const runner of ["client", "pool"] as const) {
  test(`${runner}: a 421 to the second transaction is retried for the remaining recipients only`, async () => {
    await using server = startLimitServer({
      extensions: ["PIPELINING", "CHUNKING"],
      limit: 5,
      onMail: (transaction) => transaction === 1 ? "421 4.3.2 Service shutting down" : undefined,
    });
    const to = recipients(12);
    const result = await sendWith(runner, server, raw(to));
    await server.close();
    assertEachOnce(server.delivered, to);
    assert.deepEqual(server.delivered.map((t) => [t.connection, t.to.length]), [
      [0, 5],
      [1, 5],
      [1, 2],
    ]);
    assert.deepEqual(addresses(result.accepted), to);
  });

  test(`${runner}: a refusal in the second transaction names the recipients that have it`, async () => {
    await using server = startLimitServer({
      extensions: ["PIPELINING"],
      limit: 5,
      onEnd: (transaction) =>
        transaction === 1 ? "554 5.7.1 Rejected for policy reasons" : undefined,
    });
    const to = recipients(12);
    const error = await sendWith(runner, server, raw(to)).catch((e) => e);
    await server.close();
    assert.ok(error instanceof SmtpReplyError, String(error));
    assert.equal(error.code, 554);
    assert.equal(error.outcomeUnknown, false);
    assert.deepEqual(addresses(error.accepted), to.slice(0, 5));
    assert.equal(
      error.message,
      "Message refused (after 5 recipients had accepted it in an earlier transaction: see " +
        "error.accepted): 554 5.7.1 Rejected for policy reasons",
    );
    // Not retried (a 5xx), and the first five got their one copy.
    assert.deepEqual(server.delivered.map((t) => t.to.length), [5]);
  });

  test(`${runner}: a connection lost after the second transaction's data is outcomeUnknown with accepted`, async () => {
    await using server = startLimitServer({
      extensions: ["PIPELINING", "CHUNKING"],
      limit: 5,
      onEnd: (transaction) => transaction === 1 ? "cut" : undefined,
    });
    const to = recipients(12);
    const error = await sendWith(runner, server, raw(to)).catch((e) => e);
    await server.close();
    assert.ok(error instanceof SmtpConnectionError, String(error));
    assert.equal(error.outcomeUnknown, true);
    assert.deepEqual(addresses(error.accepted), to.slice(0, 5));
    assert.match(error.message, /after 5 recipients had accepted it in an earlier transaction/);
    assert.equal(server.delivered.length, 1);
  });
}

test("quit() while a split send is under way: the send fails naming those that have the message", async () => {
  await using server = startLimitServer({ extensions: ["PIPELINING"], limit: 5 });
  const to = recipients(12);
  const client = await connect(server);
  const sent = client.send(raw(to)).catch((error) => error);
  await client.quit();
  const error = await sent;
  await server.close();
  assert.ok(error instanceof SmtpConnectionError, String(error));
  assert.equal(error.outcomeUnknown, false);
  assert.deepEqual(addresses(error.accepted), to.slice(0, 5));
  assert.match(error.message, /^The client has quit \(after 5 recipients had accepted it/);
  assert.deepEqual(server.delivered.map((t) => t.to.length), [5]);
});

async function sendWith(
  runner: "client" | "pool",
  server: LimitServer,
  message: RawMessage | Message,
): Promise<SendResult> {
  const options = { hostname: "127.0.0.1", port: server.port, tls: "none" } as const;
  if (runner === "client") {
    const client = await SmtpClient.connect(options);
    try {
      return await client.send(message);
    } finally {
      await client.quit();
    }
  }
  const pool = new SmtpPool({ ...options, maxConnections: 1, retryDelayMs: 1 });
  try {
    return await pool.send(message);
  } finally {
    await pool.close();
  }
}

test("LIMITS MAILMAX: the client ends the connection with QUIT and reconnects in time", async () => {
  await using server = startLimitServer({
    extensions: ["PIPELINING", "CHUNKING", "LIMITS MAILMAX=2"],
    onMail: (transaction) => transaction > 100 ? "451 4.5.3 Too many transactions" : undefined,
  });
  const transcript: TranscriptEvent[] = [];
  const client = await connect(server, transcript);
  // Queued and pipelined: the reconnect happens in turn, after every earlier reply was read.
  const results = await Promise.all(
    Array.from({ length: 5 }, (_, i) => client.send(raw([`q${i}@example.com`]))),
  );
  // One after another, and a split send that crosses the limit.
  await client.send(raw(["s1@example.com"]));
  await client.send({ ...raw(recipients(3)) }, {});
  await client.quit();
  await server.close();
  assert.equal(results.length, 5);
  const mails = server.commands.map((c) => c.filter((l) => l.startsWith("MAIL")).length);
  assert.ok(mails.every((n) => n <= 2), JSON.stringify(mails));
  assert.equal(mails.reduce((a, b) => a + b), 7);
  for (const commands of server.commands) assert.equal(commands.at(-1), "QUIT");
  assert.ok(
    transcript.some((e) =>
      e.line === "LIMITS MAILMAX=2 reached: reconnecting for the next transaction"
    ),
  );
});

test("LIMITS MAILMAX with RCPTMAX: a split send continues on the next connection", async () => {
  await using server = startLimitServer({
    extensions: ["PIPELINING", "LIMITS MAILMAX=2 RCPTMAX=2"],
  });
  const to = recipients(5);
  const client = await connect(server);
  const result = await client.send(raw(to));
  await client.quit();
  await server.close();
  assertEachOnce(server.delivered, to);
  assert.deepEqual(server.delivered.map((t) => [t.connection, t.to.length]), [
    [0, 2],
    [0, 2],
    [1, 1],
  ]);
  assert.deepEqual(addresses(result.accepted), to);
});

test("LIMITS MAILMAX: a pool's connection reconnects by itself and keeps working", async () => {
  await using server = startLimitServer({ extensions: ["PIPELINING", "LIMITS MAILMAX=3"] });
  const pool = new SmtpPool({
    hostname: "127.0.0.1",
    port: server.port,
    tls: "none",
    maxConnections: 1,
  });
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, i) => pool.send(raw([`p${i}@example.com`]))),
  );
  await pool.close();
  await server.close();
  assert.equal(results.length, 8);
  assert.equal(server.delivered.length, 8);
  const mails = server.commands.map((c) => c.filter((l) => l.startsWith("MAIL")).length);
  assert.deepEqual(mails, [3, 3, 2]);
});
