/**
 * `path` on Node.js, from the built package: sessions over a Unix domain socket (a relay from a
 * socket in a private folder to the mock server's TCP port), in clear and with STARTTLS (which
 * Node.js can run over a Unix socket), delivery checked; a missing socket is a connection error.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { fixture, importTarget, testCa } from "./_helpers.cjs";

const postie = await import(pathToFileURL(importTarget(".")).href);
const { MockSmtpServer } = await import(pathToFileURL(importTarget("./testing")).href);

async function unixRelay(port) {
  const dir = mkdtempSync(join(tmpdir(), "postie-node-unix-"));
  const path = join(dir, "smtp.sock");
  const sockets = new Set();
  const server = net.createServer((socket) => {
    const target = net.connect(port, "127.0.0.1");
    for (const s of [socket, target]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    socket.pipe(target);
    target.pipe(socket);
  });
  await new Promise((resolve) => server.listen(path, resolve));
  return {
    path,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test("path: a Unix domain socket carries a session in clear and with STARTTLS", async () => {
  const server = new MockSmtpServer({
    certificate: { cert: fixture("server.pem"), key: fixture("server.key") },
  });
  const { port } = await server.listen();
  const relay = await unixRelay(port);
  try {
    for (const tls of ["none", "starttls"]) {
      const result = await postie.sendMail(
        { hostname: "localhost", path: relay.path, tls, tlsOptions: { caCerts: [testCa] } },
        { from: "a@postie.test", to: "b@postie.test", subject: `unix ${tls}`, text: "Hi" },
      );
      assert.equal(result.accepted.length, 1);
    }
    assert.deepEqual(server.messages.map((m) => m.headers.get("subject")), [
      "unix none",
      "unix starttls",
    ]);
    assert.equal(server.messages[0].tls, undefined);
    assert.match(server.messages[1].tls.protocol, /^TLSv1\.[23]$/);
    await assert.rejects(
      postie.sendMail(
        { hostname: "localhost", path: `${relay.path}.missing`, tls: "none" },
        { from: "a@postie.test", to: "b@postie.test", text: "x" },
      ),
      (error) =>
        error instanceof postie.SmtpConnectionError &&
        error.message.includes(`Cannot connect to ${relay.path}.missing`),
    );
  } finally {
    await relay.close();
    await server.close();
  }
});
