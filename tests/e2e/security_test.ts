import assert from "node:assert/strict";
import {
  SmtpClient,
  SmtpConnectionError,
  SmtpProtocolError,
  SmtpTimeoutError,
  SmtpTlsError,
  SmtpUnsupportedError,
} from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { type CertName, fixture, startSmtpServer, testCa } from "../_helpers/smtp_server.ts";
import {
  acceptEnvelope,
  expectLine,
  greet,
  startScriptedServer,
} from "../_helpers/scripted_server.ts";

for (const tls of ["starttls", "implicit"] as const) {
  const cases: [CertName, string, RegExp][] = [
    ["unknown-ca", "a certificate signed by an unknown CA", /not signed by a trusted CA/],
    ["wronghost", "a certificate for another host name", /not valid for "localhost"/],
    ["expired", "an expired certificate", /expired/],
    ["selfsigned", "a self-signed certificate", /self-signed/i],
  ];
  for (const [certName, description, pattern] of cases) {
    test(`connect() with tls "${tls}" fails with SmtpTlsError on ${description}`, async () => {
      await using server = await startSmtpServer({ certName, secure: tls === "implicit" });
      await assert.rejects(
        SmtpClient.connect({
          hostname: "localhost",
          port: server.port,
          tls,
          tlsOptions: { caCerts: [testCa] },
        }),
        (error: unknown) => {
          assert.ok(error instanceof SmtpTlsError, String(error));
          assert.match(String(error.message), pattern);
          return true;
        },
      );
      assert.equal(server.received.length, 0);
    });
  }
}

test("connect() without the test CA rejects the server's certificate", async () => {
  await using server = await startSmtpServer({ secure: true });
  await assert.rejects(
    SmtpClient.connect({ hostname: "localhost", port: server.port, tls: "implicit" }),
    SmtpTlsError,
  );
});

test("connect() to an IP address verifies the given serverName", async () => {
  await using server = await startSmtpServer();
  await using client = await SmtpClient.connect({
    hostname: "127.0.0.1",
    port: server.port,
    tlsOptions: { caCerts: [testCa], serverName: "mail.postie.test" },
  });
  assert.ok(client.tls);
  await assert.rejects(
    SmtpClient.connect({
      hostname: "127.0.0.1",
      port: server.port,
      tlsOptions: { caCerts: [testCa], serverName: "other.postie.test" },
    }),
    SmtpTlsError,
  );
});

test("STARTTLS required but not offered: fails before any MAIL", async () => {
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, ["PIPELINING", "AUTH PLAIN"]);
    await expectLine(conn, "QUIT").catch(() => {});
  });
  await assert.rejects(
    SmtpClient.connect({ hostname: "127.0.0.1", port: server.port, tls: "starttls" }),
    (error: unknown) => error instanceof SmtpUnsupportedError && error.extension === "STARTTLS",
  );
  await server.close();
  assert.doesNotMatch(server.connections[0]!.received, /MAIL|AUTH/);
});

test("STARTTLS response injection: bytes before the handshake abort the session", async () => {
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, ["STARTTLS"]);
    await expectLine(conn, "STARTTLS");
    await conn.send("220 Go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n");
    await conn.waitForClose();
  });
  await assert.rejects(
    SmtpClient.connect({ hostname: "127.0.0.1", port: server.port, tls: "starttls" }),
    (error: unknown) => error instanceof SmtpProtocolError && /injection/.test(error.message),
  );
  await server.close();
  assert.doesNotMatch(server.connections[0]!.received, /MAIL|AUTH|EHLO[^\n]*\r\nEHLO/);
});

test("a server that never greets times out with a hint about implicit TLS", async () => {
  await using server = startScriptedServer((conn) => conn.waitForClose());
  await assert.rejects(
    SmtpClient.connect({
      hostname: "127.0.0.1",
      port: server.port,
      tls: "starttls",
      timeouts: { greetingMs: 200 },
    }),
    (error: unknown) => {
      assert.ok(error instanceof SmtpTimeoutError, String(error));
      assert.equal(error.phase, "greeting");
      assert.match(error.message, /tls: "implicit"/);
      return true;
    },
  );
});

