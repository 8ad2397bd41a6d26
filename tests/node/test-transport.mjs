/**
 * The Node.js transport on its own (`src/transport/node.ts` as built into `npm/esm`): the
 * pull-style reads over an event-based socket, backpressure both ways, aborts, the STARTTLS
 * upgrade of an existing socket, client certificates and the file opener.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "node:test";
import * as tls from "node:tls";
import { setTimeout as delay } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { fixture, npmDir, startRawServer, testCa } from "./_helpers.cjs";

const load = (path) => import(pathToFileURL(join(npmDir, "esm", "src", path)).href);
const { nodeOpenFile, nodeTransport } = await load("transport/node.js");
const { SmtpConnectionError, SmtpProtocolError, SmtpTlsError } = await load("errors.js");

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const MiB = 1024 * 1024;

/** Reads until `text` has arrived (or the end); returns everything read. */
async function readUntil(connection, text) {
  let received = "";
  while (!received.includes(text)) {
    const chunk = await connection.read();
    if (chunk === null) break;
    received += decoder.decode(chunk);
  }
  return received;
}

test("read() returns queued data, then null at the end of the stream", async () => {
  const server = await startRawServer((socket) => socket.end("220 hello\r\n"));
  const connection = await nodeTransport.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    assert.equal(connection.localAddress, "127.0.0.1");
    await delay(50); // the data and the end arrive before anyone reads
    assert.equal(decoder.decode(await connection.read()), "220 hello\r\n");
    assert.equal(await connection.read(), null);
    assert.equal(connection.closed, true);
    assert.equal(await connection.read(), null);
    await assert.rejects(connection.write(encoder.encode("QUIT\r\n")), SmtpConnectionError);
  } finally {
    connection.close();
    await server.close();
  }
});

test("read() hands out plain Uint8Arrays, not Buffers", async () => {
  const server = await startRawServer((socket) => socket.write("220 hi\r\n"));
  const connection = await nodeTransport.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    const chunk = await connection.read();
    assert.equal(Object.getPrototypeOf(chunk), Uint8Array.prototype);
  } finally {
    connection.close();
    await server.close();
  }
});

test("a socket error is reported by the next read, then the connection is closed", async () => {
  const server = await startRawServer((socket) => {
    socket.write("220 hi\r\n");
    setTimeout(() => socket.resetAndDestroy(), 20);
  });
  const connection = await nodeTransport.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await delay(100);
    assert.equal(decoder.decode(await connection.read()), "220 hi\r\n");
    await assert.rejects(connection.read(), (error) => {
      assert.ok(error instanceof SmtpConnectionError, String(error));
      assert.match(error.message, /ECONNRESET/);
      return true;
    });
    assert.equal(connection.closed, true);
    assert.equal(await connection.read(), null);
  } finally {
    connection.close();
    await server.close();
  }
});

test("the socket pauses while more than 1 MiB waits unread, and resumes when drained", async () => {
  const total = 32 * MiB;
  const block = new Uint8Array(MiB);
  for (let i = 0; i < block.length; i++) block[i] = i % 251;
  let serverSocket;
  const server = await startRawServer((socket) => {
    serverSocket = socket;
    for (let sent = 0; sent < total; sent += block.length) socket.write(block);
  });
  const connection = await nodeTransport.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await delay(300);
    // Without backpressure the client would have drained the server's buffer completely.
    assert.ok(
      serverSocket.writableLength > 8 * MiB,
      `server still buffers ${serverSocket.writableLength} bytes`,
    );
    let received = 0;
    let mismatch = -1;
    while (received < total) {
      const chunk = await connection.read();
      assert.ok(chunk, "stream ended early");
      for (let i = 0; i < chunk.length && mismatch < 0; i++) {
        if (chunk[i] !== ((received + i) % MiB) % 251) mismatch = received + i;
      }
      received += chunk.length;
    }
    assert.equal(mismatch, -1, `byte ${mismatch} differs`);
    assert.equal(received, total);
  } finally {
    connection.close();
    await server.close();
  }
});

