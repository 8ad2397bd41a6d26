/**
 * Exact transcripts of the client over the in-memory transport (`@postie/smtp/testing`), the way
 * go-smtp tests its client: given these server lines, the client writes exactly these bytes, in
 * these writes. No socket, no timer: each step waits for the client's next write.
 */
import assert from "node:assert/strict";
import { type ClientOptions, SmtpClient, SmtpReplyError } from "../../mod.ts";
import { type MemoryPeer, MemoryTransport } from "../../src/testing/mod.ts";
import { test } from "../_helpers/test.ts";

const decoder = new TextDecoder();

/** Asserts that the client's next write is exactly `expected`. */
async function expectWrite(peer: MemoryPeer, expected: string): Promise<void> {
  const chunk = await peer.read();
  assert.equal(chunk === null ? null : decoder.decode(chunk), expected);
}

/** Starts a client on a fresh transport and plays the greeting and EHLO. */
async function connect(
  ehlo: string,
  options: Partial<ClientOptions> = {},
): Promise<{ client: SmtpClient; peer: MemoryPeer; transport: MemoryTransport }> {
  const transport = new MemoryTransport();
  const connecting = SmtpClient.connect({
    hostname: "mx.example.com",
    tls: "none",
    clientName: "client.example.com",
    transport,
    ...options,
  });
  const peer = await transport.accept();
  await peer.write("220 mx.example.com ESMTP\r\n");
  await expectWrite(peer, "EHLO client.example.com\r\n");
  await peer.write(ehlo);
  return { client: await connecting, peer, transport };
}

const message = {
  raw: "Subject: Hi\r\n\r\nHello\r\n.dot\r\n",
  envelope: { from: "a@example.com", to: ["b@example.com", "c@example.com"] },
};

test("send() with PIPELINING writes MAIL, RCPTs and DATA in one write, then the data and its dot", async () => {
  const { client, peer } = await connect(
    "250-mx.example.com\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
  );
  const sending = client.send(message);
  await expectWrite(
    peer,
    "MAIL FROM:<a@example.com> SIZE=28\r\nRCPT TO:<b@example.com>\r\n" +
      "RCPT TO:<c@example.com>\r\nDATA\r\n",
  );
  await peer.write("250 2.1.0 OK\r\n250 2.1.5 OK\r\n550 5.1.1 No such user\r\n354 Go ahead\r\n");
  await expectWrite(peer, "Subject: Hi\r\n\r\nHello\r\n..dot\r\n.\r\n");
  await peer.write("250 2.0.0 Queued as 1\r\n");
  const result = await sending;
  assert.deepEqual(result.accepted.map((r) => r.address), ["b@example.com"]);
  assert.deepEqual(result.rejected.map((r) => r.address), ["c@example.com"]);
  const quitting = client.quit();
  await expectWrite(peer, "QUIT\r\n");
  await peer.write("221 2.0.0 Bye\r\n");
  await quitting;
  assert.equal(await peer.read(), null);
});

test("send() without PIPELINING writes each command after the reply to the one before", async () => {
  const { client, peer } = await connect("250 mx.example.com\r\n");
  const sending = client.send(message);
  await expectWrite(peer, "MAIL FROM:<a@example.com>\r\n");
  await peer.write("250 OK\r\n");
  await expectWrite(peer, "RCPT TO:<b@example.com>\r\n");
  await peer.write("250 OK\r\n");
  await expectWrite(peer, "RCPT TO:<c@example.com>\r\n");
  await peer.write("250 OK\r\n");
  await expectWrite(peer, "DATA\r\n");
  await peer.write("354 Go ahead\r\n");
  await expectWrite(peer, "Subject: Hi\r\n\r\nHello\r\n..dot\r\n.\r\n");
  await peer.write("250 Queued\r\n");
  assert.equal((await sending).accepted.length, 2);
  client.close();
  assert.equal(await peer.read(), null, "close() sends no QUIT");
});

test("send() with CHUNKING writes the envelope and one BDAT LAST chunk of the exact size", async () => {
  const { client, peer } = await connect(
    "250-mx.example.com\r\n250-PIPELINING\r\n250 CHUNKING\r\n",
  );
  const sending = client.send({
    ...message,
    envelope: { ...message.envelope, to: ["b@example.com"] },
  });
  const body = "Subject: Hi\r\n\r\nHello\r\n.dot\r\n";
  let written = "";
  while (!written.endsWith(body)) written += decoder.decode((await peer.read())!);
  assert.equal(
    written,
    `MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT ${body.length} LAST\r\n${body}`,
  );
  await peer.write("250 OK\r\n250 OK\r\n250 Queued\r\n");
  assert.equal((await sending).accepted.length, 1);
  client.close();
});

/** Reads the client's writes until they end with `end`. */
async function readUntil(peer: MemoryPeer, end: string): Promise<string> {
  let written = "";
  while (!written.endsWith(end)) written += decoder.decode((await peer.read())!);
  return written;
}

