/**
 * `MemoryTransport`: the in-memory connection pair of `@postie/smtp/testing`, and
 * `parseHeaders()`.
 */
import assert from "node:assert/strict";
import { SmtpConnectionError, SmtpProtocolError } from "../../mod.ts";
import {
  decodeEncodedWords,
  MemoryTransport,
  parseHeaders,
  SIMULATED_TLS,
} from "../../src/testing/mod.ts";
import { test } from "../_helpers/test.ts";

const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array | null) => bytes && new TextDecoder().decode(bytes);

test("MemoryTransport hands each write to the peer as one chunk, in order", async () => {
  const transport = new MemoryTransport();
  const client = await transport.connect({ hostname: "mx.example.com", port: 2525 });
  const peer = await transport.accept();
  assert.equal(peer.hostname, "mx.example.com");
  assert.equal(peer.port, 2525);
  assert.equal(transport.connections, 1);
  const buffer = encode("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n");
  await client.write(buffer);
  buffer.fill(0); // the transport copied it
  await client.write(encode("DATA\r\n"));
  assert.equal(
    decode(await peer.read()),
    "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n",
  );
  assert.equal(decode(await peer.read()), "DATA\r\n");
  await client.write(encode("line one\r\nline"));
  await client.write(encode(" two\r\nrest"));
  assert.equal(await peer.readLine(), "line one");
  assert.equal(await peer.readLine(), "line two");
  assert.equal(decode(await peer.readBytes(2)), "re");
  assert.equal(peer.buffered, 2);
  client.close();
  assert.equal(decode(await peer.read()), "st");
  assert.equal(await peer.read(), null);
  assert.ok(client.closed && peer.closed);
});

test("MemoryTransport: the client reads what the server wrote, then the end of the stream", async () => {
  const transport = new MemoryTransport();
  const connecting = transport.connect({ hostname: "mx", port: 25 });
  const peer = await transport.accept();
  const client = await connecting;
  await peer.write("221 Bye\r\n");
  peer.close();
  assert.ok(client.closed);
  assert.equal(decode(await client.read()), "221 Bye\r\n");
  assert.equal(await client.read(), null);
  await assert.rejects(client.write(encode("QUIT\r\n")), SmtpConnectionError);
  client.close();
  await peer.clientClosed();
});

test("MemoryTransport: an aborted read closes the connection and rejects with the reason", async () => {
  const transport = new MemoryTransport();
  const client = await transport.connect({ hostname: "mx", port: 25 });
  const peer = await transport.accept();
  const controller = new AbortController();
  const reading = client.read(controller.signal);
  const reason = new Error("stop");
  controller.abort(reason);
  await assert.rejects(reading, (error) => error === reason);
  assert.ok(client.closed);
  assert.equal(await peer.read(), null);
});

test("MemoryTransport: simulated TLS, and STARTTLS refused after bytes the server sent early", async () => {
  const transport = new MemoryTransport({ onConnection: () => {} });
  const implicit = await transport.connectTls({
    hostname: "mx",
    port: 465,
    serverName: "mx.example.com",
  });
  assert.equal(implicit.tls?.protocol, SIMULATED_TLS.protocol);
  assert.equal(implicit.tls?.peerSubject, "CN=mx.example.com");

  const other = new MemoryTransport();
  const plain = await other.connect({ hostname: "mx", port: 25 });
  const peer = await other.accept();
  assert.equal(plain.tls, undefined);
  const secured = await other.startTls(plain, { serverName: "mx" });
  assert.ok(plain.closed, "the old end is not used again");
  assert.ok(secured.tls);
  assert.deepEqual(peer.tls, secured.tls);
  await assert.rejects(transport.startTls(secured, { serverName: "mx" }), TypeError);

  const third = new MemoryTransport();
  const conn = await third.connect({ hostname: "mx", port: 25 });
  const injector = await third.accept();
  await injector.write("220 Go ahead\r\n250 injected\r\n");
  await assert.rejects(third.startTls(conn, { serverName: "mx" }), SmtpProtocolError);
  assert.ok(conn.closed);
  implicit.close();
  secured.close();
});

test("parseHeaders() unfolds, keeps order and raw text, and decodes encoded words", () => {
  const headers = parseHeaders(
    new TextEncoder().encode(
      "Subject: =?UTF-8?B?R3LDvMOf?=\r\n =?UTF-8?Q?e_aus_K=C3=B6ln?=\r\n" +
        "X-Tag: one\r\nx-tag: two\r\nnot a header\r\nTo: Zoë <z@example.com>\r\n\r\n" +
        "Subject: in the body\r\n",
    ),
  );
  assert.equal(headers.get("subject"), "Grüße aus Köln");
  assert.deepEqual(headers.getAll("X-TAG"), ["one", "two"]);
  assert.equal(headers.get("to"), "Zoë <z@example.com>");
  assert.ok(!headers.has("Received"));
  assert.equal(
    headers.fields[0]!.raw,
    "Subject: =?UTF-8?B?R3LDvMOf?=\r\n =?UTF-8?Q?e_aus_K=C3=B6ln?=",
  );
  assert.deepEqual([...headers].map((field) => field.name), ["Subject", "X-Tag", "x-tag", "To"]);
  // A character split between two words, text between words kept, unknown charsets left alone.
  assert.equal(decodeEncodedWords("=?utf-8?Q?=C3?= =?utf-8?Q?=A9?="), "é");
  assert.equal(decodeEncodedWords("a =?iso-8859-1?Q?=E9?= b"), "a é b");
  assert.equal(decodeEncodedWords("=?x-unknown?Q?abc?="), "=?x-unknown?Q?abc?=");
  assert.equal(parseHeaders("A: 1\nB: 2\n\nC: 3").fields.length, 2);
});
