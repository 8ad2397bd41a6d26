import assert from "node:assert/strict";
import { SmtpPool } from "../../src/pool.ts";
import { PoolQueueFullError, SmtpError } from "../../src/errors.ts";
import { SmtpClient } from "../../src/client.ts";
import { SmtpConnectionError, SmtpRecipientsError, SmtpReplyError } from "../../src/errors.ts";
import { test } from "../_helpers/test.ts";
import { startSmtpServer } from "../_helpers/smtp_server.ts";
import { expectLine, greet, serveEsmtp, startScriptedServer } from "../_helpers/scripted_server.ts";

const plain = (port: number) => ({ hostname: "127.0.0.1", port, tls: "none" as const });

function message(n = 0) {
  return {
    raw: `From: a@example.com\r\nTo: b@example.com\r\nSubject: ${n}\r\n\r\nHello ${n}\r\n`,
    envelope: { from: "a@example.com", to: ["b@example.com"] },
  };
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits until `condition` holds, polling; fails after `ms`. */
async function until(condition: () => boolean, ms = 3000): Promise<void> {
  const start = performance.now();
  while (!condition()) {
    if (performance.now() - start > ms) throw new Error("Condition not reached in time");
    await delay(5);
  }
}

/** A promise with its resolve function, to hold a borrowed client. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => open = resolve);
  return { promise, open };
}

/** A scripted ESMTP server that records each connection's commands and whether it is open. */
function esmtpServer(
  options: { rcpt?: (address: string) => string; extensions?: string[] } = {},
) {
  const logs: { commands: string[]; count: number }[] = [];
  let open = 0;
  let maxOpen = 0;
  const server = startScriptedServer(async (conn, index) => {
    open++;
    maxOpen = Math.max(maxOpen, open);
    try {
      logs[index] = await serveEsmtp(conn, {
        extensions: options.extensions ?? ["PIPELINING"],
        ...(options.rcpt ? { rcpt: options.rcpt } : {}),
      });
    } finally {
      open--;
    }
  });
  return {
    server,
    logs,
    get open() {
      return open;
    },
    get maxOpen() {
      return maxOpen;
    },
  };
}

test("SmtpPool rejects bad limits before any network I/O", () => {
  const base = plain(1);
  assert.throws(() => new SmtpPool({ ...base, maxConnections: 0 }), RangeError);
  assert.throws(() => new SmtpPool({ ...base, maxMessages: 1.5 }), RangeError);
  assert.throws(() => new SmtpPool({ ...base, maxQueue: -1 }), RangeError);
  assert.throws(() => new SmtpPool({ ...base, retries: -1 }), RangeError);
  assert.throws(() => new SmtpPool({ ...base, idleTimeoutMs: NaN }), RangeError);
  assert.throws(
    () => new SmtpPool({ ...base, rateLimit: { messages: 0, intervalMs: 100 } }),
    RangeError,
  );
  new SmtpPool({ ...base, maxMessages: Infinity, maxQueue: Infinity });
});

test("send() never has more than maxConnections open at once (counted by the server)", async () => {
  let open = 0;
  let maxOpen = 0;
  let connections = 0;
  await using server = await startSmtpServer({
    onConnect(_session, callback) {
      connections++;
      maxOpen = Math.max(maxOpen, ++open);
      callback();
    },
    onClose() {
      open--;
    },
  });
  const pool = new SmtpPool({ ...plain(server.port), maxConnections: 3 });
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => pool.send(message(i))));
  await pool.close();
  assert.equal(results.length, 40);
  assert.equal(server.received.length, 40);
  assert.equal(connections, 3, "concurrent sends spread over every allowed connection");
  assert.ok(maxOpen <= 3, `at most 3 open at once, saw ${maxOpen}`);
  await until(() => open === 0);
});

test("send() reuses a parked connection for messages sent one after another", async () => {
  const s = esmtpServer();
  await using _server = s.server;
  await using pool = new SmtpPool(plain(s.server.port));
  for (let i = 0; i < 10; i++) await pool.send(message(i));
  assert.deepEqual(pool.stats, { connections: 1, idle: 1, inFlight: 0, queued: 0 });
  await pool.close();
  assert.equal(s.server.connections.length, 1);
  assert.equal(s.logs[0]!.count, 10);
  assert.equal(s.logs[0]!.commands.at(-1), "QUIT");
});