test("a BDAT LAST refused after the next send wrote: no RSET of its own, and the next send's replies stay its own", async () => {
  const { client, peer } = await connect(
    "250-mx.example.com\r\n250-PIPELINING\r\n250 CHUNKING\r\n",
  );
  const first = "Subject: 1\r\n\r\nfirst\r\n";
  const second = "Subject: 2\r\n\r\nsecond\r\n";
  const sendingFirst = client.send({
    raw: first,
    envelope: { from: "a@example.com", to: ["b@example.com"] },
  });
  const sendingSecond = client.send({
    raw: second,
    envelope: { from: "a@example.com", to: ["bad@example.com", "good@example.com"] },
  });
  assert.equal(
    await readUntil(peer, first),
    `MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nBDAT ${first.length} LAST\r\n${first}`,
  );
  // The second send writes before any reply: RSET first, as earlier replies are outstanding.
  assert.equal(
    await readUntil(peer, second),
    "RSET\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<bad@example.com>\r\n" +
      `RCPT TO:<good@example.com>\r\nBDAT ${second.length} LAST\r\n${second}`,
  );
  await peer.write("250 OK\r\n250 OK\r\n554 5.6.0 Refused\r\n");
  await peer.write("250 Reset\r\n250 OK\r\n550 5.1.1 No such user\r\n250 OK\r\n250 Queued\r\n");
  await assert.rejects(sendingFirst, (error: unknown) => {
    assert.ok(error instanceof SmtpReplyError);
    assert.equal(error.reply?.code, 554);
    return true;
  });
  const result = await sendingSecond;
  assert.deepEqual(result.accepted.map((r) => r.address), ["good@example.com"]);
  assert.deepEqual(result.rejected.map((r) => r.address), ["bad@example.com"]);
  assert.equal(result.reply.code, 250);
  // Nothing more was written: the next write is QUIT.
  const quitting = client.quit();
  await expectWrite(peer, "QUIT\r\n");
  await peer.write("221 Bye\r\n");
  await quitting;
});

test("a BDAT LAST refused with nothing after it: the client writes RSET once the reply is read", async () => {
  const { client, peer } = await connect(
    "250-mx.example.com\r\n250-PIPELINING\r\n250 CHUNKING\r\n",
  );
  const body = "Subject: 1\r\n\r\nfirst\r\n";
  const sending = client.send({
    raw: body,
    envelope: { from: "a@example.com", to: ["b@example.com"] },
  });
  await readUntil(peer, body);
  await peer.write("250 OK\r\n250 OK\r\n554 5.6.0 Refused\r\n");
  await expectWrite(peer, "RSET\r\n");
  await peer.write("250 Reset\r\n");
  await assert.rejects(sending, SmtpReplyError);
  // The next send starts clean: no RSET before MAIL.
  const next = client.send({
    raw: body,
    envelope: { from: "a@example.com", to: ["b@example.com"] },
  });
  assert.ok((await readUntil(peer, body)).startsWith("MAIL FROM:<a@example.com>\r\n"));
  await peer.write("250 OK\r\n250 OK\r\n250 Queued\r\n");
  assert.equal((await next).reply.code, 250);
  client.close();
});

test("STARTTLS: EHLO is sent again after the upgrade, and its capabilities replace the first", async () => {
  const transport = new MemoryTransport();
  const connecting = SmtpClient.connect({
    hostname: "mx.example.com",
    port: 587,
    clientName: "client.example.com",
    transport,
  });
  const peer = await transport.accept();
  await peer.write("220 mx.example.com ESMTP\r\n");
  await expectWrite(peer, "EHLO client.example.com\r\n");
  await peer.write("250-mx.example.com\r\n250-STARTTLS\r\n250 SIZE 100\r\n");
  await expectWrite(peer, "STARTTLS\r\n");
  assert.equal(peer.tls, undefined);
  await peer.write("220 2.0.0 Ready\r\n");
  await expectWrite(peer, "EHLO client.example.com\r\n");
  assert.ok(peer.tls, "the client secured the connection before its second EHLO");
  await peer.write("250-mx.example.com\r\n250 SIZE 5000\r\n");
  const client = await connecting;
  assert.equal(client.capabilities.maxSize, 5000);
  assert.ok(!client.capabilities.has("STARTTLS"));
  assert.ok(client.tls);
  client.close();
});

test("a 421 at RCPT: the client writes nothing more on that connection and closes it (no QUIT)", async () => {
  const { client, peer, transport } = await connect("250-mx.example.com\r\n250 PIPELINING\r\n");
  const sending = client.send({
    ...message,
    envelope: { ...message.envelope, to: ["b@example.com"] },
  });
  await expectWrite(peer, "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
  await peer.write("250 2.1.0 OK\r\n421 4.3.0 Shutting down\r\n");
  await peer.clientClosed();
  assert.equal(await peer.read(), null, "no QUIT after a 421");
  // Nothing of the message was sent: the client tries once more on a new connection.
  const retry = await transport.accept();
  await retry.write("421 4.3.2 Still busy\r\n");
  const error = await sending.catch((error) => error);
  assert.ok(error instanceof SmtpReplyError, String(error));
  assert.equal(error.code, 421);
  await retry.clientClosed();
  assert.equal(await retry.read(), null, "no QUIT after a 421 greeting either");
  assert.equal(transport.connections, 2);
  assert.ok(!client.connected);
});
