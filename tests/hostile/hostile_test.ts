/**
 * Hostile and broken servers, played exactly by scripted loopback servers. For each one the
 * client must fail with the right error class (or cope, where coping is right), close its
 * socket, leave no timer behind (the test helper's sanitizers check that) and not loop:
 * every test counts the connections it got.
 *
 * Cases already covered in tests/e2e/security_test.ts (STARTTLS missing without credentials,
 * STARTTLS response injection, no greeting over clear text, a drop during or right after
 * DATA) and tests/e2e/engine_test.ts (421 after the data) are not repeated here.
 */

import assert from "node:assert/strict";
import {
  type ClientOptions,
  sendMail,
  SmtpAuthError,
  SmtpClient,
  SmtpConnectionError,
  type SmtpError,
  SmtpProtocolError,
  SmtpReplyError,
  SmtpTimeoutError,
  SmtpTlsError,
  SmtpUnsupportedError,
} from "../../mod.ts";
import { defaultTransport } from "../../src/transport/default.ts";
import type { Connection, Transport } from "../../src/transport/types.ts";
import { test } from "../_helpers/test.ts";
import { fixture, testCa } from "../_helpers/smtp_server.ts";
import {
  expectLine,
  greet,
  type ScriptedConnection,
  startScriptedServer,
} from "../_helpers/scripted_server.ts";

const encoder = new TextEncoder();
const tlsCert = { cert: fixture("server.pem"), key: fixture("server.key") };
const password = "hunter2-never-on-the-wire";
const envelope = { from: "a@example.com", to: ["b@example.com"] };
const raw = "From: a@example.com\r\nTo: b@example.com\r\nSubject: hostile\r\n\r\nHello\r\n";

function plain(port: number, extra: Partial<ClientOptions> = {}): ClientOptions {
  return {
    hostname: "127.0.0.1",
    port,
    tls: "none",
    clientName: "client.postie.test",
    ...extra,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Server side: waits until the client closes the connection, reading (and never answering)
 * whatever it still sends. After `ms` the server gives up and closes by itself; `closed` then
 * says false. No read is left pending either way.
 */
async function clientCloses(
  conn: ScriptedConnection,
  ms = 3000,
): Promise<{ closed: boolean; lines: string[] }> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, ms);
  const lines: string[] = [];
  try {
    while (true) {
      const line = await conn.readLine();
      if (line === null) break;
      lines.push(line);
    }
  } finally {
    clearTimeout(timer);
  }
  return { closed: !timedOut, lines };
}

/**
 * Server side: writes `total` bytes made by `chunk(i)` until the client stops taking them.
 * Returns how many bytes the kernel accepted before the write failed.
 */
async function flood(
  conn: ScriptedConnection,
  chunk: (i: number) => Uint8Array,
  total: number,
): Promise<{ written: number; failed: boolean }> {
  let written = 0;
  for (let i = 0; written < total; i++) {
    const bytes = chunk(i);
    try {
      await conn.send(bytes);
    } catch {
      return { written, failed: true };
    }
    written += bytes.length;
  }
  return { written, failed: false };
}

/** A transport that counts what the client reads, to show that it stops reading. */
function countingTransport(): Transport & { bytesRead: number; connections: Connection[] } {
  const counter = {
    bytesRead: 0,
    connections: [] as Connection[],
    connect: async (options: Parameters<Transport["connect"]>[0]) =>
      wrap(
        await defaultTransport.connect(options),
      ),
    connectTls: async (options: Parameters<Transport["connectTls"]>[0]) =>
      wrap(await defaultTransport.connectTls(options)),
    startTls: () => Promise.reject(new TypeError("STARTTLS is not used with this transport")),
  };
  function wrap(inner: Connection): Connection {
    const connection: Connection = {
      read: async (signal) => {
        const chunk = await inner.read(signal);
        if (chunk) counter.bytesRead += chunk.length;
        return chunk;
      },
      write: (data, signal) => inner.write(data, signal),
      close: () => inner.close(),
      get closed() {
        return inner.closed;
      },
      ...(inner.tls ? { tls: inner.tls } : {}),
      ...(inner.localAddress ? { localAddress: inner.localAddress } : {}),
    };
    counter.connections.push(connection);
    return connection;
  }
  return counter;
}

/** Asserts an error's class and phase, and returns it typed. */
function check<T extends SmtpError>(
  error: unknown,
  type: new (...args: never[]) => T,
  phase: SmtpError["phase"],
): T {
  assert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
  assert.equal(error.phase, phase, String(error));
  return error;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}

// --- TLS --------------------------------------------------------------------------------------