test("an abort during read() closes the connection and rejects with the reason", async () => {
  let closedByClient;
  const server = await startRawServer((socket) => {
    closedByClient = new Promise((resolve) => socket.on("close", resolve));
  });
  const connection = await nodeTransport.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    const controller = new AbortController();
    const reason = new Error("enough");
    const pending = connection.read(controller.signal);
    setTimeout(() => controller.abort(reason), 20);
    await assert.rejects(pending, (error) => error === reason);
    assert.equal(connection.closed, true);
    await closedByClient;
    assert.equal(await connection.read(), null);
  } finally {
    connection.close();
    await server.close();
  }
});

test("write() waits while the peer does not read, and an abort ends the wait", async () => {
  const server = await startRawServer((socket) => socket.pause());
  const connection = await nodeTransport.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await connection.write(encoder.encode("EHLO small\r\n"));
    const controller = new AbortController();
    const reason = new Error("too slow");
    let settled = false;
    const pending = connection.write(new Uint8Array(64 * MiB), controller.signal).finally(() => {
      settled = true;
    });
    await delay(200);
    assert.equal(settled, false, "a 64 MiB write to a peer that does not read must wait");
    controller.abort(reason);
    await assert.rejects(pending, (error) => error === reason);
    assert.equal(connection.closed, true);
    await assert.rejects(connection.write(encoder.encode("x")), SmtpConnectionError);
  } finally {
    connection.close();
    await server.close();
  }
});

test("writev() sends the chunks in order, as one write would send them joined", async () => {
  const received = [];
  let ended;
  const server = await startRawServer((socket) => {
    ended = new Promise((resolve) => socket.on("end", resolve));
    socket.on("data", (chunk) => received.push(chunk));
  });
  const connection = await nodeTransport.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    const chunks = [
      encoder.encode("BDAT 3000000 LAST\r\n"),
      new Uint8Array(MiB),
      new Uint8Array(2 * MiB - 1),
    ];
    chunks[1].fill(0x61);
    chunks[2].fill(0x62);
    await connection.writev(chunks);
    await connection.write(encoder.encode("."));
    connection.close();
    await ended;
    const all = Buffer.concat(received);
    assert.equal(all.length, chunks[0].length + 3 * MiB);
    assert.equal(all.subarray(0, chunks[0].length).toString(), "BDAT 3000000 LAST\r\n");
    const data = all.subarray(chunks[0].length);
    assert.equal(data.indexOf(0x62), MiB);
    assert.equal(data.lastIndexOf(0x61), MiB - 1);
    assert.equal(data.at(-1), 0x2e);
  } finally {
    connection.close();
    await server.close();
  }
});

test("writev() waits while the peer does not read, and an abort ends the wait", async () => {
  const server = await startRawServer((socket) => socket.pause());
  const connection = await nodeTransport.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    const controller = new AbortController();
    const reason = new Error("too slow");
    let settled = false;
    const chunks = [
      encoder.encode("BDAT 67108864\r\n"),
      new Uint8Array(32 * MiB),
      new Uint8Array(32 * MiB),
    ];
    const pending = connection.writev(chunks, controller.signal).finally(() => {
      settled = true;
    });
    await delay(200);
    assert.equal(settled, false, "64 MiB to a peer that does not read must wait");
    controller.abort(reason);
    await assert.rejects(pending, (error) => error === reason);
    assert.equal(connection.closed, true);
    await assert.rejects(connection.writev(chunks), SmtpConnectionError);
  } finally {
    connection.close();
    await server.close();
  }
});

test("a write pending when the peer resets rejects with SmtpConnectionError", async () => {
  let serverSocket;
  const server = await startRawServer((socket) => {
    serverSocket = socket;
    socket.pause();
  });
  const connection = await nodeTransport.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    const pending = connection.write(new Uint8Array(64 * MiB));
    await delay(100);
    serverSocket.resetAndDestroy();
    await assert.rejects(pending, SmtpConnectionError);
  } finally {
    connection.close();
    await server.close();
  }
});

