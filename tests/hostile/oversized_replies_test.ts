/** Hostile and broken servers: oversized and endless replies. See tests/hostile/_helpers.ts for the shared tools. */

import assert from "node:assert/strict";
import { SmtpClient, SmtpProtocolError } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { testCa } from "../_helpers/smtp_server.ts";
import { expectLine, startScriptedServer } from "../_helpers/scripted_server.ts";
import { check, countingTransport, encoder, flood, plain, rejection, tlsCert } from "./_helpers.ts";

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