test("STARTTLS refused with 454: SmtpReplyError, no credentials and no MAIL sent", async () => {
  let seen = "";
  await using server = startScriptedServer(async (conn) => {
    // A server that also baits with AUTH before TLS.
    await greet(conn, ["STARTTLS", "AUTH PLAIN LOGIN", "PIPELINING"]);
    await expectLine(conn, "STARTTLS");
    await conn.send("454 4.7.0 TLS not available due to local problem\r\n");
    const after = await clientCloses(conn);
    assert.ok(after.closed, "the client kept the connection open");
    seen = conn.received;
  });
  const error = await rejection(SmtpClient.connect(plain(server.port, {
    tls: "starttls",
    auth: { username: "user", password },
  })));
  const reply = check(error, SmtpReplyError, "starttls");
  assert.equal(reply.code, 454);
  assert.equal(reply.temporary, true);
  await server.close();
  assert.equal(server.connections.length, 1);
  assert.doesNotMatch(seen, /AUTH|MAIL|RCPT/);
  assert.equal(seen.includes(password), false);
  assert.equal(seen.includes(btoa(`\0user\0${password}`)), false);
});

test("STARTTLS stripped while credentials are set: no AUTH in clear text", async () => {
  let seen = "";
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, ["AUTH PLAIN LOGIN", "PIPELINING"]);
    await clientCloses(conn);
    seen = conn.received;
  });
  const error = await rejection(SmtpClient.connect(plain(server.port, {
    tls: "starttls",
    auth: { username: "user", password },
  })));
  assert.equal(check(error, SmtpUnsupportedError, "starttls").extension, "STARTTLS");
  await server.close();
  assert.equal(server.connections.length, 1);
  assert.doesNotMatch(seen, /AUTH|MAIL/);
  assert.equal(seen.includes(password), false);
});

test("STARTTLS accepted, then clear text instead of a handshake: SmtpTlsError", async () => {
  let after: { closed: boolean; lines: string[] } | undefined;
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, ["STARTTLS"]);
    await expectLine(conn, "STARTTLS");
    await conn.send("220 2.0.0 Ready to start TLS\r\n");
    // The client's ClientHello arrives; the server answers with SMTP text.
    await conn.readBytes(5);
    await conn.send("250-this is not TLS\r\n250 at all\r\n");
    after = await clientCloses(conn);
  });
  const started = performance.now();
  const error = await rejection(SmtpClient.connect(plain(server.port, {
    tls: "starttls",
    tlsOptions: { caCerts: [testCa], serverName: "localhost" },
    auth: { username: "user", password },
  })));
  assert.ok(error instanceof SmtpTlsError, String(error));
  assert.ok(performance.now() - started < 3000);
  await server.close();
  assert.ok(after?.closed, "the client kept the connection open");
  assert.equal(server.connections.length, 1);
  assert.doesNotMatch(server.connections[0]!.received, /AUTH|MAIL/);
});

/**
 * A server that accepts TCP and then says nothing, so that the client's TLS handshake never
 * completes. `closedWithin` is how long the server waits to see the client hang up.
 */
function silentHandshakeCase(mode: "implicit" | "starttls", closedWithin: number) {
  return async () => {
    let after: { closed: boolean; lines: string[] } | undefined;
    await using server = startScriptedServer(async (conn) => {
      if (mode === "starttls") {
        await greet(conn, ["STARTTLS"]);
        await expectLine(conn, "STARTTLS");
        await conn.send("220 2.0.0 Ready to start TLS\r\n");
      }
      after = await clientCloses(conn, closedWithin);
    });
    const started = performance.now();
    const error = await rejection(SmtpClient.connect({
      hostname: "localhost",
      port: server.port,
      tls: mode,
      tlsOptions: { caCerts: [testCa] },
      auth: { username: "user", password },
      timeouts: { connectMs: 300, greetingMs: 10_000, commandMs: 10_000 },
    }));
    const elapsed = performance.now() - started;
    assert.ok(error instanceof SmtpTimeoutError, String(error));
    assert.equal(error.timeoutMs, 300);
    assert.ok(elapsed >= 250 && elapsed < 3000, `elapsed ${elapsed} ms`);
    await server.close();
    assert.equal(server.connections.length, 1);
    assert.equal(server.connections[0]!.received.includes(password), false);
    return after!;
  };
}

for (const mode of ["implicit", "starttls"] as const) {
  test(
    `${mode}: a TLS handshake the server never answers times out in connectMs`,
    async () => void await silentHandshakeCase(mode, 1000)(),
  );

  // Ignored: Deno 2.9.6 does not close the TCP socket when a TlsConn is closed while its
  // handshake is pending (Deno.startTls or Deno.connectTls, with handshake() or read()); the
  // socket stays open until the server closes it. The client times out correctly, but the
  // server never sees it hang up. node:tls in Deno closes at once. See the hostile-server
  // report ("TLS handshake stall leaves the socket open").
  test(
    `${mode}: after a TLS handshake timeout the server sees the client hang up`,
    { ignore: true },
    async () => {
      const after = await silentHandshakeCase(mode, 3000)();
      assert.ok(after.closed, "the socket stayed open after the handshake timed out");
    },
  );
}

