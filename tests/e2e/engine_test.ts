import assert from "node:assert/strict";
import {
  SmtpClient,
  SmtpRecipientsError,
  SmtpReplyError,
  SmtpUnsupportedError,
} from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { startSmtpServer, testCa } from "../_helpers/smtp_server.ts";
import {
  type EsmtpLog,
  expectLine,
  greet,
  type ScriptedConnection,
  serveEsmtp,
  startScriptedServer,
} from "../_helpers/scripted_server.ts";

const raw = "From: a@example.com\r\nTo: b@example.com\r\nSubject: Test\r\n\r\nHello\r\n";
const envelope = { from: "a@example.com", to: ["b@example.com"] };
/** Connects over STARTTLS to a loopback smtp-server, trusting the test CA. */
const connectVerified = (server: { port: number }) =>
  SmtpClient.connect({
    hostname: "localhost",
    port: server.port,
    tlsOptions: { caCerts: [testCa] },
  });
const plain = (port: number) => ({ hostname: "127.0.0.1", port, tls: "none" as const });

/** Answers one pipelined MAIL, RCPTs and DATA, then the data; returns the data. */
async function serveTransaction(conn: ScriptedConnection, recipients: number, replies?: string[]) {
  await expectLine(conn, "MAIL FROM:");
  for (let i = 0; i < recipients; i++) await expectLine(conn, "RCPT TO:");
  await expectLine(conn, "DATA");
  await conn.send(
    replies?.join("") ?? "250 OK\r\n" + "250 OK\r\n".repeat(recipients) + "354 Go\r\n",
  );
  const data = await conn.readData();
  await conn.send("250 2.0.0 queued as 42\r\n");
  return data;
}

test("send() pipelines MAIL, every RCPT and DATA in one write", async () => {
  let readsForEnvelope = -1;
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, ["PIPELINING"]);
    const before = conn.reads;
    await expectLine(conn, "MAIL FROM:<a@example.com>");
    await expectLine(conn, "RCPT TO:<b@example.com>");
    await expectLine(conn, "RCPT TO:<c@example.com>");
    await expectLine(conn, "DATA");
    readsForEnvelope = conn.reads - before;
    await conn.send("250 OK\r\n250 OK\r\n250 OK\r\n354 Go\r\n");
    await conn.readData();
    await conn.send("250 queued\r\n");
    await expectLine(conn, "QUIT");
    await conn.send("221 Bye\r\n");
  });
  const client = await SmtpClient.connect(plain(server.port));
  const result = await client.send({
    raw,
    envelope: { from: "a@example.com", to: ["b@example.com", "c@example.com"] },
  });
  await client.quit();
  assert.equal(result.accepted.length, 2);
  await server.close();
  assert.equal(readsForEnvelope, 1);
});

test("send() reports each rejected recipient with its codes", async () => {
  await using server = await startSmtpServer({ rejectRecipients: ["nobody@example.com"] });
  await using client = await connectVerified(server);
  const result = await client.send({
    raw,
    envelope: { from: "a@example.com", to: ["b@example.com", "nobody@example.com"] },
  });
  assert.deepEqual(result.accepted.map((r) => r.address), ["b@example.com"]);
  assert.equal(result.rejected[0]!.address, "nobody@example.com");
  assert.equal(result.rejected[0]!.reply.code, 550);
  assert.deepEqual(result.rejected[0]!.reply.enhancedStatus, { class: 5, subject: 1, detail: 1 });
  assert.deepEqual(server.received[0]!.to, ["b@example.com"]);
});

