/** Hostile and broken servers: EHLO refused. See tests/hostile/_helpers.ts for the shared tools. */

import assert from "node:assert/strict";
import { sendMail, SmtpClient, SmtpUnsupportedError } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { expectLine, startScriptedServer } from "../_helpers/scripted_server.ts";
import { check, clientCloses, envelope, plain, raw, rejection } from "./_helpers.ts";

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