test("implicit TLS: handshake done, greeting never sent: SmtpTimeoutError in greetingMs", async () => {
  let after: { closed: boolean; lines: string[] } | undefined;
  await using server = startScriptedServer(async (conn) => {
    after = await clientCloses(conn, 5000);
  }, tlsCert);
  const started = performance.now();
  const error = await rejection(SmtpClient.connect({
    hostname: "localhost",
    port: server.port,
    tls: "implicit",
    tlsOptions: { caCerts: [testCa] },
    timeouts: { greetingMs: 300 },
  }));
  const timeout = check(error, SmtpTimeoutError, "greeting");
  assert.equal(timeout.timeoutMs, 300);
  // Already on implicit TLS: no hint to switch to it.
  assert.doesNotMatch(timeout.message, /use tls: "implicit"/);
  assert.ok(performance.now() - started < 3000);
  await server.close();
  assert.ok(after?.closed, "the client kept the connection open");
  assert.equal(server.connections.length, 1);
});

// --- stalls ----------------------------------------------------------------------------------

for (const extensions of [["PIPELINING"], ["PIPELINING", "CHUNKING"]]) {
  const mode = extensions.includes("CHUNKING") ? "BDAT LAST" : "DATA's final dot";
  test(`a stall after ${mode}: SmtpTimeoutError after dataEndMs, socket closed`, async () => {
    let after: { closed: boolean; lines: string[] } | undefined;
    await using server = startScriptedServer(async (conn) => {
      await greet(conn, extensions);
      await expectLine(conn, "MAIL FROM:");
      await expectLine(conn, "RCPT TO:");
      if (extensions.includes("CHUNKING")) {
        const bdat = await expectLine(conn, /^BDAT \d+ LAST$/);
        await conn.readBytes(Number(bdat.split(" ")[1]));
        await conn.send("250 OK\r\n250 OK\r\n");
      } else {
        await expectLine(conn, "DATA");
        await conn.send("250 OK\r\n250 OK\r\n354 Go ahead\r\n");
        await conn.readData();
      }
      // ...and never a word about the message.
      after = await clientCloses(conn, 5000);
    });
    const client = await SmtpClient.connect(plain(server.port, {
      timeouts: { commandMs: 10_000, dataEndMs: 300 },
    }));
    const started = performance.now();
    const error = await rejection(client.send({ raw, envelope }));
    const elapsed = performance.now() - started;
    const timeout = check(error, SmtpTimeoutError, "data");
    assert.equal(timeout.timeoutMs, 300);
    assert.ok(elapsed >= 250 && elapsed < 3000, `elapsed ${elapsed} ms`);
    assert.equal(client.connected, false);
    await client.quit();
    await server.close();
    assert.ok(after?.closed, "the client kept the connection open");
    assert.deepEqual(after?.lines, [], "the client sent more after the timeout");
    assert.equal(server.connections.length, 1, "the message was sent again");
  });
}

test("a reply line that never ends: the command deadline holds while bytes trickle in", async () => {
  let trickled = 0;
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, []);
    await expectLine(conn, "NOOP");
    await conn.send("250 still thinking");
    // One byte every 20 ms, never a line end, until the client hangs up.
    while (true) {
      await sleep(20);
      try {
        await conn.send(".");
      } catch {
        return;
      }
      trickled++;
      if (trickled > 500) throw new Error("the client kept reading a line that never ends");
    }
  });
  const client = await SmtpClient.connect(plain(server.port, { timeouts: { commandMs: 300 } }));
  const started = performance.now();
  const error = await rejection(client.noop());
  const elapsed = performance.now() - started;
  const timeout = check(error, SmtpTimeoutError, "command");
  assert.equal(timeout.timeoutMs, 300);
  assert.ok(elapsed < 2000, `the trickle kept the client waiting ${elapsed} ms`);
  assert.equal(client.connected, false);
  await server.close();
  assert.ok(trickled > 3, `trickled ${trickled}`);
  assert.equal(server.connections.length, 1);
});

// --- oversized and endless replies -------------------------------------------------------------

test("a greeting line of megabytes: SmtpProtocolError, bounded reading, socket closed", async () => {
  const transport = countingTransport();
  let sent: { written: number; failed: boolean } | undefined;
  const total = 64 * 1024 * 1024;
  await using server = startScriptedServer(async (conn) => {
    const chunk = new Uint8Array(1024 * 1024).fill(0x78);
    chunk.set(encoder.encode("220 "));
    sent = await flood(conn, (i) => i === 0 ? chunk : chunk.fill(0x78, 0, 4), total);
  });
  const error = await rejection(SmtpClient.connect(plain(server.port, { transport })));
  const protocol = check(error, SmtpProtocolError, "greeting");
  assert.match(protocol.message, /longer than 16384 bytes/);
  assert.equal(transport.connections[0]!.closed, true);
  // The client read little more than the line limit plus one read buffer...
  assert.ok(transport.bytesRead <= 16384 + 2 * 65536, `client read ${transport.bytesRead} bytes`);
  await server.close();
  // ...and hung up, so the server could not push the rest.
  assert.ok(sent?.failed, `the server wrote all ${sent?.written} bytes`);
  assert.ok(sent!.written < total);
  assert.equal(server.connections.length, 1);
});

