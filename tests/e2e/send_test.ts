import assert from "node:assert/strict";
import { type ClientOptions, SmtpClient, type TranscriptEvent, type Transport } from "../../mod.ts";
import { defaultTransport } from "../../src/transport/default.ts";
import { test } from "../_helpers/test.ts";
import { startSmtpServer, testCa } from "../_helpers/smtp_server.ts";
import { expectLine, startScriptedServer } from "../_helpers/scripted_server.ts";

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
  // Every event is timed from the connection's start, in order.
  const times = transcript.map((e) => e.elapsedMs);
  assert.ok(times.every((t, i) => Number.isFinite(t) && t >= 0 && (i === 0 || t >= times[i - 1]!)));
  // The TLS details come with the note written after the handshake.
  assert.ok(transcript.some((e) => e.direction === "info" && e.tls !== undefined));
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

/** Connects to a scripted server and returns what the client said with EHLO. */
async function ehloArgument(options: Partial<ClientOptions>): Promise<string> {
  let ehlo = "";
  await using server = startScriptedServer(async (conn) => {
    await conn.send("220 scripted.test ESMTP\r\n");
    ehlo = await expectLine(conn, "EHLO ");
    await conn.send("250 scripted.test\r\n");
    await expectLine(conn, "QUIT");
    await conn.send("221 Bye\r\n");
  });
  const client = await SmtpClient.connect({
    hostname: "127.0.0.1",
    port: server.port,
    tls: "none",
    ...options,
  });
  await client.quit();
  return ehlo.slice("EHLO ".length);
}

test("EHLO names this host: its name when fully qualified, else its address literal", async () => {
  const name = await ehloArgument({});
  const host = Deno.hostname();
  // A fully qualified name (RFC 5321 section 4.1.4); a bare "vm" or "localhost" is not one.
  const qualified = /^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$/.test(host);
  assert.equal(name, qualified ? host : "[127.0.0.1]");

  const unnamed: Transport = { ...defaultTransport, hostname: () => "not a host name!" };
  assert.equal(await ehloArgument({ transport: unnamed }), "[127.0.0.1]");
  const named: Transport = { ...defaultTransport, hostname: () => "relay.example.net" };
  assert.equal(await ehloArgument({ transport: named }), "relay.example.net");
  assert.equal(await ehloArgument({ clientName: "[192.0.2.1]" }), "[192.0.2.1]");
  assert.equal(await ehloArgument({ clientName: "mx.example.org" }), "mx.example.org");
});

test("an invalid clientName is a TypeError before any connection", async () => {
  await using server = startScriptedServer(() => Promise.resolve());
  for (const clientName of ["", "bad name", "a..b", "host\r\nRSET", "[300.1"]) {
    await assert.rejects(
      SmtpClient.connect({ hostname: "127.0.0.1", port: server.port, tls: "none", clientName }),
      TypeError,
      clientName,
    );
  }
  assert.equal(server.connections.length, 0);
});
