/**
 * `MockSmtpServer` (`@postie/smtp/testing`): what it records, in memory and on a loopback port
 * with real STARTTLS and implicit TLS, and what its fault rules do.
 */
import assert from "node:assert/strict";
import {
  sendMail,
  SmtpAuthError,
  SmtpClient,
  SmtpConnectionError,
  SmtpReplyError,
} from "../../mod.ts";
import { MockSmtpServer, TranscriptRecorder } from "../../src/testing/mod.ts";
import { test } from "../_helpers/test.ts";
import { fixture, testCa } from "../_helpers/smtp_server.ts";

const certificate = { cert: fixture("server.pem"), key: fixture("server.key") };
const raw = (subject: string) => `From: a@example.com\r\nSubject: ${subject}\r\n\r\nHello\r\n`;

test("MockSmtpServer in memory records envelope, bytes, headers, simulated TLS and login", async () => {
  await using server = new MockSmtpServer({ users: { alice: "pa55 word" } });
  const result = await sendMail({
    hostname: "smtp.example.com",
    auth: { username: "alice", password: "pa55 word", mechanisms: ["LOGIN"] },
    clientName: "client.example.com",
    transport: server.transport,
  }, {
    from: "Alice <alice@example.com>",
    to: ["bob@example.com", "Zoë <zoe@example.com>"],
    subject: "Grüße aus Köln",
    text: "Hello Bob,\n.a line that starts with a dot\n",
  }, { dsn: { notify: ["FAILURE"], ret: "HDRS" } });
  assert.equal(result.accepted.length, 2);
  assert.equal(server.messages.length, 1);
  assert.equal(server.connections, 1);
  const message = server.messages[0]!;
  assert.equal(message.envelope.from, "alice@example.com");
  assert.deepEqual(message.envelope.to, ["bob@example.com", "zoe@example.com"]);
  assert.equal(typeof message.envelope.mailParameters.SIZE, "string");
  assert.equal(message.envelope.mailParameters.RET, "HDRS");
  assert.deepEqual(message.envelope.recipientParameters, [
    { NOTIFY: "FAILURE" },
    { NOTIFY: "FAILURE" },
  ]);
  assert.equal(message.headers.get("subject"), "Grüße aus Köln");
  assert.equal(message.headers.get("TO"), "bob@example.com, Zoë <zoe@example.com>");
  assert.equal(message.headers.get("Message-ID"), result.messageId);
  assert.match(message.text, /\r\n\.a line that starts with a dot\r\n/);
  assert.equal(message.method, "BDAT");
  assert.deepEqual(message.auth, { mechanism: "LOGIN", username: "alice" });
  assert.equal(message.tls?.protocol, "simulated");
  assert.equal(message.clientName, "client.example.com");
  assert.equal(message.connection, 1);
  assert.deepEqual(message.raw, new TextEncoder().encode(message.text));
});

test("MockSmtpServer takes DATA with dot-stuffing, pipelined, and parameters of MAIL and RCPT", async () => {
  await using server = new MockSmtpServer({ extensions: { CHUNKING: false } });
  const transcript = new TranscriptRecorder({ info: false });
  await using client = await SmtpClient.connect({
    ...server.clientOptions(),
    onTranscript: transcript.onTranscript,
  });
  await client.send({
    from: "a@example.com",
    to: "b@example.com",
    subject: "Dots",
    text: ".\n..\nend",
  }, { dsn: { notify: ["SUCCESS", "FAILURE"], envid: "x1" } });
  const message = server.messages[0]!;
  assert.equal(message.method, "DATA");
  assert.match(message.text, /\r\n\.\r\n\.\.\r\nend\r\n$/);
  // MAIL, RCPT and DATA went in one write, answered in order.
  assert.ok(transcript.lines.includes("C: DATA"));
  assert.equal(message.envelope.mailParameters.ENVID, "x1");
  assert.deepEqual(message.envelope.recipientParameters, [{ NOTIFY: "SUCCESS,FAILURE" }]);
});

test("MockSmtpServer on a loopback port: real STARTTLS with the given certificate", async () => {
  await using server = new MockSmtpServer({ certificate, users: { me: "secret" } });
  const { hostname, port } = await server.listen();
  assert.equal(hostname, "127.0.0.1");
  const transcript = new TranscriptRecorder();
  await sendMail({
    hostname: "localhost",
    port,
    tls: "starttls",
    tlsOptions: { caCerts: [testCa] },
    auth: { username: "me", password: "secret" },
    onTranscript: transcript.onTranscript,
  }, { raw: raw("Over STARTTLS"), envelope: { from: "a@example.com", to: ["b@example.com"] } });
  const message = server.messages[0]!;
  assert.equal(message.headers.get("Subject"), "Over STARTTLS");
  assert.match(message.tls?.protocol ?? "", /^TLSv1\.[23]$/);
  assert.equal(message.auth?.username, "me");
  assert.ok(transcript.lines.includes("C: STARTTLS"));
  assert.ok(transcript.lines.some((line) => line.startsWith("* TLS established")));
});