test("an EHLO reply line over a custom maxLineLength fails at that limit", async () => {
  const transport = countingTransport();
  let sent: { written: number; failed: boolean } | undefined;
  await using server = startScriptedServer(async (conn) => {
    await conn.send("220 hostile.test ESMTP\r\n");
    await expectLine(conn, "EHLO");
    const chunk = new Uint8Array(64 * 1024).fill(0x41);
    chunk.set(encoder.encode("250-"));
    sent = await flood(conn, (i) => i === 0 ? chunk : chunk.fill(0x41, 0, 4), 32 * 1024 * 1024);
  });
  const error = await rejection(SmtpClient.connect(plain(server.port, {
    transport,
    limits: { maxLineLength: 1000 },
  })));
  assert.match(check(error, SmtpProtocolError, "ehlo").message, /longer than 1000 bytes/);
  assert.ok(transport.bytesRead <= 1000 + 2 * 65536, `client read ${transport.bytesRead} bytes`);
  await server.close();
  assert.ok(sent?.failed, "the client kept reading");
  assert.equal(server.connections.length, 1);
});

test("an endless multi-line reply: SmtpProtocolError after maxLines, client stops reading", async () => {
  const transport = countingTransport();
  let sent: { written: number; failed: boolean } | undefined;
  await using server = startScriptedServer(async (conn) => {
    await conn.send("220 hostile.test ESMTP\r\n");
    await expectLine(conn, "EHLO");
    const lines = encoder.encode("250-AND-ANOTHER-EXTENSION\r\n".repeat(2048));
    sent = await flood(conn, () => lines, 64 * 1024 * 1024);
  });
  const error = await rejection(SmtpClient.connect(plain(server.port, { transport })));
  assert.match(check(error, SmtpProtocolError, "ehlo").message, /more than 1000 lines/);
  assert.ok(transport.bytesRead < 1001 * 27 + 2 * 65536, `client read ${transport.bytesRead}`);
  assert.equal(transport.connections[0]!.closed, true);
  await server.close();
  assert.ok(sent?.failed, "the client kept reading");
  assert.equal(server.connections.length, 1);
});

test("an endless multi-line reply over implicit TLS is cut off the same way", async () => {
  let sent: { written: number; failed: boolean } | undefined;
  await using server = startScriptedServer(async (conn) => {
    await conn.send("220-hostile.test ESMTP\r\n");
    const lines = encoder.encode("220-and on and on\r\n".repeat(2048));
    sent = await flood(conn, () => lines, 16 * 1024 * 1024);
  }, tlsCert);
  const error = await rejection(SmtpClient.connect({
    hostname: "localhost",
    port: server.port,
    tls: "implicit",
    tlsOptions: { caCerts: [testCa] },
  }));
  assert.match(check(error, SmtpProtocolError, "greeting").message, /more than 1000 lines/);
  await server.close();
  assert.ok(sent?.failed, "the client kept reading");
  assert.equal(server.connections.length, 1);
});

// --- 421 and other refusals ----------------------------------------------------------------------

test("421 at the greeting: SmtpReplyError (temporary), no EHLO, one connection", async () => {
  let after: { closed: boolean; lines: string[] } | undefined;
  await using server = startScriptedServer(async (conn) => {
    await conn.send("421 4.3.2 hostile.test Service not available, try later\r\n");
    after = await clientCloses(conn);
  });
  const error = await rejection(sendMail(plain(server.port), { raw, envelope }));
  const reply = check(error, SmtpReplyError, "greeting");
  assert.equal(reply.code, 421);
  assert.equal(reply.temporary, true);
  await server.close();
  assert.ok(after?.closed, "the client kept the connection open");
  assert.deepEqual(after?.lines, []);
  assert.equal(server.connections.length, 1);
});

test("554 greeting: SmtpReplyError (permanent), no EHLO, one connection", async () => {
  let after: { closed: boolean; lines: string[] } | undefined;
  await using server = startScriptedServer(async (conn) => {
    await conn.send("554 5.7.1 hostile.test No SMTP service here\r\n");
    after = await clientCloses(conn);
  });
  const error = await rejection(SmtpClient.connect(plain(server.port)));
  const reply = check(error, SmtpReplyError, "greeting");
  assert.equal(reply.code, 554);
  assert.equal(reply.temporary, false);
  assert.deepEqual(reply.reply.enhancedStatus, { class: 5, subject: 7, detail: 1 });
  await server.close();
  assert.ok(after?.closed, "the client kept the connection open");
  assert.equal(after?.lines.some((line) => /^(EHLO|HELO)/.test(line)), false);
  assert.equal(server.connections.length, 1);
});