test("send() with rejectOnPartialFailure rejects after sending to the others", async () => {
  await using server = await startSmtpServer({ rejectRecipients: ["nobody@example.com"] });
  await using client = await connectVerified(server);
  await assert.rejects(
    client.send({
      raw,
      envelope: { from: "a@example.com", to: ["b@example.com", "nobody@example.com"] },
    }, {
      rejectOnPartialFailure: true,
    }),
    (error: unknown) =>
      error instanceof SmtpRecipientsError && error.rejected.length === 1 &&
      // The message names the refused address and the reply, enhanced status code included.
      /1 of 2 recipients were refused: nobody@example\.com \(550 5\.\d\.\d /.test(error.message),
  );
  assert.equal(server.received.length, 1);
});

test("send() with no accepted recipient sends nothing and resets", async () => {
  await using server = await startSmtpServer({
    rejectRecipients: ["x@example.com", "y@example.com"],
  });
  await using client = await connectVerified(server);
  await assert.rejects(
    client.send({
      raw,
      envelope: { from: "a@example.com", to: ["x@example.com", "y@example.com"] },
    }),
    (error: unknown) =>
      error instanceof SmtpRecipientsError && error.rejected.length === 2 &&
      /no recipient was accepted: x@example\.com \(550 [^)]*\), y@example\.com \(550/.test(
        error.message,
      ),
  );
  assert.equal(server.received.length, 0);
  // The session is still usable afterwards.
  await client.send({ raw, envelope: { from: "a@example.com", to: ["b@example.com"] } });
  assert.equal(server.received.length, 1);
});

test("a DATA accepted after every RCPT failed is ended empty, then RSET", async () => {
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, ["PIPELINING"]);
    await expectLine(conn, "MAIL");
    await expectLine(conn, "RCPT");
    await expectLine(conn, "DATA");
    await conn.send("250 OK\r\n550 5.1.1 unknown\r\n354 Go\r\n");
    await expectLine(conn, /^\.$/);
    await conn.send("554 5.5.1 No valid recipients\r\n");
    await expectLine(conn, "RSET");
    await conn.send("250 OK\r\n");
    await conn.waitForClose();
  });
  await using client = await SmtpClient.connect(plain(server.port));
  await assert.rejects(
    client.send({ raw, envelope: { from: "a@example.com", to: ["b@example.com"] } }),
    SmtpRecipientsError,
  );
  assert.equal(client.connected, true);
});

test("send() uses BDAT when the server offers CHUNKING, envelope and body in one write", async () => {
  let body = "";
  let reads = -1;
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, ["PIPELINING", "CHUNKING", "SIZE 1000000"]);
    const before = conn.reads;
    await expectLine(conn, /^MAIL FROM:<a@example.com> SIZE=\d+$/);
    await expectLine(conn, "RCPT TO:<b@example.com>");
    const bdat = await expectLine(conn, /^BDAT \d+ LAST$/);
    const size = Number(bdat.split(" ")[1]);
    body = new TextDecoder().decode((await conn.readBytes(size))!);
    reads = conn.reads - before;
    await conn.send("250 OK\r\n250 OK\r\n250 2.0.0 queued\r\n");
    await conn.waitForClose();
  });
  await using client = await SmtpClient.connect(plain(server.port));
  const result = await client.send({
    raw: "Subject: chunked\n\n.leading dot stays single\n",
    envelope: { from: "a@example.com", to: ["b@example.com"] },
  });
  assert.equal(result.reply.code, 250);
  assert.equal(body, "Subject: chunked\r\n\r\n.leading dot stays single\r\n");
  assert.equal(reads, 1);
});

test("send() streams a large body in several BDAT chunks", async () => {
  let total = 0;
  let chunks = 0;
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, ["PIPELINING", "CHUNKING"]);
    await expectLine(conn, "MAIL");
    await expectLine(conn, "RCPT");
    await conn.send("250 OK\r\n250 OK\r\n");
    while (true) {
      const line = await expectLine(conn, /^BDAT \d+( LAST)?$/);
      const size = Number(line.split(" ")[1]);
      total += (await conn.readBytes(size))!.length;
      chunks++;
      await conn.send("250 OK\r\n");
      if (line.endsWith("LAST")) break;
    }
    await conn.waitForClose();
  });
  await using client = await SmtpClient.connect(plain(server.port));
  let sent = 0;
  const line = new TextEncoder().encode("x".repeat(1022) + "\r\n");
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= 2048) return controller.close();
      sent++;
      controller.enqueue(line);
    },
  });
  await client.send({ raw: body, envelope: { from: "a@example.com", to: ["b@example.com"] } });
  assert.equal(total, 2048 * 1024);
  assert.ok(chunks > 1, `chunks: ${chunks}`);
});

