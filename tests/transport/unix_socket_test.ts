/**
 * `path`: a session over a Unix domain socket (a loopback relay from a socket in a private
 * folder to the mock server's TCP port), the errors where it cannot work on Deno (TLS over the
 * socket), a missing socket, and the options that cannot go with it.
 */
import assert from "node:assert/strict";
import { sendMail, SmtpClient, SmtpConnectionError, SmtpUnsupportedError } from "../../mod.ts";
import { MockSmtpServer } from "../../src/testing/mod.ts";
import { test } from "../_helpers/test.ts";
import { fixture, testCa } from "../_helpers/smtp_server.ts";

const certificate = { cert: fixture("server.pem"), key: fixture("server.key") };
const raw = (subject: string) => ({
  raw: `From: a@example.com\r\nSubject: ${subject}\r\n\r\nHello\r\n`,
  envelope: { from: "a@example.com", to: ["b@example.com"] },
});

/** Listens on a Unix socket in a fresh folder and relays each connection to `port`. */
async function unixRelay(port: number) {
  const dir = await Deno.makeTempDir({ prefix: "postie-unix-" });
  const path = `${dir}/smtp.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const running: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      running.push((async () => {
        const target = await Deno.connect({ hostname: "127.0.0.1", port });
        const pump = async (from: Deno.Conn, to: Deno.Conn) => {
          try {
            const chunk = new Uint8Array(16384);
            while (true) {
              const n = await from.read(chunk);
              if (n === null) break;
              let offset = 0;
              while (offset < n) offset += await to.write(chunk.subarray(offset, n));
            }
          } catch { /* gone */ }
          try {
            to.closeWrite();
          } catch { /* closed */ }
        };
        await Promise.all([pump(conn, target), pump(target, conn)]);
        target.close();
        try {
          conn.close();
        } catch { /* closed */ }
      })());
    }
  })().catch(() => {});
  return {
    path,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      await Promise.all(running);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

test("path: a session over a Unix domain socket delivers the message", async () => {
  await using server = new MockSmtpServer();
  const { port } = await server.listen();
  await using relay = await unixRelay(port);
  const result = await sendMail(
    { hostname: "localhost", path: relay.path, tls: "none" },
    raw("over a Unix socket"),
  );
  assert.equal(result.accepted.length, 1);
  assert.equal(server.messages[0]!.headers.get("Subject"), "over a Unix socket");
  // The EHLO name falls back to an address literal: a Unix socket has no local IP address.
  await using client = await SmtpClient.connect({
    hostname: "localhost",
    path: relay.path,
    tls: "none",
  });
  await client.quit();
});

test("path: Deno cannot run STARTTLS or implicit TLS over a Unix socket, and says so", async () => {
  await using server = new MockSmtpServer({ certificate });
  const { port } = await server.listen();
  await using relay = await unixRelay(port);
  for (const tls of ["starttls", "implicit"] as const) {
    await assert.rejects(
      sendMail(
        { hostname: "localhost", path: relay.path, tls, tlsOptions: { caCerts: [testCa] } },
        raw("x"),
      ),
      (error: Error) =>
        error instanceof SmtpUnsupportedError &&
        /not possible on a Unix domain socket under Deno/.test(error.message),
    );
  }
  assert.equal(server.messages.length, 0);
});

test("path: a missing socket is a connection error naming it; bad combinations are TypeErrors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      sendMail({ hostname: "localhost", path: `${dir}/none.sock`, tls: "none" }, raw("x")),
      (error: Error) =>
        error instanceof SmtpConnectionError && error.phase === "connect" &&
        error.message.includes(`Cannot connect to ${dir}/none.sock`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  for (
    const options of [
      { hostname: "localhost", path: "" },
      { hostname: "localhost", path: "/a\0b" },
      { hostname: "localhost", path: "/tmp/s.sock", proxy: "socks5://127.0.0.1:1080" },
    ]
  ) {
    await assert.rejects(SmtpClient.connect(options), TypeError);
  }
});