test("421 in reply to EHLO: SmtpReplyError, socket closed, one connection", async () => {
  let after: { closed: boolean; lines: string[] } | undefined;
  await using server = startScriptedServer(async (conn) => {
    await conn.send("220 hostile.test ESMTP\r\n");
    await expectLine(conn, "EHLO");
    await conn.send("421 4.7.0 hostile.test Too many connections\r\n");
    after = await clientCloses(conn);
  });
  const error = await rejection(sendMail(plain(server.port), { raw, envelope }));
  const reply = check(error, SmtpReplyError, "ehlo");
  assert.equal(reply.code, 421);
  await server.close();
  assert.ok(after?.closed, "the client kept the connection open");
  assert.equal(after?.lines.some((line) => /^(HELO|MAIL)/.test(line)), false);
  assert.equal(server.connections.length, 1);
});

test("421 after MAIL: one retry on a fresh connection, then SmtpReplyError; no loop", async () => {
  const afters: { closed: boolean; lines: string[] }[] = [];
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, []);
    await expectLine(conn, "MAIL FROM:<a@example.com>");
    await conn.send("421 4.3.2 Shutting down\r\n");
    afters.push(await clientCloses(conn));
  });
  const client = await SmtpClient.connect(plain(server.port));
  const error = await rejection(client.send({ raw, envelope }));
  const reply = check(error, SmtpReplyError, "mail");
  assert.equal(reply.code, 421);
  assert.equal(reply.temporary, true);
  assert.equal(client.connected, false);
  await client.quit();
  await server.close();
  assert.equal(server.connections.length, 2, "expected exactly one retry");
  for (const after of afters) {
    assert.ok(after.closed, "the client kept a connection open");
    assert.equal(after.lines.some((line) => /^(RCPT|DATA|BDAT)/.test(line)), false);
  }
});

test("421 after RCPT, pipelined: no wait for the DATA reply, one retry, no loop", async () => {
  const afters: { closed: boolean; lines: string[] }[] = [];
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, ["PIPELINING"]);
    await expectLine(conn, "MAIL");
    await expectLine(conn, "RCPT");
    await expectLine(conn, "DATA");
    // Answers MAIL and RCPT, then never answers DATA: the client must not wait for it.
    await conn.send("250 OK\r\n421 4.4.5 Too busy\r\n");
    afters.push(await clientCloses(conn));
  });
  const client = await SmtpClient.connect(plain(server.port, { timeouts: { commandMs: 10_000 } }));
  const started = performance.now();
  const error = await rejection(client.send({ raw, envelope }));
  assert.ok(performance.now() - started < 3000, "the client waited for the DATA reply");
  const reply = check(error, SmtpReplyError, "rcpt");
  assert.equal(reply.code, 421);
  assert.equal(client.connected, false);
  await client.quit();
  await server.close();
  assert.equal(server.connections.length, 2, "expected exactly one retry");
  for (const after of afters) assert.ok(after.closed, "the client kept a connection open");
});

test("421 in reply to DATA: no data sent, one retry on a fresh connection, then SmtpReplyError", async () => {
  const afters: { closed: boolean; lines: string[] }[] = [];
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, []);
    await expectLine(conn, "MAIL");
    await conn.send("250 OK\r\n");
    await expectLine(conn, "RCPT");
    await conn.send("250 OK\r\n");
    await expectLine(conn, "DATA");
    await conn.send("421 4.3.0 Shutting down before your data\r\n");
    afters.push(await clientCloses(conn));
  });
  const client = await SmtpClient.connect(plain(server.port));
  const error = await rejection(client.send({ raw, envelope }));
  const reply = check(error, SmtpReplyError, "data");
  assert.equal(reply.code, 421);
  assert.equal(client.connected, false);
  await client.quit();
  await server.close();
  // No message data went out, so it was tried once more on a fresh connection; never a loop.
  assert.equal(server.connections.length, 2);
  for (const after of afters) {
    assert.ok(after.closed, "the client kept a connection open");
    assert.equal(after.lines.some((line) => /Subject: hostile/.test(line)), false);
  }
});

test("421 in reply to STARTTLS: SmtpReplyError, nothing more sent, socket closed", async () => {
  let after: { closed: boolean; lines: string[] } | undefined;
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, ["STARTTLS", "AUTH PLAIN LOGIN", "PIPELINING", "CHUNKING"]);
    await expectLine(conn, "STARTTLS");
    await conn.send("421 4.3.2 hostile.test Shutting down\r\n");
    after = await clientCloses(conn);
  });
  const error = await rejection(SmtpClient.connect(plain(server.port, {
    tls: "starttls",
    auth: { username: "user", password },
  })));
  const reply = check(error, SmtpReplyError, "starttls");
  assert.equal(reply.code, 421);
  assert.equal(reply.temporary, true);
  assert.equal(String(error).includes(password), false);
  await server.close();
  assert.ok(after?.closed, "the client kept the connection open");
  // The server is closing the channel: not even QUIT, let alone AUTH or MAIL.
  assert.deepEqual(after?.lines, []);
  assert.equal(server.connections[0]!.received.includes(password), false);
  assert.equal(server.connections.length, 1);
});