test("implicit TLS against a clear-text server fails fast naming starttls", async () => {
  await using server = startScriptedServer(async (conn) => {
    await conn.send("220 plain.test ESMTP\r\n");
    await conn.waitForClose();
  });
  const started = Date.now();
  await assert.rejects(
    SmtpClient.connect({ hostname: "localhost", port: server.port, tls: "implicit" }),
    (error: unknown) => {
      assert.ok(error instanceof SmtpTlsError, String(error));
      assert.match(error.message, /tls: "starttls"/);
      return true;
    },
  );
  assert.ok(Date.now() - started < 5000);
});

test("a drop in the middle of DATA rejects with a connection error", async () => {
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, []);
    await acceptEnvelope(conn, "MAIL FROM:<a@example.com>", ["RCPT TO:<b@example.com>"]);
    await conn.send("354 Go\r\n");
    await conn.readLine();
    conn.close();
  });
  await using client = await SmtpClient.connect({
    hostname: "127.0.0.1",
    port: server.port,
    tls: "none",
  });
  let chunks = 0;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode("Subject: x\r\n\r\nfirst part\r\n"));
    },
    pull(controller) {
      if (++chunks > 256) return controller.close();
      controller.enqueue(new Uint8Array(256 * 1024).fill(0x41));
    },
  });
  await assert.rejects(
    client.send({ raw: body, envelope: { from: "a@example.com", to: ["b@example.com"] } }),
    (error: unknown) => error instanceof SmtpConnectionError && error.phase === "data",
  );
  assert.equal(client.connected, false);
});

test("a drop right after the final dot reports that the outcome is unknown", async () => {
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, []);
    await expectLine(conn, "MAIL");
    await conn.send("250 OK\r\n");
    await expectLine(conn, "RCPT");
    await conn.send("250 OK\r\n");
    await expectLine(conn, "DATA");
    await conn.send("354 Go\r\n");
    await conn.readData();
    conn.close();
  });
  await using client = await SmtpClient.connect({
    hostname: "127.0.0.1",
    port: server.port,
    tls: "none",
  });
  await assert.rejects(
    client.send({
      raw: "Subject: x\r\n\r\nhi\r\n",
      envelope: { from: "a@example.com", to: ["b@example.com"] },
    }),
    (error: unknown) => error instanceof SmtpConnectionError && error.outcomeUnknown,
  );
});

test("fixture certificates are readable", () => {
  assert.match(fixture("server.pem"), /BEGIN CERTIFICATE/);
});

test("connect() with implicit TLS presents tlsOptions.clientCertificate to the server", async () => {
  let peerSubject: string | undefined;
  await using server = await startSmtpServer({
    secure: true,
    requestCert: true,
    ca: [testCa],
    onSecure(socket, _session, callback) {
      const peer = (socket as unknown as { getPeerCertificate(): { subject?: { CN?: string } } })
        .getPeerCertificate();
      peerSubject = peer.subject?.CN;
      callback();
    },
  });
  await using client = await SmtpClient.connect({
    hostname: "localhost",
    port: server.port,
    tls: "implicit",
    tlsOptions: {
      caCerts: [testCa],
      clientCertificate: { cert: fixture("server.pem"), key: fixture("server.key") },
    },
  });
  await client.noop();
  assert.equal(peerSubject, "localhost");
});

test("connect() with STARTTLS and a client certificate fails clearly on Deno", async () => {
  await using server = await startSmtpServer({});
  await assert.rejects(
    SmtpClient.connect({
      hostname: "localhost",
      port: server.port,
      tls: "starttls",
      tlsOptions: {
        caCerts: [testCa],
        clientCertificate: { cert: fixture("server.pem"), key: fixture("server.key") },
      },
    }),
    (error: unknown) => {
      assert.ok(error instanceof SmtpTlsError, String(error));
      assert.match(error.message, /client certificate after STARTTLS/);
      return true;
    },
  );
});

test("a client certificate with serverName unlike the host is refused clearly on Deno", async () => {
  await using server = await startSmtpServer({ secure: true });
  await assert.rejects(
    SmtpClient.connect({
      hostname: "127.0.0.1",
      port: server.port,
      tls: "implicit",
      tlsOptions: {
        caCerts: [testCa],
        serverName: "localhost",
        clientCertificate: { cert: fixture("server.pem"), key: fixture("server.key") },
      },
    }),
    (error: unknown) => {
      assert.ok(error instanceof SmtpTlsError, String(error));
      assert.match(error.message, /connect by that name, or run on Node/);
      return true;
    },
  );
  assert.equal(server.received.length, 0);
});
