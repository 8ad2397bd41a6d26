import assert from "node:assert/strict";
import { SmtpClient, type TranscriptEvent } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { startSmtpServer, testCa } from "../_helpers/smtp_server.ts";

const message = (to: string[]) => ({
  raw: "From: a@example.com\r\nTo: b@example.com\r\nSubject: Test\r\n\r\nHello\r\n.dot line\n",
  envelope: { from: "a@example.com", to },
});

test("send() over STARTTLS delivers the message with dot lines intact", async () => {
  await using server = await startSmtpServer();
  const transcript: TranscriptEvent[] = [];
  await using client = await SmtpClient.connect({
    hostname: "localhost",
    port: server.port,
    tls: "starttls",
    tlsOptions: { caCerts: [testCa] },
    onTranscript: (event) => transcript.push(event),
  });
  const result = await client.send(message(["b@example.com"]));
  assert.equal(result.accepted.length, 1);
  assert.equal(result.reply.code, 250);
  assert.equal(server.received.length, 1);
  assert.equal(server.received[0]!.secure, true);
  assert.match(server.received[0]!.text, /\r\nHello\r\n\.dot line\r\n$/);
  assert.ok(transcript.some((e) => e.line === "STARTTLS"));
});

test("send() over implicit TLS", async () => {
  await using server = await startSmtpServer({ secure: true });
  await using client = await SmtpClient.connect({
    hostname: "localhost",
    port: server.port,
    tls: "implicit",
    tlsOptions: { caCerts: [testCa] },
  });
  await client.send(message(["b@example.com"]));
  assert.equal(server.received[0]!.secure, true);
});

test("send() in plain mode when asked for", async () => {
  await using server = await startSmtpServer({ hideSTARTTLS: true });
  await using client = await SmtpClient.connect({
    hostname: "127.0.0.1",
    port: server.port,
    tls: "none",
  });
  const result = await client.send(message(["b@example.com", "bad@example.com"]));
  assert.equal(server.received[0]!.secure, false);
  assert.equal(result.accepted.length, 2);
});