/** How the server gets to answer the login with 421, per mechanism. */
const authRefusals: [string, Extract<ClientOptions["auth"], object>, string[]][] = [
  // The AUTH line itself, with its initial response.
  ["AUTH PLAIN", { username: "user", password, mechanisms: ["PLAIN"] }, []],
  // The last step of a challenge exchange: after the password.
  ["AUTH LOGIN", { username: "user", password, mechanisms: ["LOGIN"] }, [
    "334 VXNlcm5hbWU6",
    "334 UGFzc3dvcmQ6",
  ]],
];
for (const [command, auth, challenges] of authRefusals) {
  test(`421 in reply to ${command}: SmtpAuthError 421, no MAIL, socket closed`, async () => {
    let after: { closed: boolean; lines: string[] } | undefined;
    await using server = startScriptedServer(async (conn) => {
      await greet(conn, ["AUTH PLAIN LOGIN", "PIPELINING"]);
      await expectLine(conn, command);
      for (const challenge of challenges) {
        await conn.send(challenge + "\r\n");
        await expectLine(conn, /^[A-Za-z0-9+/=]+$/);
      }
      await conn.send("421 4.3.2 hostile.test Shutting down\r\n");
      after = await clientCloses(conn);
    });
    // sendMail: a client that went on after the refusal would be seen sending MAIL.
    const error = await rejection(sendMail(
      plain(server.port, {
        auth,
        allowPlaintextAuth: ["127.0.0.1"],
      }),
      { raw, envelope },
    ));
    const refusal = check(error, SmtpAuthError, "auth");
    assert.ok(refusal instanceof SmtpReplyError);
    assert.equal(refusal.code, 421);
    assert.equal(refusal.temporary, true);
    assert.equal(refusal.command, command);
    assert.equal(String(error).includes(password), false);
    await server.close();
    assert.ok(after?.closed, "the client kept the connection open");
    assert.deepEqual(after?.lines, [], "the client sent more after the 421");
    assert.equal(server.connections.length, 1);
  });
}

test("421 in reply to AUTH XOAUTH2: not taken for a refused token, no refresh asked", async () => {
  const asked: boolean[] = [];
  let after: { closed: boolean; lines: string[] } | undefined;
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, ["AUTH XOAUTH2", "PIPELINING"]);
    await expectLine(conn, "AUTH XOAUTH2 ");
    await conn.send("421 4.3.2 hostile.test Shutting down\r\n");
    after = await clientCloses(conn);
  });
  const error = await rejection(sendMail(
    plain(server.port, {
      auth: {
        username: "user",
        token: ({ refresh }) => {
          asked.push(refresh);
          return Promise.resolve("token-never-on-the-wire-twice");
        },
      },
      allowPlaintextAuth: ["127.0.0.1"],
    }),
    { raw, envelope },
  ));
  assert.equal(check(error, SmtpAuthError, "auth").code, 421);
  await server.close();
  assert.deepEqual(asked, [false]);
  assert.ok(after?.closed, "the client kept the connection open");
  assert.deepEqual(after?.lines, []);
  assert.equal(server.connections.length, 1);
});

/** A message of about 2 MB as raw bytes: one large BDAT chunk before `BDAT 0 LAST`. */
function bigRaw(): Uint8Array {
  const line = "x".repeat(98) + "\r\n";
  return encoder.encode(
    "From: a@example.com\r\nTo: b@example.com\r\nSubject: big\r\n\r\n" +
      line.repeat(20 * 1024),
  );
}

/** A composed message with a 2 MB attachment: streamed, so in several BDAT chunks. */
function bigComposed() {
  const content = new Uint8Array(2 * 1024 * 1024);
  for (let i = 0; i < content.length; i++) content[i] = (i * 7919) & 0xff;
  return {
    from: "a@example.com",
    to: "b@example.com",
    subject: "big",
    text: "see attachment",
    attachments: [{ filename: "big.bin", content }],
  };
}

