/**
 * End-to-end tests of the built package on Node.js, written once and run twice: by
 * `test-import.mjs` with the package loaded through `import`, and by `test-require.cjs` with it
 * loaded through `require`.
 *
 * To cover a new feature, add a `test(...)` below; `features` says which optional parts the
 * package has (e.g. `mime` for the `./mime` entry point).
 */
"use strict";

const assert = require("node:assert/strict");
const { mkdtempSync, rmSync, writeFileSync } = require("node:fs");
const { tmpdir } = require("node:os");
const { join } = require("node:path");
const { test } = require("node:test");
const {
  parseMail,
  startRawServer,
  startSmtpServer,
  testCa,
} = require("./_helpers.cjs");

const raw = "From: a@example.com\r\nTo: b@example.com\r\nSubject: Test\r\n\r\nHello\r\n.dot line\n";
const envelope = (to) => ({ from: "a@example.com", to });

/**
 * Registers the suite.
 *
 * @param {object} postie The package's main entry point, however it was loaded.
 * @param {object} features `{ label, mime }`: a name for the test titles, and the `./mime`
 *   entry point when the package has one.
 */
function defineSuite(postie, features) {
  const { SmtpClient, SmtpConnectionError, SmtpTlsError, sendMail } = postie;
  const name = (text) => `[${features.label}] ${text}`;
  /** Connects to the local server over STARTTLS, trusting the test CA. */
  const connect = (port, options = {}) =>
    SmtpClient.connect({
      hostname: "localhost",
      port,
      tls: "starttls",
      tlsOptions: { caCerts: [testCa] },
      ...options,
    });

  test(name("the package exports the client, sendMail and every error class"), () => {
    assert.equal(typeof SmtpClient.connect, "function");
    assert.equal(typeof sendMail, "function");
    for (
      const error of [
        "SmtpError",
        "SmtpReplyError",
        "SmtpAuthError",
        "SmtpRecipientsError",
        "SmtpConnectionError",
        "SmtpTlsError",
        "SmtpTimeoutError",
        "SmtpProtocolError",
        "SmtpUnsupportedError",
      ]
    ) {
      assert.ok(postie[error].prototype instanceof Error, error);
    }
  });

  test(name("send() over STARTTLS delivers the message with dot lines intact"), async () => {
    const server = await startSmtpServer();
    const transcript = [];
    const client = await connect(server.port, { onTranscript: (e) => transcript.push(e) });
    try {
      assert.match(client.tls.protocol, /^TLSv1\.[23]$/);
      assert.ok(client.tls.cipher);
      assert.equal(client.tls.peerSubject, "CN=localhost");
      const result = await client.send({ raw, envelope: envelope(["b@example.com"]) });
      assert.equal(result.reply.code, 250);
      assert.deepEqual(result.accepted.map((r) => r.address), ["b@example.com"]);
      assert.equal(server.received.length, 1);
      assert.equal(server.received[0].secure, true);
      assert.match(server.received[0].text, /\r\nHello\r\n\.dot line\r\n$/);
      assert.ok(transcript.some((e) => e.direction === "client" && e.line === "STARTTLS"));
      assert.ok(transcript.some((e) => e.direction === "info" && /TLSv1\.[23]/.test(e.line)));
    } finally {
      await client.quit();
      await server.close();
    }
    assert.equal(client.connected, false);
  });

  test(name("send() over implicit TLS"), async () => {
    const server = await startSmtpServer({ secure: true });
    const client = await connect(server.port, { tls: "implicit" });
    try {
      await client.send({ raw, envelope: envelope(["b@example.com"]) });
      assert.equal(server.received[0].secure, true);
    } finally {
      await client.quit();
      await server.close();
    }
  });

  test(name("send() in plain mode when asked for by name"), async () => {
    const server = await startSmtpServer({ hideSTARTTLS: true });
    const client = await SmtpClient.connect({
      hostname: "127.0.0.1",
      port: server.port,
      tls: "none",
    });
    try {
      assert.equal(client.tls, undefined);
      await client.send({ raw, envelope: envelope(["b@example.com"]) });
      assert.equal(server.received[0].secure, false);
    } finally {
      await client.quit();
      await server.close();
    }
  });

  test(name("STARTTLS required but not offered: fails before any MAIL"), async () => {
    const server = await startSmtpServer({ hideSTARTTLS: true, recordChunks: true });
    try {
      await assert.rejects(
        connect(server.port),
        (error) => error instanceof postie.SmtpUnsupportedError && error.extension === "STARTTLS",
      );
      assert.doesNotMatch(server.chunks.join(""), /MAIL|AUTH/);
    } finally {
      await server.close();
    }
  });

  const failures = [
    ["unknown-ca", "a certificate signed by an unknown CA", /not signed by a trusted CA/],
    ["wronghost", "a certificate for another host name", /not valid for "localhost"/],
    ["expired", "an expired certificate", /expired/],
    ["selfsigned", "a self-signed certificate", /self-signed/i],
  ];
  for (const tls of ["starttls", "implicit"]) {
    for (const [certName, description, pattern] of failures) {
      test(name(`tls "${tls}" fails with SmtpTlsError on ${description}`), async () => {
        const server = await startSmtpServer({ certName, secure: tls === "implicit" });
        try {
          await assert.rejects(connect(server.port, { tls }), (error) => {
            assert.ok(error instanceof SmtpTlsError, String(error));
            assert.equal(error.phase, "tls");
            assert.match(error.message, pattern);
            return true;
          });
          assert.equal(server.received.length, 0);
        } finally {
          await server.close();
        }
      });
    }
  }

  test(name("without the test CA the server's certificate is refused"), async () => {
    const server = await startSmtpServer({ secure: true });
    try {
      await assert.rejects(
        SmtpClient.connect({ hostname: "localhost", port: server.port, tls: "implicit" }),
        SmtpTlsError,
      );
    } finally {
      await server.close();
    }
  });

  test(name("an IP address is verified against the certificate's IP names"), async () => {
    const server = await startSmtpServer();
    try {
      const byIp = await connect(server.port, { hostname: "127.0.0.1" });
      await byIp.quit();
      const byName = await connect(server.port, {
        hostname: "127.0.0.1",
        tlsOptions: { caCerts: [testCa], serverName: "mail.postie.test" },
      });
      await byName.quit();
      await assert.rejects(
        connect(server.port, {
          hostname: "127.0.0.1",
          tlsOptions: { caCerts: [testCa], serverName: "other.postie.test" },
        }),
        (error) => error instanceof SmtpTlsError && /not valid for/.test(error.message),
      );
    } finally {
      await server.close();
    }
  });

  test(name("send() pipelines MAIL, every RCPT and DATA in one write"), async () => {
    const server = await startSmtpServer({ hideSTARTTLS: true, recordChunks: true });
    const client = await SmtpClient.connect({
      hostname: "127.0.0.1",
      port: server.port,
      tls: "none",
    });
    try {
      assert.ok(client.capabilities.has("PIPELINING"));
      await client.send({ raw, envelope: envelope(["b@example.com", "c@example.com"]) });
      const envelopeChunk = server.chunks.find((chunk) => chunk.startsWith("MAIL FROM:"));
      assert.match(
        envelopeChunk,
        /^MAIL FROM:<a@example\.com>[^\r]*\r\nRCPT TO:<b@example\.com>\r\nRCPT TO:<c@example\.com>\r\nDATA\r\n$/,
      );
      assert.deepEqual(server.received[0].to, ["b@example.com", "c@example.com"]);
    } finally {
      await client.quit();
      await server.close();
    }
  });

  test(name("send() reports each rejected recipient with its codes"), async () => {
    const server = await startSmtpServer({ rejectRecipients: ["nobody@example.com"] });
    const client = await connect(server.port);
    try {
      const result = await client.send({
        raw,
        envelope: envelope(["b@example.com", "nobody@example.com"]),
      });
      assert.deepEqual(result.accepted.map((r) => r.address), ["b@example.com"]);
      assert.equal(result.rejected[0].address, "nobody@example.com");
      assert.equal(result.rejected[0].reply.code, 550);
      assert.deepEqual(result.rejected[0].reply.enhancedStatus, {
        class: 5,
        subject: 1,
        detail: 1,
      });
      assert.deepEqual(server.received[0].to, ["b@example.com"]);
      await assert.rejects(
        client.send({ raw, envelope: envelope(["nobody@example.com"]) }),
        postie.SmtpRecipientsError,
      );
      assert.equal(server.received.length, 1);
    } finally {
      await client.quit();
      await server.close();
    }
  });

  test(name("send() streams a raw message given as a ReadableStream"), async () => {
    const server = await startSmtpServer();
    const client = await connect(server.port);
    const encoder = new TextEncoder();
    const line = "x".repeat(76) + "\r\n";
    let chunks = 0;
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(encoder.encode("Subject: stream\r\n\r\n"));
      },
      pull(controller) {
        if (++chunks > 64) return controller.close();
        controller.enqueue(encoder.encode(line.repeat(100)));
      },
    });
    try {
      await client.send({ raw: body, envelope: envelope(["b@example.com"]) });
      assert.equal(server.received[0].raw.length, 19 + 64 * 100 * line.length);
    } finally {
      await client.quit();
      await server.close();
    }
  });

  test(name("sendMail() connects, sends and quits"), async () => {
    const server = await startSmtpServer();
    try {
      const result = await sendMail(
        { hostname: "localhost", port: server.port, tlsOptions: { caCerts: [testCa] } },
        { raw: new TextEncoder().encode(raw), envelope: envelope(["b@example.com"]) },
      );
      assert.equal(result.accepted.length, 1);
      assert.equal(server.received.length, 1);
    } finally {
      await server.close();
    }
  });

  test(name("sendMail() sends a nodemailer message object unchanged"), async () => {
    const { Buffer } = require("node:buffer");
    const { Readable } = require("node:stream");
    const server = await startSmtpServer();
    const dir = mkdtempSync(join(tmpdir(), "postie-"));
    try {
      writeFileSync(join(dir, "report.csv"), "a,b\n1,2\n");
      await sendMail(
        { hostname: "localhost", port: server.port, tlsOptions: { caCerts: [testCa] } },
        {
          from: { name: "Zoë", address: "zoe@example.com" },
          to: [{ name: "Bob", address: "bob@example.com" }],
          subject: "Report",
          text: Buffer.from("See attached"),
          attachments: [
            { filename: "report.csv", path: join(dir, "report.csv") },
            { filename: "stream.txt", content: Readable.from([Buffer.from("streamed")]) },
            { filename: "data.bin", content: "AAEC", encoding: "base64" },
          ],
        },
      );
      const mail = await parseMail(server.received[0].raw);
      assert.equal(mail.text.trim(), "See attached");
      assert.deepEqual(
        mail.attachments.map((a) => [a.filename, Buffer.from(a.content).toString("hex")]),
        [
          ["report.csv", Buffer.from("a,b\n1,2\n").toString("hex")],
          ["stream.txt", Buffer.from("streamed").toString("hex")],
          ["data.bin", "000102"],
        ],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await server.close();
    }
  });

  test(name("sendMail() refuses a message it cannot send before connecting"), async () => {
    // Nothing listens on port 9: a connection attempt would fail with SmtpConnectionError.
    const options = { hostname: "127.0.0.1", port: 9, tls: "none" };
    const from = "a@example.com";
    const cases = [
      [{ from, subject: "no recipient" }, /no recipient/],
      [{ from, too: "b@example.com" }, /did you mean "to"\?/],
      [{ from, to: "b@example.com", attachments: [{ path: "/nonexistent.pdf" }] }, /Cannot read/],
    ];
    for (const [message, expected] of cases) {
      await assert.rejects(sendMail(options, message), (error) => {
        assert.ok(error instanceof TypeError, String(error));
        assert.match(error.message, expected);
        return true;
      });
    }
  });

  test(name("a refused connection is an SmtpConnectionError in the connect phase"), async () => {
    const server = await startRawServer(() => {});
    const port = server.port;
    await server.close();
    await assert.rejects(
      SmtpClient.connect({ hostname: "127.0.0.1", port, tls: "none" }),
      (error) => error instanceof SmtpConnectionError && error.phase === "connect",
    );
  });

  test(name("an abort while waiting for the greeting rejects with the reason"), async () => {
    const server = await startRawServer(() => {});
    const controller = new AbortController();
    const reason = new Error("stop");
    setTimeout(() => controller.abort(reason), 50);
    try {
      await assert.rejects(
        SmtpClient.connect({ hostname: "127.0.0.1", port: server.port, tls: "none" }, {
          signal: controller.signal,
        }),
        (error) => error === reason,
      );
    } finally {
      await server.close();
    }
  });

  test(name("a server that never greets times out"), async () => {
    const server = await startRawServer(() => {});
    try {
      await assert.rejects(
        SmtpClient.connect({
          hostname: "127.0.0.1",
          port: server.port,
          tls: "starttls",
          timeouts: { greetingMs: 100 },
        }),
        (error) => error instanceof postie.SmtpTimeoutError && error.phase === "greeting",
      );
    } finally {
      await server.close();
    }
  });

  test(name("implicit TLS against a clear-text server fails naming starttls"), async () => {
    const server = await startRawServer((socket) => socket.write("220 plain.test ESMTP\r\n"));
    try {
      await assert.rejects(
        SmtpClient.connect({ hostname: "localhost", port: server.port, tls: "implicit" }),
        (error) => error instanceof SmtpTlsError && /tls: "starttls"/.test(error.message),
      );
    } finally {
      await server.close();
    }
  });

  test(
    name("AUTH PLAIN over STARTTLS with an attachment from a file, parsed by mailparser"),
    async () => {
      const server = await startSmtpServer({ users: { alice: "secret" } });
      const dir = mkdtempSync(join(tmpdir(), "postie-node-"));
      const path = join(dir, "report.csv");
      const csv = "a,b\r\n1,2\r\n" + "x".repeat(100_000);
      writeFileSync(path, csv);
      let client;
      try {
        client = await connect(server.port, {
          auth: { username: "alice", password: "secret", mechanisms: ["PLAIN"] },
        });
        await client.send({
          from: "Alice <alice@example.com>",
          to: "bob@example.com",
          subject: "Report – März",
          text: "See attached.",
          attachments: [
            { content: { path } },
            { filename: "hello.txt", content: "Grüße" },
          ],
        });
        const received = server.received[0];
        assert.equal(received.user, "alice");
        assert.equal(received.secure, true);
        const mail = await parseMail(received.raw);
        assert.equal(mail.subject, "Report – März");
        assert.equal(mail.text.trim(), "See attached.");
        assert.equal(mail.attachments.length, 2);
        assert.equal(mail.attachments[0].filename, "report.csv");
        assert.equal(mail.attachments[0].content.toString("utf8"), csv);
        assert.equal(mail.attachments[1].content.toString("utf8"), "Grüße");
      } finally {
        await client?.quit();
        await server.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  test(
    name("SmtpPool sends over at most maxConnections STARTTLS connections with AUTH"),
    async () => {
      let connections = 0;
      const server = await startSmtpServer({
        users: { alice: "secret" },
        onConnect: (_session, callback) => (connections++, callback()),
      });
      const pool = new postie.SmtpPool({
        hostname: "localhost",
        port: server.port,
        tls: "starttls",
        tlsOptions: { caCerts: [testCa] },
        auth: { username: "alice", password: "secret" },
        maxConnections: 2,
      });
      try {
        const results = await Promise.all(
          [1, 2, 3, 4, 5].map((i) => pool.send({ raw, envelope: envelope([`r${i}@example.com`]) })),
        );
        assert.deepEqual(
          results.map((r) => r.accepted.map((a) => a.address)),
          [1, 2, 3, 4, 5].map((i) => [`r${i}@example.com`]),
        );
        assert.equal(server.received.length, 5);
        assert.ok(server.received.every((r) => r.secure && r.user === "alice"));
        assert.ok(connections >= 1 && connections <= 2, `${connections} connections`);
      } finally {
        await pool.close();
        await server.close();
      }
      assert.equal(pool.stats.connections, 0, "close() closed every connection");
    },
  );

  for (const mechanism of ["LOGIN", "CRAM-MD5"]) {
    test(name(`AUTH ${mechanism} logs in; a wrong password is an SmtpAuthError`), async () => {
      const server = await startSmtpServer({ users: { alice: "secret" } });
      try {
        const client = await connect(server.port, {
          auth: { username: "alice", password: "secret", mechanisms: [mechanism] },
        });
        await client.send({ raw, envelope: envelope(["b@example.com"]) });
        await client.quit();
        assert.equal(server.received[0].user, "alice");
        await assert.rejects(
          connect(server.port, {
            auth: { username: "alice", password: "wrong", mechanisms: [mechanism] },
          }),
          (error) => error instanceof postie.SmtpAuthError && error.phase === "auth",
        );
      } finally {
        await server.close();
      }
    });
  }

  if (features.mime) {
    test(name("a composed message round-trips through mailparser"), async () => {
      const server = await startSmtpServer();
      const client = await connect(server.port);
      try {
        const result = await client.send({
          from: { name: "Zoë", address: "zoe@example.com" },
          to: ["bob@example.com", "carol@example.com"],
          subject: "Héllo, wörld",
          text: "Plain text ✓",
          html: "<p>HTML ✓</p>",
          attachments: [{ filename: "data.bin", content: new Uint8Array([0, 1, 2, 255]) }],
        });
        assert.equal(result.accepted.length, 2);
        assert.deepEqual(server.received[0].to, ["bob@example.com", "carol@example.com"]);
        const mail = await parseMail(server.received[0].raw);
        assert.equal(mail.from.value[0].name, "Zoë");
        assert.equal(mail.subject, "Héllo, wörld");
        assert.equal(mail.text.trim(), "Plain text ✓");
        assert.match(mail.html, /HTML ✓/);
        assert.deepEqual([...mail.attachments[0].content], [0, 1, 2, 255]);
        if (result.messageId) assert.equal(mail.messageId, result.messageId);
      } finally {
        await client.quit();
        await server.close();
      }
    });

    test(name("the ./mime entry point composes without sending"), async () => {
      const composed = await features.mime.composeMessage({
        from: "a@example.com",
        to: "b@example.com",
        subject: "Hi",
        text: "Hello",
      });
      assert.deepEqual(composed.envelope, { from: "a@example.com", to: ["b@example.com"] });
      const text = await new Response(composed.body).text();
      const mail = await parseMail(text);
      assert.equal(mail.text.trim(), "Hello");
    });
  }
}

module.exports = { defineSuite };