test("a connection is quit and replaced after maxMessages", async () => {
  const s = esmtpServer();
  await using _server = s.server;
  await using pool = new SmtpPool({ ...plain(s.server.port), maxConnections: 1, maxMessages: 3 });
  await Promise.all(Array.from({ length: 7 }, (_, i) => pool.send(message(i))));
  await pool.close();
  assert.deepEqual(s.logs.map((log) => log.count), [3, 3, 1]);
  assert.ok(s.logs.every((log) => log.commands.at(-1) === "QUIT"));
  assert.equal(s.maxOpen, 1);
});

test("a parked connection that the server dropped is checked, discarded and replaced", async () => {
  await using server = startScriptedServer(async (conn, index) => {
    if (index > 0) return void await serveEsmtp(conn, { extensions: ["PIPELINING"] });
    // The first connection takes one message, then the server goes away without a word.
    await greet(conn, ["PIPELINING"]);
    await expectLine(conn, "MAIL");
    await expectLine(conn, "RCPT");
    await expectLine(conn, "DATA");
    await conn.send("250 OK\r\n250 OK\r\n354 Go\r\n");
    await conn.readData();
    await conn.send("250 queued\r\n");
  });
  const sent: string[] = [];
  await using pool = new SmtpPool({
    ...plain(server.port),
    onTranscript: (event) => event.direction === "client" && sent.push(event.line),
  });
  await pool.send(message(1));
  // Past the idle time after which a parked connection is checked with NOOP before reuse.
  await delay(1100);
  const result = await pool.send(message(2));
  assert.equal(result.reply.code, 250);
  await pool.close();
  assert.equal(server.connections.length, 2);
  assert.deepEqual(
    sent.filter((line) => /^(NOOP|MAIL|QUIT)/.test(line)).map((l) => l.slice(0, 4)),
    [
      "MAIL",
      "NOOP",
      "MAIL",
      "QUIT",
    ],
  );
});

test("a 421 greeting is retried on a fresh connection", async () => {
  await using server = startScriptedServer(async (conn, index) => {
    if (index === 0) return void await conn.send("421 4.3.2 Too busy, try later\r\n");
    await serveEsmtp(conn, { extensions: ["PIPELINING"] });
  });
  await using pool = new SmtpPool({ ...plain(server.port), retryDelayMs: 10 });
  const result = await pool.send(message());
  assert.equal(result.reply.code, 250);
  await pool.close();
  assert.equal(server.connections.length, 2);
});

test("transient failures are retried at most `retries` times", async () => {
  await using server = startScriptedServer(async (conn) => {
    await conn.send("421 4.3.2 Too busy, try later\r\n");
  });
  await using pool = new SmtpPool({ ...plain(server.port), retries: 2, retryDelayMs: 40 });
  const start = performance.now();
  await assert.rejects(
    pool.send(message()),
    (error: unknown) => error instanceof SmtpReplyError && error.code === 421,
  );
  // Exponential back-off: 40 ms, then 80 ms.
  assert.ok(performance.now() - start >= 115, `${performance.now() - start} ms`);
  await pool.close();
  assert.equal(server.connections.length, 3);
});

test("a 4xx reply to MAIL is retried on a fresh connection, up to the limit", async () => {
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, []);
    await expectLine(conn, "MAIL FROM:");
    await conn.send("451 4.3.0 Try again later\r\n");
    await conn.waitForClose();
  });
  await using pool = new SmtpPool({ ...plain(server.port), retries: 1, retryDelayMs: 5 });
  await assert.rejects(
    pool.send(message()),
    (error: unknown) =>
      error instanceof SmtpReplyError && error.code === 451 && error.phase === "mail",
  );
  await pool.close();
  assert.equal(server.connections.length, 2);
});