const bdatCases = [
  { what: "a 2 MB raw message", failAt: 0, message: () => ({ raw: bigRaw(), envelope }) },
  { what: "a composed message with a 2 MB attachment", failAt: 1, message: bigComposed },
];
for (const { what, failAt, message } of bdatCases) {
  test(`421 to a non-final BDAT chunk of ${what}: not sent, so sent again once, then SmtpReplyError`, async () => {
    const chunks: number[] = [];
    let after: { closed: boolean; lines: string[] } | undefined;
    await using server = startScriptedServer(async (conn) => {
      await greet(conn, ["PIPELINING", "CHUNKING"]);
      await expectLine(conn, "MAIL FROM:<a@example.com>");
      await expectLine(conn, "RCPT TO:<b@example.com>");
      let envelopeReplies = "250 2.1.0 OK\r\n250 2.1.5 OK\r\n";
      for (let chunk = 0;; chunk++) {
        const bdat = await expectLine(conn, /^BDAT \d+$/); // never LAST: the 421 comes first
        const size = Number(bdat.split(" ")[1]);
        assert.ok(size > 0);
        await conn.readBytes(size);
        chunks.push(size);
        if (chunk === failAt) break;
        await conn.send(envelopeReplies + "250 2.0.0 Chunk OK\r\n");
        envelopeReplies = "";
      }
      await conn.send(envelopeReplies + "421 4.3.2 hostile.test Shutting down mid-message\r\n");
      after = await clientCloses(conn);
    });
    const client = await SmtpClient.connect(plain(server.port));
    assert.equal(client.capabilities.has("CHUNKING"), true);
    const error = await rejection(client.send(message()));
    const reply = check(error, SmtpReplyError, "data");
    assert.equal(reply.code, 421);
    assert.equal(reply.temporary, true);
    assert.match(reply.command, /^BDAT/);
    assert.equal(client.connected, false);
    await client.quit();
    await server.close();
    assert.equal(chunks.length, 2 * (failAt + 1));
    // No BDAT LAST was written: the server cannot hold the message, so it is sent again once.
    assert.equal(server.connections.length, 2, "the message was not sent again exactly once");
    assert.equal(reply.outcomeUnknown, false);
    assert.ok(after?.closed, "the client kept the connection open");
    assert.equal(
      after?.lines.some((line) => /^(RSET|MAIL FROM|QUIT)/.test(line)),
      false,
      "the client went on talking after the 421",
    );
  });
}

// --- garbage ------------------------------------------------------------------------------------

const garbageGreetings: [string, string | Uint8Array][] = [
  ["binary noise", new Uint8Array([0x00, 0xff, 0xfe, 0x16, 0x03, 0x01, 0x0d, 0x0a])],
  ["an HTTP status line", "HTTP/1.1 400 Bad Request\r\n"],
  ["a code out of range", "600 hostile.test\r\n"],
  ["a two-digit code", "22 hostile.test\r\n"],
  ["a code glued to its text", "220hostile.test\r\n"],
  ["a bad separator", "220_hostile.test\r\n"],
];
for (const [what, greeting] of garbageGreetings) {
  test(`a greeting of ${what}: SmtpProtocolError, one connection`, async () => {
    let after: { closed: boolean; lines: string[] } | undefined;
    await using server = startScriptedServer(async (conn) => {
      await conn.send(greeting);
      after = await clientCloses(conn);
    });
    const error = await rejection(SmtpClient.connect(plain(server.port)));
    check(error, SmtpProtocolError, "greeting");
    await server.close();
    assert.ok(after?.closed, "the client kept the connection open");
    assert.deepEqual(after?.lines, []);
    assert.equal(server.connections.length, 1);
  });
}

test("an EHLO reply that mixes codes: SmtpProtocolError", async () => {
  let after: { closed: boolean; lines: string[] } | undefined;
  await using server = startScriptedServer(async (conn) => {
    await conn.send("220 hostile.test ESMTP\r\n");
    await expectLine(conn, "EHLO");
    await conn.send("250-hostile.test\r\n250-PIPELINING\r\n354 SIZE 1000\r\n");
    after = await clientCloses(conn);
  });
  const error = await rejection(SmtpClient.connect(plain(server.port)));
  assert.match(check(error, SmtpProtocolError, "ehlo").message, /mixes codes 250 and 354/);
  await server.close();
  assert.ok(after?.closed, "the client kept the connection open");
  assert.equal(server.connections.length, 1);
});

test("garbage in reply to MAIL: SmtpProtocolError, not retried, socket closed", async () => {
  const afters: { closed: boolean; lines: string[] }[] = [];
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, ["PIPELINING"]);
    await expectLine(conn, "MAIL");
    await expectLine(conn, "RCPT");
    await expectLine(conn, "DATA");
    await conn.send("OK OK OK\r\n");
    afters.push(await clientCloses(conn));
  });
  const client = await SmtpClient.connect(plain(server.port));
  const error = await rejection(client.send({ raw, envelope }));
  check(error, SmtpProtocolError, "mail");
  assert.equal(client.connected, false);
  await client.quit();
  await server.close();
  assert.equal(server.connections.length, 1);
  assert.ok(afters[0]?.closed, "the client kept the connection open");
});

test("a server that closes in the middle of a multi-line reply: SmtpConnectionError", async () => {
  await using server = startScriptedServer(async (conn) => {
    await conn.send("220 hostile.test ESMTP\r\n");
    await expectLine(conn, "EHLO");
    await conn.send("250-hostile.test\r\n250-PIPELINING\r\n");
    conn.close();
  });
  const error = await rejection(SmtpClient.connect(plain(server.port)));
  check(error, SmtpConnectionError, "ehlo");
  await server.close();
  assert.equal(server.connections.length, 1);
});

test("a server that closes right after its greeting: SmtpConnectionError in EHLO", async () => {
  await using server = startScriptedServer(async (conn) => {
    await conn.send("220 hostile.test ESMTP\r\n");
    conn.close();
  });
  const error = await rejection(sendMail(plain(server.port), { raw, envelope }));
  check(error, SmtpConnectionError, "ehlo");
  await server.close();
  assert.equal(server.connections.length, 1);
});

