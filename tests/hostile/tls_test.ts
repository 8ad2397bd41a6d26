/** Hostile and broken servers: TLS. See tests/hostile/_helpers.ts for the shared tools. */

import assert from "node:assert/strict";
import {
  SmtpClient,
  SmtpReplyError,
  SmtpTimeoutError,
  SmtpTlsError,
  SmtpUnsupportedError,
} from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { testCa } from "../_helpers/smtp_server.ts";
import { expectLine, greet, startScriptedServer } from "../_helpers/scripted_server.ts";
import { check, clientCloses, password, plain, rejection, tlsCert } from "./_helpers.ts";

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