test("a stream body refused before it was read is retried whole, then the error is reported", async () => {
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, []);
    await expectLine(conn, "MAIL FROM:");
    await conn.send("451 4.3.0 Try again later\r\n");
    await conn.waitForClose();
  });
  await using pool = new SmtpPool({ ...plain(server.port), retryDelayMs: 5 });
  const raw = new Blob([message().raw]).stream();
  await assert.rejects(
    pool.send({ raw, envelope: message().envelope }),
    (error: unknown) => error instanceof SmtpReplyError && error.code === 451,
  );
  await pool.close();
  assert.equal(server.connections.length, 3, "the first attempt and two retries");
  assert.equal(raw.locked, false, "the caller's stream is left unread and unlocked");
  assert.equal(await new Response(raw).text(), message().raw);
});

test("bad input rejects without retry and the connection stays in use", async () => {
  const s = esmtpServer();
  await using _server = s.server;
  await using pool = new SmtpPool(plain(s.server.port));
  await assert.rejects(
    pool.send({ raw: "x", envelope: { from: "a@example.com", to: [] } }),
    TypeError,
  );
  await pool.send(message());
  await pool.close();
  assert.equal(s.server.connections.length, 1);
});

test("recipients refused only with 4xx (greylisting) are retried", async () => {
  let attempts = 0;
  const s = esmtpServer({
    rcpt: () => ++attempts < 3 ? "450 4.2.0 Greylisted" : "250 OK",
  });
  await using _server = s.server;
  await using pool = new SmtpPool({ ...plain(s.server.port), retryDelayMs: 5 });
  const result = await pool.send(message());
  assert.equal(result.accepted.length, 1);
  await pool.close();
  assert.equal(attempts, 3);
});

test("5xx replies are never retried", async () => {
  const s = esmtpServer({ rcpt: () => "550 5.1.1 No such user" });
  await using _server = s.server;
  await using pool = new SmtpPool({ ...plain(s.server.port), retryDelayMs: 5 });
  await assert.rejects(pool.send(message()), SmtpRecipientsError);
  // The connection stays in use after a permanent refusal.
  await assert.rejects(pool.send(message()), SmtpRecipientsError);
  await pool.close();
  assert.equal(s.server.connections.length, 1);
  assert.equal(s.logs[0]!.commands.filter((c) => c.startsWith("RCPT")).length, 2);
});

test("a permanent failure to connect rejects every waiting send at once", async () => {
  await using server = startScriptedServer(async (conn) => {
    await conn.send("554 5.7.1 Go away\r\n");
  });
  await using pool = new SmtpPool({ ...plain(server.port), maxConnections: 2 });
  const results = await Promise.allSettled(Array.from({ length: 5 }, () => pool.send(message())));
  assert.ok(
    results.every((r) =>
      r.status === "rejected" && r.reason instanceof SmtpReplyError && r.reason.code === 554
    ),
  );
  await pool.close();
  assert.ok(server.connections.length <= 2, `${server.connections.length} connections`);
});

test("rateLimit starts at most `messages` sends per interval", async () => {
  const times: number[] = [];
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, ["PIPELINING"]);
    while (true) {
      const line = await conn.readLine();
      if (line === null) return;
      if (line.startsWith("MAIL")) times.push(performance.now());
      if (line === "QUIT") return void await conn.send("221 Bye\r\n");
      if (line === "DATA") {
        await conn.send("354 Go\r\n");
        await conn.readData();
      }
      await conn.send("250 OK\r\n");
    }
  });
  await using pool = new SmtpPool({
    ...plain(server.port),
    maxConnections: 2,
    rateLimit: { messages: 2, intervalMs: 150 },
  });
  await Promise.all(Array.from({ length: 6 }, (_, i) => pool.send(message(i))));
  await pool.close();
  assert.equal(times.length, 6);
  times.sort((a, b) => a - b);
  // Any two sends apart: the third one started at least an interval after the first (the
  // tolerance covers delivery jitter between the pool's dispatch and the server's read).
  for (let i = 0; i + 2 < times.length; i++) {
    assert.ok(times[i + 2]! - times[i]! >= 120, `window ${i}: ${times[i + 2]! - times[i]!} ms`);
  }
});