test("send() refuses a message over the server's SIZE limit before MAIL", async () => {
  await using server = await startSmtpServer({ size: 100 });
  await using client = await connectVerified(server);
  await assert.rejects(
    client.send({
      raw: raw + "x".repeat(200),
      envelope: { from: "a@example.com", to: ["b@example.com"] },
    }),
    (error: unknown) => error instanceof SmtpUnsupportedError && error.extension === "SIZE",
  );
  await client.send({ raw, envelope: { from: "a@example.com", to: ["b@example.com"] } });
  assert.equal(server.received[0]!.mailArgs.SIZE, String(new TextEncoder().encode(raw).length));
});

test("send() declares BODY=8BITMIME for 8-bit content, and composes 7-bit without 8BITMIME", async () => {
  const message = { from: "a@example.com", to: "b@example.com", subject: "Grüße", text: "Grüße" };
  {
    await using server = await startSmtpServer();
    await using client = await connectVerified(server);
    await client.send({ raw: "Subject: x\r\n\r\nGrüße\r\n", envelope });
    await client.send({ raw, envelope });
    await client.send(message);
    const [eightBitRaw, asciiRaw, composed] = server.received;
    assert.equal(eightBitRaw!.mailArgs.BODY, "8BITMIME");
    assert.equal(asciiRaw!.mailArgs.BODY, undefined);
    assert.equal(composed!.mailArgs.BODY, "8BITMIME");
    assert.match(composed!.text, /^Content-Transfer-Encoding: 8bit\r$/m);
  }
  await using server = await startSmtpServer({ hide8BITMIME: true });
  await using client = await connectVerified(server);
  await client.send(message);
  const [composed] = server.received;
  assert.equal(composed!.mailArgs.BODY, undefined);
  assert.match(composed!.text, /^Content-Transfer-Encoding: quoted-printable\r$/m);
  assert.doesNotMatch(composed!.text, /[\x80-\uffff]/);
});

test("a binary MIME message goes byte for byte with BDAT and BODY=BINARYMIME", async () => {
  const binary = new Uint8Array([
    ...new TextEncoder().encode(
      "Subject: bin\r\nContent-Type: application/octet-stream\r\n" +
        "Content-Transfer-Encoding: binary\r\n\r\n",
    ),
    0x00,
    0x0a,
    0x0d,
    0xff,
    0x2e,
    0x0a,
    0x2e,
  ]);
  let mail = "";
  let received: Uint8Array | null = null;
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, ["PIPELINING", "CHUNKING", "BINARYMIME", "SIZE 1000000"]);
    mail = await expectLine(conn, "MAIL FROM:");
    await expectLine(conn, "RCPT TO:");
    const bdat = await expectLine(conn, /^BDAT \d+ LAST$/);
    received = await conn.readBytes(Number(bdat.split(" ")[1]));
    await conn.send("250 OK\r\n250 OK\r\n250 2.0.0 Queued\r\n");
    await conn.waitForClose();
  });
  await using client = await SmtpClient.connect(plain(server.port));
  const result = await client.send({ raw: binary, envelope, binary: true });
  assert.equal(result.reply.code, 250);
  assert.match(mail, / BODY=BINARYMIME/);
  assert.match(mail, / SIZE=\d+/);
  assert.deepEqual(received, binary);
});

test("a binary MIME message is refused before MAIL when BINARYMIME or CHUNKING is missing", async () => {
  for (const extensions of [["PIPELINING", "CHUNKING"], ["PIPELINING", "BINARYMIME"]]) {
    let log: EsmtpLog | undefined;
    await using server = startScriptedServer(async (conn) => {
      log = await serveEsmtp(conn, { extensions });
    });
    await using client = await SmtpClient.connect(plain(server.port));
    await assert.rejects(
      client.send({ raw: "Subject: x\r\n\r\n\x00", envelope, binary: true }),
      (error: unknown) => error instanceof SmtpUnsupportedError && error.extension === "BINARYMIME",
    );
    await client.quit();
    await server.close();
    assert.ok(!log!.commands.some((c) => c.startsWith("MAIL")), String(log!.commands));
  }
});

