/**
 * `@postie/smtp/testing` on Node.js, from the built package: the mock server in memory (ES
 * module build) and on a loopback port with real STARTTLS (CommonJS build), the transcript
 * recorder, and the exact bytes of the in-memory transport.
 */
import assert from "node:assert/strict";
import { pathToFileURL } from "node:url";
import { test } from "node:test";
import { fixture, importTarget, requirePackage, testCa } from "./_helpers.cjs";

const postie = await import(pathToFileURL(importTarget(".")).href);
const testing = await import(pathToFileURL(importTarget("./testing")).href);

test("import: MockSmtpServer in memory records the message; the recorder keeps the dialogue", async () => {
  const server = new testing.MockSmtpServer({ users: { me: "secret" } });
  try {
    const transcript = new testing.TranscriptRecorder({ info: false });
    const result = await postie.sendMail({
      hostname: "smtp.example.com",
      port: 587,
      auth: { username: "me", password: "secret" },
      transport: server.transport,
      onTranscript: transcript.onTranscript,
    }, { from: "a@example.com", to: "b@example.com", subject: "Grüße", text: "Hi" });
    assert.equal(result.accepted.length, 1);
    const message = server.messages[0];
    assert.equal(message.headers.get("subject"), "Grüße");
    assert.deepEqual(message.auth, { mechanism: "PLAIN", username: "me" });
    assert.equal(message.tls.protocol, "simulated");
    assert.ok(transcript.lines.includes("C: STARTTLS"));
  } finally {
    await server.close();
  }
});

test("require: MockSmtpServer on a loopback port with real STARTTLS under Node.js", async () => {
  const { sendMail } = requirePackage(".");
  const { MockSmtpServer } = requirePackage("./testing");
  const server = new MockSmtpServer({
    certificate: { cert: fixture("server.pem"), key: fixture("server.key") },
    faults: [{ command: "RCPT", match: "nobody@example.com", reply: "550 5.1.1 No such user" }],
  });
  try {
    const { port } = await server.listen();
    const result = await sendMail({
      hostname: "localhost",
      port,
      tls: "starttls",
      tlsOptions: { caCerts: [testCa] },
    }, {
      raw: "Subject: Over TCP\r\n\r\nHello\r\n",
      envelope: { from: "a@example.com", to: ["b@example.com", "nobody@example.com"] },
    });
    assert.equal(result.rejected[0].reply.code, 550);
    const message = server.messages[0];
    assert.deepEqual(message.envelope.to, ["b@example.com"]);
    assert.match(message.tls.protocol, /^TLSv1\.[23]$/);
  } finally {
    await server.close();
  }
});

test("MemoryTransport: the client's pipelined envelope arrives as one write", async () => {
  const transport = new testing.MemoryTransport();
  const connecting = postie.SmtpClient.connect({
    hostname: "mx.example.com",
    tls: "none",
    clientName: "client.example.com",
    transport,
  });
  const peer = await transport.accept();
  await peer.write("220 mx ESMTP\r\n");
  assert.equal(await peer.readLine(), "EHLO client.example.com");
  await peer.write("250-mx\r\n250 PIPELINING\r\n");
  const client = await connecting;
  const sending = client.send({
    raw: "Subject: x\r\n\r\ny\r\n",
    envelope: { from: "a@example.com", to: ["b@example.com"] },
  });
  assert.equal(
    new TextDecoder().decode(await peer.read()),
    "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
  );
  await peer.write("250 OK\r\n250 OK\r\n354 Go\r\n");
  assert.equal(new TextDecoder().decode(await peer.read()), "Subject: x\r\n\r\ny\r\n.\r\n");
  await peer.write("250 Queued\r\n");
  assert.equal((await sending).accepted.length, 1);
  client.close();
  assert.equal(await peer.read(), null);
});