test("send() rejects with PoolQueueFullError when maxQueue sends already wait", async () => {
  const s = esmtpServer();
  await using _server = s.server;
  await using pool = new SmtpPool({ ...plain(s.server.port), maxConnections: 1, maxQueue: 2 });
  const hold = gate();
  const borrowed = gate();
  const borrow = pool.withClient(async () => {
    borrowed.open();
    await hold.promise;
  });
  await borrowed.promise;
  const waiting = [pool.send(message(1)), pool.send(message(2))];
  await assert.rejects(pool.send(message(3)), (error: unknown) => {
    // An SmtpError like every other failure of a send, saying what to do.
    assert.ok(error instanceof PoolQueueFullError && error instanceof SmtpError);
    assert.match(error.message, /raise maxQueue/);
    return true;
  });
  assert.equal(pool.stats.queued, 2);
  hold.open();
  await borrow;
  await Promise.all(waiting);
  await pool.close();
  assert.equal(s.logs[0]!.count, 2);
});

test("a send aborted while queued leaves the queue with the signal's reason", async () => {
  const s = esmtpServer();
  await using _server = s.server;
  await using pool = new SmtpPool({ ...plain(s.server.port), maxConnections: 1 });
  const hold = gate();
  const borrowed = gate();
  const borrow = pool.withClient(async () => {
    borrowed.open();
    await hold.promise;
  });
  await borrowed.promise;
  const controller = new AbortController();
  const aborted = pool.send(message(1), { signal: controller.signal });
  const kept = pool.send(message(2));
  assert.equal(pool.stats.queued, 2);
  const reason = new Error("changed my mind");
  controller.abort(reason);
  await assert.rejects(aborted, (error) => error === reason);
  assert.equal(pool.stats.queued, 1);
  await assert.rejects(pool.send(message(3), { signal: controller.signal }), (e) => e === reason);
  hold.open();
  await borrow;
  await kept;
  await pool.close();
  assert.equal(s.logs[0]!.count, 1);
});

test("withClient() lends a connection exclusively and takes it back", async () => {
  const s = esmtpServer();
  await using _server = s.server;
  await using pool = new SmtpPool({ ...plain(s.server.port), maxConnections: 1 });
  const order: string[] = [];
  const queued = pool.send(message(2)).then(() => order.push("pool send"));
  const borrowed = pool.withClient(async (client) => {
    assert.ok(client instanceof SmtpClient);
    await client.send(message(1));
    order.push("borrowed send");
    return client.capabilities.has("PIPELINING");
  });
  // The send was queued first, but both share one connection: the borrow waits for it.
  assert.equal(await borrowed, true);
  await queued;
  assert.deepEqual(order, ["pool send", "borrowed send"]);
  // A borrower that quits the client gets the connection discarded, not recycled.
  await pool.withClient((client) => client.quit());
  await pool.send(message(3));
  await pool.close();
  assert.equal(s.server.connections.length, 2);
  assert.deepEqual(s.logs.map((log) => log.count), [2, 1]);
});

test("close() drains queued and running sends, then quits every connection", async () => {
  const s = esmtpServer();
  await using _server = s.server;
  const pool = new SmtpPool({ ...plain(s.server.port), maxConnections: 2, maxQueue: 100 });
  const sends = Array.from({ length: 30 }, (_, i) => pool.send(message(i)));
  const closed = pool.close();
  await assert.rejects(pool.send(message()), SmtpConnectionError);
  await assert.rejects(pool.withClient(() => Promise.resolve()), SmtpConnectionError);
  await closed;
  const results = await Promise.allSettled(sends);
  assert.ok(results.every((r) => r.status === "fulfilled"));
  assert.equal(pool.stats.connections, 0);
  await until(() => s.open === 0);
  assert.equal(s.logs.reduce((n, log) => n + log.count, 0), 30);
  assert.ok(s.logs.every((log) => log.commands.at(-1) === "QUIT"));
  await pool.close(); // idempotent
});

test("an idle connection is quit after idleTimeoutMs; the next send opens a new one", async () => {
  const s = esmtpServer();
  await using _server = s.server;
  await using pool = new SmtpPool({ ...plain(s.server.port), idleTimeoutMs: 50 });
  await pool.send(message(1));
  await until(() => s.logs.length === 1 && s.open === 0);
  assert.equal(s.logs[0]!.commands.at(-1), "QUIT");
  assert.equal(pool.stats.connections, 0);
  await pool.send(message(2));
  await pool.close();
  assert.equal(s.server.connections.length, 2);
});