test("connect() failures are SmtpConnectionErrors; an aborted signal wins", async () => {
  const server = await startRawServer(() => {});
  const port = server.port;
  await server.close();
  await assert.rejects(
    nodeTransport.connect({ hostname: "127.0.0.1", port }),
    (error) => error instanceof SmtpConnectionError && error.phase === "connect",
  );
  const reason = new Error("aborted before");
  await assert.rejects(
    nodeTransport.connect({ hostname: "127.0.0.1", port, signal: AbortSignal.abort(reason) }),
    (error) => error === reason,
  );
});

/** A server that says 220, then upgrades the same socket to TLS and answers `ping` with `pong`. */
function startTlsServer(onSecure = () => {}) {
  return startRawServer((socket) => {
    socket.write("220 ready\r\n");
    socket.once("data", () => {
      socket.write("220 go ahead\r\n");
      const secure = new tls.TLSSocket(socket, {
        isServer: true,
        key: fixture("server.key"),
        cert: fixture("server.pem"),
        requestCert: true,
        // Test server only: it records the client's certificate instead of checking it.
        rejectUnauthorized: false,
      });
      secure.on("error", () => {});
      secure.on("secure", () => onSecure(secure));
      secure.on("data", (data) => {
        if (String(data).startsWith("ping")) secure.write("pong\r\n");
      });
    });
  });
}

test("startTls() upgrades the same socket and reports the TLS details", async () => {
  const server = await startTlsServer();
  const plain = await nodeTransport.connect({ hostname: "localhost", port: server.port });
  let secure;
  try {
    assert.equal(await readUntil(plain, "\r\n"), "220 ready\r\n");
    await plain.write(encoder.encode("STARTTLS\r\n"));
    assert.equal(await readUntil(plain, "\r\n"), "220 go ahead\r\n");
    secure = await nodeTransport.startTls(plain, {
      serverName: "localhost",
      caCerts: [testCa],
    });
    assert.equal(plain.closed, true);
    assert.match(secure.tls.protocol, /^TLSv1\.[23]$/);
    assert.ok(secure.tls.cipher);
    assert.equal(secure.tls.peerSubject, "CN=localhost");
    await secure.write(encoder.encode("ping\r\n"));
    assert.equal(await readUntil(secure, "\r\n"), "pong\r\n");
  } finally {
    secure?.close();
    plain.close();
    await server.close();
  }
});

test("startTls() sends the client certificate", async () => {
  let peer;
  const server = await startTlsServer((socket) => {
    peer = socket.getPeerCertificate().subject?.CN;
  });
  const plain = await nodeTransport.connect({ hostname: "localhost", port: server.port });
  let secure;
  try {
    await readUntil(plain, "\r\n");
    await plain.write(encoder.encode("STARTTLS\r\n"));
    await readUntil(plain, "go ahead\r\n");
    secure = await nodeTransport.startTls(plain, {
      serverName: "localhost",
      caCerts: [testCa],
      clientCertificate: { cert: fixture("wronghost.pem"), key: fixture("wronghost.key") },
    });
    await secure.write(encoder.encode("ping\r\n"));
    await readUntil(secure, "\r\n");
    assert.equal(peer, "wrong.postie.test");
  } finally {
    secure?.close();
    plain.close();
    await server.close();
  }
});

test("startTls() refuses bytes that arrived after the STARTTLS reply", async () => {
  const server = await startRawServer((socket) => {
    socket.write("220 go ahead\r\n");
    setTimeout(() => socket.write("250 injected\r\n"), 30);
  });
  const plain = await nodeTransport.connect({ hostname: "localhost", port: server.port });
  try {
    assert.equal(await readUntil(plain, "\r\n"), "220 go ahead\r\n");
    await delay(100);
    await assert.rejects(
      nodeTransport.startTls(plain, { serverName: "localhost", caCerts: [testCa] }),
      (error) => error instanceof SmtpProtocolError && /injection/.test(error.message),
    );
  } finally {
    plain.close();
    await server.close();
  }
});

