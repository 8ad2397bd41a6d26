/** Hostile and broken servers: garbage. See tests/hostile/_helpers.ts for the shared tools. */

import assert from "node:assert/strict";
import { sendMail, SmtpClient, SmtpConnectionError, SmtpProtocolError } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import {
  expectLine,
  expectPipelinedEnvelope,
  greet,
  startScriptedServer,
} from "../_helpers/scripted_server.ts";
import { check, envelope, failsOnOneConnection, plain, raw, rejection } from "./_helpers.ts";

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
    const { error, lines } = await failsOnOneConnection(
      (conn) => conn.send(greeting),
      (port) => SmtpClient.connect(plain(port)),
    );
    check(error, SmtpProtocolError, "greeting");
    assert.deepEqual(lines, []);
  });
}

test("an EHLO reply that mixes codes: SmtpProtocolError", async () => {
  const { error } = await failsOnOneConnection(async (conn) => {
    await conn.send("220 hostile.test ESMTP\r\n");
    await expectLine(conn, "EHLO");
    await conn.send("250-hostile.test\r\n250-PIPELINING\r\n354 SIZE 1000\r\n");
  }, (port) => SmtpClient.connect(plain(port)));
  assert.match(check(error, SmtpProtocolError, "ehlo").message, /mixes codes 250 and 354/);
});

test("garbage in reply to MAIL: SmtpProtocolError, not retried, socket closed", async () => {
  let client: SmtpClient | undefined;
  const { error } = await failsOnOneConnection(async (conn) => {
    await greet(conn, ["PIPELINING"]);
    await expectPipelinedEnvelope(conn);
    await conn.send("OK OK OK\r\n");
  }, async (port) => {
    client = await SmtpClient.connect(plain(port));
    await client.send({ raw, envelope });
  });
  check(error, SmtpProtocolError, "mail");
  assert.equal(client!.connected, false);
  await client!.quit();
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
