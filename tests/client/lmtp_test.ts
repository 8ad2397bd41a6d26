/**
 * `protocol: "lmtp"` (RFC 2033) against a scripted LMTP server: LHLO (no HELO fallback), the
 * envelope pipelined, DATA (never BDAT, even when CHUNKING is offered), and one reply per
 * accepted recipient after the data, which decides that recipient's result.
 */
import assert from "node:assert/strict";
import {
  type ClientOptions,
  sendMail,
  type SendResult,
  SmtpRecipientsError,
  SmtpReplyError,
} from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import {
  expectLine,
  type ScriptedConnection,
  startScriptedServer,
} from "../_helpers/scripted_server.ts";

const message = {
  raw: "From: a@example.com\r\nSubject: lmtp\r\n\r\nHello\r\n",
  envelope: {
    from: "a@example.com",
    to: ["ann@example.com", "nobody@example.com", "full@example.com"],
  },
};

/** LHLO with PIPELINING and CHUNKING; RCPT refuses nobody@; after the data, `finals` in order. */
async function lmtpSession(conn: ScriptedConnection, finals: string[]): Promise<void> {
  await conn.send("220 lmtp.test LMTP\r\n");
  await expectLine(conn, "LHLO ");
  await conn.send("250-lmtp.test\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n");
  await expectLine(conn, "MAIL FROM:<a@example.com>");
  for (const to of message.envelope.to) await expectLine(conn, `RCPT TO:<${to}>`);
  await expectLine(conn, "DATA");
  await conn.send(
    "250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 <nobody@example.com> User doesn't exist\r\n" +
      "250 2.1.5 OK\r\n354 OK\r\n",
  );
  while ((await conn.readLine()) !== ".") { /* the message */ }
  await conn.send(finals.join(""));
  await conn.waitForClose();
}

/**
 * Sends `message` with `protocol: "lmtp"` to a scripted server playing `session`; returns the
 * send's result (or the error it failed with) and all the client sent.
 */
async function sendOverLmtp(
  session: (conn: ScriptedConnection) => Promise<void>,
): Promise<{ result?: SendResult; error?: unknown; received: string }> {
  await using server = startScriptedServer(session);
  const options: ClientOptions = {
    hostname: "127.0.0.1",
    port: server.port,
    tls: "none",
    protocol: "lmtp",
  };
  const outcome = await sendMail(options, message).then(
    (result) => ({ result }),
    (error: unknown) => ({ error }),
  );
  await server.close();
  return { ...outcome, received: server.connections[0]!.received };
}

test("LMTP: one reply per accepted recipient after the data decides its result", async () => {
  const { result, received } = await sendOverLmtp((conn) =>
    lmtpSession(conn, [
      "250 2.0.0 <ann@example.com> Saved\r\n",
      "552 5.2.2 <full@example.com> Quota exceeded (mailbox for user is full)\r\n",
    ])
  );
  assert.ok(result);
  assert.deepEqual(result.accepted.map((r) => [r.address, r.reply.code]), [[
    "ann@example.com",
    250,
  ]]);
  assert.deepEqual(result.rejected.map((r) => [r.address, r.reply.code]), [
    ["nobody@example.com", 550],
    ["full@example.com", 552],
  ]);
  assert.match(result.rejected[1]!.reply.lines[0]!, /Quota exceeded/);
  assert.equal(result.reply.code, 552);
  assert.doesNotMatch(received, /BDAT|EHLO|HELO/);
});

test("LMTP: when every recipient fails after the data, the send fails with each reply", async () => {
  const { error } = await sendOverLmtp((conn) =>
    lmtpSession(conn, [
      "452 4.2.2 <ann@example.com> Mailbox busy\r\n",
      "552 5.2.2 <full@example.com> Quota exceeded\r\n",
    ])
  );
  assert.ok(error instanceof SmtpRecipientsError, String(error));
  assert.equal(error.outcomeUnknown, false);
  assert.deepEqual(error.accepted, []);
  assert.deepEqual(error.rejected.map((r: { reply: { code: number } }) => r.reply.code), [
    550,
    452,
    552,
  ]);
});

test("LMTP: a refused LHLO fails without a HELO fallback", async () => {
  const { error, received } = await sendOverLmtp(async (conn) => {
    await conn.send("220 lmtp.test LMTP\r\n");
    await expectLine(conn, "LHLO ");
    await conn.send("500 5.5.1 Unknown command\r\n");
    await conn.waitForClose();
  });
  assert.ok(error instanceof SmtpReplyError, String(error));
  assert.match(error.message, /Server refused LHLO/);
  assert.doesNotMatch(received, /HELO x|EHLO/);
});