test("startTls() refuses a connection with a read pending", async () => {
  const server = await startRawServer(() => {});
  const plain = await nodeTransport.connect({ hostname: "localhost", port: server.port });
  try {
    const pending = plain.read();
    await assert.rejects(
      nodeTransport.startTls(plain, { serverName: "localhost", caCerts: [testCa] }),
      TypeError,
    );
    plain.close();
    assert.equal(await pending, null);
  } finally {
    plain.close();
    await server.close();
  }
});

test("connectTls() sends the client certificate and verifies the server", async () => {
  let peer;
  const server = await startRawServer((socket) => {
    peer = socket.getPeerCertificate().subject?.CN;
    socket.end("220 secure\r\n");
  }, {
    key: fixture("server.key"),
    cert: fixture("server.pem"),
    requestCert: true,
    // Test server only: it records the client's certificate instead of checking it.
    rejectUnauthorized: false,
  });
  try {
    const connection = await nodeTransport.connectTls({
      hostname: "127.0.0.1",
      port: server.port,
      serverName: "127.0.0.1",
      caCerts: [testCa],
      clientCertificate: { cert: fixture("wronghost.pem"), key: fixture("wronghost.key") },
    });
    assert.equal(await readUntil(connection, "\r\n"), "220 secure\r\n");
    connection.close();
    assert.equal(peer, "wrong.postie.test");
    await assert.rejects(
      nodeTransport.connectTls({
        hostname: "127.0.0.1",
        port: server.port,
        serverName: "127.0.0.1",
      }),
      (error) =>
        error instanceof SmtpTlsError && /UNABLE_TO_VERIFY_LEAF_SIGNATURE/.test(error.message),
    );
  } finally {
    await server.close();
  }
});

test("an abort during the TLS handshake rejects with the reason", async () => {
  const server = await startRawServer(() => {}); // accepts, never answers the ClientHello
  try {
    const signal = AbortSignal.timeout(50);
    await assert.rejects(
      nodeTransport.connectTls({
        hostname: "localhost",
        port: server.port,
        serverName: "localhost",
        signal,
      }),
      (error) => error === signal.reason && error.name === "TimeoutError",
    );
  } finally {
    await server.close();
  }
});

test("hostname() names this machine", () => {
  assert.equal(typeof nodeTransport.hostname(), "string");
});

/** Open file descriptors of this process that point at `path` (Linux), or undefined. */
function openDescriptors(path) {
  if (process.platform !== "linux") return undefined;
  return readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false;
    }
  }).length;
}

test("nodeOpenFile() streams a file and closes it at the end and on cancel", async () => {
  const dir = mkdtempSync(join(tmpdir(), "postie-node-"));
  try {
    const path = join(dir, "data.bin");
    const content = new Uint8Array(300_000);
    for (let i = 0; i < content.length; i++) content[i] = (i * 7) % 256;
    writeFileSync(path, content);

    const { stream, size } = await nodeOpenFile(path);
    assert.equal(size, content.length);
    const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
    assert.deepEqual(bytes, content);
    assert.equal(openDescriptors(path) ?? 0, 0);

    const reader = (await nodeOpenFile(path)).stream.getReader();
    const first = await reader.read();
    assert.equal(Object.getPrototypeOf(first.value), Uint8Array.prototype);
    if (openDescriptors(path) !== undefined) assert.equal(openDescriptors(path), 1);
    await reader.cancel();
    assert.equal(openDescriptors(path) ?? 0, 0);

    await assert.rejects(nodeOpenFile(join(dir, "missing")), { code: "ENOENT" });
    await assert.rejects(nodeOpenFile(dir), TypeError);
    assert.equal(openDescriptors(dir) ?? 0, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
