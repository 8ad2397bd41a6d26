/** Hostile and broken servers: 421 and other refusals. See tests/hostile/_helpers.ts for the shared tools. */

import assert from "node:assert/strict";
import {
  type ClientOptions,
  sendMail,
  SmtpAuthError,
  SmtpClient,
  SmtpReplyError,
} from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import {
  acceptEnvelope,
  expectLine,
  expectPipelinedEnvelope,
  greet,
  startScriptedServer,
} from "../_helpers/scripted_server.ts";
import {
  check,
  clientCloses,
  encoder,
  envelope,
  failsOnOneConnection,
  password,
  plain,
  raw,
  rejection,
} from "./_helpers.ts";

test("421 at the greeting: SmtpReplyError (temporary), no EHLO, one connection", async () => {
  const { error, lines } = await failsOnOneConnection(
    (conn) => conn.send("421 4.3.2 hostile.test Service not available, try later\r\n"),
    (port) => sendMail(plain(port), { raw, envelope }),
  );
  const reply = check(error, SmtpReplyError, "greeting");
  assert.equal(reply.code, 421);
  assert.equal(reply.temporary, true);
  assert.deepEqual(lines, []);
});

test("554 greeting: SmtpReplyError (permanent), no EHLO, one connection", async () => {
  const { error, lines } = await failsOnOneConnection(
    (conn) => conn.send("554 5.7.1 hostile.test No SMTP service here\r\n"),
    (port) => SmtpClient.connect(plain(port)),
  );
  const reply = check(error, SmtpReplyError, "greeting");
  assert.equal(reply.code, 554);
  assert.equal(reply.temporary, false);
  assert.deepEqual(reply.reply.enhancedStatus, { class: 5, subject: 7, detail: 1 });
  assert.equal(lines.some((line) => /^(EHLO|HELO)/.test(line)), false);
});

test("421 in reply to EHLO: SmtpReplyError, socket closed, one connection", async () => {
  const { error, lines } = await failsOnOneConnection(async (conn) => {
    await conn.send("220 hostile.test ESMTP\r\n");
    await expectLine(conn, "EHLO");
    await conn.send("421 4.7.0 hostile.test Too many connections\r\n");
  }, (port) => sendMail(plain(port), { raw, envelope }));
  const reply = check(error, SmtpReplyError, "ehlo");
  assert.equal(reply.code, 421);
  assert.equal(lines.some((line) => /^(HELO|MAIL)/.test(line)), false);
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
    await expectPipelinedEnvelope(conn);
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
    await acceptEnvelope(conn);
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
  const { error, lines, received } = await failsOnOneConnection(async (conn) => {
    await greet(conn, ["STARTTLS", "AUTH PLAIN LOGIN", "PIPELINING", "CHUNKING"]);
    await expectLine(conn, "STARTTLS");
    await conn.send("421 4.3.2 hostile.test Shutting down\r\n");
  }, (port) =>
    SmtpClient.connect(plain(port, {
      tls: "starttls",
      auth: { username: "user", password },
    })));
  const reply = check(error, SmtpReplyError, "starttls");
  assert.equal(reply.code, 421);
  assert.equal(reply.temporary, true);
  assert.equal(String(error).includes(password), false);
  // The server is closing the channel: not even QUIT, let alone AUTH or MAIL.
  assert.deepEqual(lines, []);
  assert.equal(received.includes(password), false);
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