// --- slow but correct ---------------------------------------------------------------------------

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

// --- EHLO refused -------------------------------------------------------------------------------

test("EHLO answered 502: falls back to HELO and sends without extensions", async () => {
  let data: string | null = null;
  let commands: string[] = [];
  await using server = startScriptedServer(async (conn) => {
    await conn.send("220 old.test SMTP\r\n");
    await expectLine(conn, "EHLO client.postie.test");
    await conn.send("502 5.5.1 Command not implemented\r\n");
    await expectLine(conn, "HELO client.postie.test");
    await conn.send("250 old.test\r\n");
    // Without PIPELINING the client must wait for each reply.
    await expectLine(conn, "MAIL FROM:<a@example.com>");
    const early = conn.received;
    await conn.send("250 OK\r\n");
    await expectLine(conn, "RCPT TO:<b@example.com>");
    assert.doesNotMatch(early, /RCPT/, "RCPT was pipelined without PIPELINING");
    await conn.send("250 OK\r\n");
    await expectLine(conn, "DATA");
    await conn.send("354 Go ahead\r\n");
    data = await conn.readData();
    await conn.send("250 OK\r\n");
    await expectLine(conn, "QUIT");
    await conn.send("221 Bye\r\n");
    commands = conn.received.split("\r\n").filter((line) => /^[A-Z]{4}/.test(line));
  });
  const result = await sendMail(plain(server.port), { raw, envelope });
  assert.equal(result.reply.code, 250);
  await server.close();
  assert.match(data ?? "", /Subject: hostile/);
  assert.equal(commands.some((line) => line.startsWith("BDAT")), false);
  assert.equal(server.connections.length, 1);
});

test("EHLO answered 502 when STARTTLS is required: HELO, then SmtpUnsupportedError", async () => {
  let after: { closed: boolean; lines: string[] } | undefined;
  await using server = startScriptedServer(async (conn) => {
    await conn.send("220 old.test SMTP\r\n");
    await expectLine(conn, "EHLO");
    await conn.send("502 5.5.1 Command not implemented\r\n");
    await expectLine(conn, "HELO");
    await conn.send("250 old.test\r\n");
    after = await clientCloses(conn);
  });
  const error = await rejection(SmtpClient.connect(plain(server.port, { tls: "starttls" })));
  assert.equal(check(error, SmtpUnsupportedError, "starttls").extension, "STARTTLS");
  await server.close();
  assert.ok(after?.closed, "the client kept the connection open");
  assert.equal(after?.lines.some((line) => /^(MAIL|AUTH)/.test(line)), false);
});

// --- quit() ---------------------------------------------------------------------------------------

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

// --- AUTH --------------------------------------------------------------------------------------

for (const mechanism of ["PLAIN", "LOGIN", "CRAM-MD5"] as const) {
  test(`endless 334 challenges to AUTH ${mechanism}: SmtpAuthError, bounded, socket closed`, async () => {
    const lines: string[] = [];
    let closed = false;
    await using server = startScriptedServer(async (conn) => {
      await greet(conn, [`AUTH ${mechanism}`]);
      while (true) {
        const line = await conn.readLine();
        if (line === null) {
          closed = true;
          return;
        }
        lines.push(line);
        if (lines.length > 100) throw new Error("the client keeps answering challenges");
        await conn.send("334 VXNlcm5hbWU6\r\n");
      }
    }, tlsCert);
    const error = await rejection(SmtpClient.connect({
      hostname: "localhost",
      port: server.port,
      tls: "implicit",
      tlsOptions: { caCerts: [testCa] },
      auth: { username: "user", password, mechanisms: [mechanism] },
    }));
    check(error, SmtpAuthError, "auth");
    assert.equal(String(error).includes(password), false);
    await server.close();
    assert.ok(closed, "the client kept the connection open");
    assert.ok(lines.length <= 12, `${lines.length} lines: ${lines.join(" | ")}`);
    assert.equal(lines.filter((line) => line.startsWith("AUTH")).length, 1);
    assert.equal(lines.some((line) => line.startsWith("MAIL")), false);
    assert.equal(server.connections.length, 1);
  });
}

// --- replies nobody asked for --------------------------------------------------------------------

// A reply that arrives before its command was sent would be taken as the answer to the next
// command, and the session would run one reply behind. The client refuses bytes that wait
// before any command that is not pipelined (the STARTTLS step does the same).
test(
  "a reply sent before EHLO (unsolicited): SmtpProtocolError, not a session one reply behind",
  async () => {
    await using server = startScriptedServer(async (conn) => {
      await conn.send("220 hostile.test ESMTP\r\n250 surprise\r\n");
      await clientCloses(conn);
    });
    const error = await rejection(
      sendMail(plain(server.port, { timeouts: { commandMs: 1000 } }), { raw, envelope }),
    );
    check(error, SmtpProtocolError, "ehlo");
    await server.close();
    assert.equal(server.connections.length, 1);
  },
);