test("MockSmtpServer on a loopback port: implicit TLS, and plain TCP without a certificate", async () => {
  await using secure = new MockSmtpServer({ certificate });
  const { port } = await secure.listen({ implicitTls: true });
  await sendMail({
    hostname: "localhost",
    port,
    tls: "implicit",
    tlsOptions: { caCerts: [testCa] },
  }, { raw: raw("Implicit"), envelope: { from: "a@example.com", to: ["b@example.com"] } });
  assert.ok(secure.messages[0]!.tls);

  await using plain = new MockSmtpServer();
  const address = await plain.listen();
  await assert.rejects(
    sendMail(
      { hostname: address.hostname, port: address.port, tls: "starttls" },
      { raw: raw("x"), envelope: { from: "a@example.com", to: ["b@example.com"] } },
    ),
    /does not offer STARTTLS/,
  );
  await sendMail(
    { hostname: address.hostname, port: address.port, tls: "none" },
    { raw: raw("Plain"), envelope: { from: "a@example.com", to: ["b@example.com"] } },
  );
  assert.equal(plain.messages[0]!.tls, undefined);
  await assert.rejects(secure.listen({ implicitTls: true, port }), Error);
});

test("fault rules: a refused recipient, a 4xx once at the end of the message, then acceptance", async () => {
  await using server = new MockSmtpServer({
    faults: [
      { command: "RCPT", match: /^nobody@/, reply: "550 5.1.1 No such user" },
      { command: "MESSAGE", reply: "451 4.3.0 Try again later", times: 1 },
    ],
  });
  await using client = await SmtpClient.connect(server.clientOptions());
  const message = {
    raw: raw("Faults"),
    envelope: { from: "a@example.com", to: ["b@example.com", "nobody@example.com"] },
  };
  const failed = await client.send(message).catch((error) => error);
  assert.ok(failed instanceof SmtpReplyError, String(failed));
  assert.equal(failed.code, 451);
  assert.equal(server.messages.length, 0);
  const result = await client.send(message);
  assert.deepEqual(result.accepted.map((r) => r.address), ["b@example.com"]);
  assert.equal(result.rejected[0]!.reply.code, 550);
  assert.deepEqual(result.rejected[0]!.reply.lines, ["No such user"]);
  assert.equal(server.messages.length, 1);
});

test("fault rules: a delay holds the reply; a drop closes without one; 421 closes after it", async () => {
  await using server = new MockSmtpServer({
    faults: [
      { command: "DATA", delayMs: 60 },
      { command: "MAIL", match: "drop@example.com", drop: true },
      { command: "CONNECT", reply: "421 4.3.2 Busy", times: 1 },
    ],
    extensions: { CHUNKING: false },
  });
  const busy = await SmtpClient.connect(server.clientOptions()).catch((error) => error);
  assert.ok(busy instanceof SmtpReplyError && busy.code === 421, String(busy));

  await using client = await SmtpClient.connect(server.clientOptions());
  const started = performance.now();
  await client.send({
    raw: raw("Slow"),
    envelope: { from: "a@example.com", to: ["b@example.com"] },
  });
  assert.ok(performance.now() - started >= 50);

  await assert.rejects(
    client.send({ raw: raw("x"), envelope: { from: "drop@example.com", to: ["b@example.com"] } }),
    SmtpConnectionError,
  );
  assert.equal(server.messages.length, 1);
});

test("MockSmtpServer refuses what a real server refuses", async () => {
  // Without SIZE announced, the client cannot check the limit itself.
  await using server = new MockSmtpServer({
    users: { me: "right" },
    maxSize: 1000,
    extensions: { SIZE: false },
  });
  await assert.rejects(
    sendMail({ ...server.clientOptions(), auth: { username: "me", password: "wrong" } }, {
      raw: raw("x"),
      envelope: { from: "a@example.com", to: ["b@example.com"] },
    }),
    (error) => error instanceof SmtpAuthError && error.code === 535,
  );
  await assert.rejects(
    sendMail(server.clientOptions(), {
      raw: raw("x"),
      envelope: { from: "a@example.com", to: ["b@example.com"] },
    }),
    (error) => error instanceof SmtpReplyError && error.code === 530,
  );
  await assert.rejects(
    sendMail({ ...server.clientOptions(), auth: { username: "me", password: "right" } }, {
      raw: raw("x".repeat(2000)),
      envelope: { from: "a@example.com", to: ["b@example.com"] },
    }),
    (error) => error instanceof SmtpReplyError && error.code === 552,
  );
  assert.equal(server.messages.length, 0);
  assert.throws(
    () => new MockSmtpServer({ faults: [{ command: "RCPT", reply: "nope" }] }),
    TypeError,
  );
});

test("close() ends open connections, pending delays and listeners", async () => {
  const server = new MockSmtpServer({ faults: [{ command: "NOOP", delayMs: 60_000 }] });
  await server.listen();
  const client = await SmtpClient.connect(server.clientOptions());
  const noop = client.noop().catch((error) => error);
  await new Promise((resolve) => setTimeout(resolve, 10));
  await server.close();
  assert.ok(await noop instanceof SmtpConnectionError);
  client.close();
  await assert.rejects(server.listen(), TypeError);
  await assert.rejects(
    SmtpClient.connect(server.clientOptions()),
    SmtpConnectionError,
  );
});