test("a composed message with a file attachment declares its exact SIZE, and one too large is refused before MAIL", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/small.bin`, new Uint8Array(30_000).fill(7));
    await Deno.writeFile(`${dir}/large.bin`, new Uint8Array(300_000).fill(7));
    const withFile = (name: string) => ({
      from: "a@example.com",
      to: "b@example.com",
      subject: "File",
      text: "attached",
      attachments: [{ filename: name, content: { path: `${dir}/${name}` } }],
    });
    await using server = await startSmtpServer({ size: 200_000 });
    await using client = await connectVerified(server);
    await assert.rejects(
      client.send(withFile("large.bin")),
      (error: unknown) => error instanceof SmtpUnsupportedError && error.extension === "SIZE",
    );
    await client.send(withFile("small.bin"));
    assert.equal(server.received.length, 1);
    const [received] = server.received;
    assert.equal(received!.mailArgs.SIZE, String(received!.raw.length));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("send() negotiates SMTPUTF8 for internationalised addresses", async () => {
  await using server = await startSmtpServer();
  await using client = await connectVerified(server);
  await client.send({ raw, envelope: { from: "a@example.com", to: ["用户@例子.example"] } });
  assert.deepEqual(server.received[0]!.to, ["用户@例子.example"]);
  assert.equal(server.received[0]!.mailArgs.SMTPUTF8, true);
});

test("send() fails clearly when SMTPUTF8 is needed but not offered", async () => {
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, ["PIPELINING"]);
    await conn.waitForClose();
  });
  await using client = await SmtpClient.connect(plain(server.port));
  await assert.rejects(
    client.send({ raw, envelope: { from: "a@example.com", to: ["用户@example.com"] } }),
    (error: unknown) => error instanceof SmtpUnsupportedError && error.extension === "SMTPUTF8",
  );
  await client.quit();
  await server.close();
  assert.doesNotMatch(server.connections[0]!.received, /MAIL/);
});

test("send() passes DSN parameters as the server sees them", async () => {
  await using server = await startSmtpServer({ hideDSN: false });
  await using client = await connectVerified(server);
  await client.send({ raw, envelope: { from: "a@example.com", to: ["b@example.com"] } }, {
    dsn: { ret: "HDRS", envid: "id+42", notify: ["SUCCESS", "FAILURE"], orcpt: true },
  });
  const got = server.received[0]!;
  assert.equal(got.mailArgs.RET, "HDRS");
  assert.equal(got.mailArgs.ENVID, "id+42"); // the server decodes our xtext
  assert.equal(got.rcptArgs[0]!.NOTIFY, "SUCCESS,FAILURE");
  assert.equal(got.rcptArgs[0]!.ORCPT, "rfc822;b@example.com");
});

test("send() with requireTls sends REQUIRETLS, and refuses when it is not offered", async () => {
  await using server = await startSmtpServer({ hideREQUIRETLS: false });
  {
    await using client = await connectVerified(server);
    await client.send({ raw, envelope }, { requireTls: true });
    assert.equal(server.received[0]!.mailArgs.REQUIRETLS, true);
  }
  await using plainServer = await startSmtpServer({ hideSTARTTLS: true });
  await using client = await SmtpClient.connect(plain(plainServer.port));
  await assert.rejects(
    client.send({ raw, envelope }, { requireTls: true }),
    (error: unknown) => error instanceof SmtpUnsupportedError && error.extension === "REQUIRETLS",
  );
});

test("send() refuses bad DSN options before the network", async () => {
  await using server = await startSmtpServer();
  await using client = await connectVerified(server);
  assert.throws(() => client.send({ raw, envelope }, { dsn: { envid: "a\r\nRCPT" } }), TypeError);
  assert.throws(
    () => client.send({ raw, envelope }, { dsn: { notify: ["NEVER", "SUCCESS"] as never } }),
    TypeError,
  );
});

test("100 messages over one connection", async () => {
  let connections = 0;
  await using server = await startSmtpServer({
    onConnect(_session, callback) {
      connections++;
      callback();
    },
  });
  await using client = await connectVerified(server);
  for (let i = 0; i < 100; i++) {
    await client.send({
      raw: raw + `n=${i}\r\n`,
      envelope: { from: "a@example.com", to: ["b@example.com"] },
    });
  }
  assert.equal(server.received.length, 100);
  assert.equal(connections, 1);
});

test("concurrent send() calls are queued, never interleaved", async () => {
  await using server = await startSmtpServer();
  await using client = await connectVerified(server);
  const results = await Promise.all(
    Array.from(
      { length: 20 },
      (_, i) =>
        client.send({
          raw: raw + `n=${i}\r\n`,
          envelope: { from: "a@example.com", to: [`r${i}@example.com`] },
        }),
    ),
  );
  assert.equal(results.length, 20);
  assert.deepEqual(
    server.received.map((m) => m.to[0]),
    Array.from({ length: 20 }, (_, i) => `r${i}@example.com`),
  );
  for (const [i, m] of server.received.entries()) assert.match(m.text, new RegExp(`n=${i}\\r\\n$`));
});

test("send() reconnects when the server closed an idle connection", async () => {
  await using server = startScriptedServer(async (conn, index) => {
    await greet(conn, ["PIPELINING"]);
    if (index === 0) {
      await serveTransaction(conn, 1);
      conn.close(); // idle timeout on the server side
      return;
    }
    await serveTransaction(conn, 1);
    await conn.waitForClose();
  });
  await using client = await SmtpClient.connect(plain(server.port));
  await client.send({ raw, envelope });
  await new Promise((r) => setTimeout(r, 50));
  const second = await client.send({ raw, envelope });
  assert.equal(second.reply.code, 250);
  assert.equal(server.connections.length, 2);
});

/** A server whose first connection answers MAIL with 421; later ones take the message. */
function startServerClosingFirstConnection() {
  const state = { received: "" };
  const server = startScriptedServer(async (conn, index) => {
    await greet(conn, ["PIPELINING"]);
    if (index === 0) {
      await expectLine(conn, "MAIL");
      await conn.send("421 4.3.2 Shutting down\r\n");
      return;
    }
    state.received = (await serveTransaction(conn, 1)) ?? "";
    await conn.waitForClose();
  });
  return { server, state };
}

test("421 on MAIL: the message is sent again once on a fresh connection", async () => {
  const { server } = startServerClosingFirstConnection();
  await using _ = server;
  await using client = await SmtpClient.connect(plain(server.port));
  const result = await client.send({
    raw,
    envelope: { from: "a@example.com", to: ["b@example.com"] },
  });
  assert.equal(result.reply.code, 250);
  assert.equal(server.connections.length, 2);
});

test("421 on MAIL: an unread stream body is sent whole on the fresh connection", async () => {
  const { server, state } = startServerClosingFirstConnection();
  await using _ = server;
  await using client = await SmtpClient.connect(plain(server.port));
  const bytes = new TextEncoder().encode(raw);
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes.subarray(0, 10));
      controller.enqueue(bytes.subarray(10));
      controller.close();
    },
  });
  const result = await client.send({
    raw: stream,
    envelope: { from: "a@example.com", to: ["b@example.com"] },
  });
  assert.equal(result.reply.code, 250);
  assert.equal(server.connections.length, 2);
  assert.equal(state.received, raw.slice(0, -2)); // readData() drops the CRLF before the dot
});

test("421 on MAIL: a composed message is composed again, file attachment included", async () => {
  const { server, state } = startServerClosingFirstConnection();
  await using _ = server;
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, "attached text");
    await using client = await SmtpClient.connect(plain(server.port));
    const result = await client.send({
      from: "a@example.com",
      to: "b@example.com",
      subject: "Retried",
      text: "Body",
      attachments: [{ filename: "note.txt", content: { path } }],
    });
    assert.equal(result.reply.code, 250);
  } finally {
    await Deno.remove(path);
  }
  assert.match(state.received, /Subject: Retried\r\n/);
  assert.match(state.received, /filename="?note\.txt"?/);
  assert.match(state.received, /YXR0YWNoZWQgdGV4dA==/);
});

test("421 after the data is an error and is not retried", async () => {
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, ["PIPELINING"]);
    await expectLine(conn, "MAIL");
    await expectLine(conn, "RCPT");
    await expectLine(conn, "DATA");
    await conn.send("250 OK\r\n250 OK\r\n354 Go\r\n");
    await conn.readData();
    await conn.send("421 4.3.0 Try again later\r\n");
  });
  await using client = await SmtpClient.connect(plain(server.port));
  await assert.rejects(
    client.send({ raw, envelope: { from: "a@example.com", to: ["b@example.com"] } }),
    (error: unknown) => error instanceof SmtpReplyError && error.code === 421 && error.temporary,
  );
  assert.equal(server.connections.length, 1);
  assert.equal(client.connected, false);
});
