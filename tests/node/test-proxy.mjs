/**
 * `proxy` on Node.js, from the built package: SOCKS5 with username and password and HTTP CONNECT
 * (a CONNECT answer with the server's greeting pipelined behind it) through scripted proxies on
 * loopback, and, where the Debian packages are installed and this runs as root, through real
 * dante-server and tinyproxy instances started from a private folder; each carries STARTTLS and
 * implicit TLS to the mock server's loopback port, delivery checked. Refusals are typed errors.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { fixture, importTarget, testCa } from "./_helpers.cjs";

const postie = await import(pathToFileURL(importTarget(".")).href);
const { MockSmtpServer } = await import(pathToFileURL(importTarget("./testing")).href);
const certificate = { cert: fixture("server.pem"), key: fixture("server.key") };
const SECRET = "node-proxy-SECRET";

/** A loopback proxy running `script(socket, read)` per connection; `read(n)` reads exactly. */
async function scriptedProxy(script) {
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let buffer = Buffer.alloc(0);
    let waiting;
    socket.on("data", (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      waiting?.();
    });
    const read = async (n) => {
      while (buffer.length < n) await new Promise((resolve) => (waiting = resolve));
      const out = buffer.subarray(0, n);
      buffer = buffer.subarray(n);
      return out;
    };
    const relay = (port, first) => {
      const target = net.connect(port, "127.0.0.1");
      target.on("error", () => socket.destroy());
      socket.on("error", () => target.destroy());
      const start = () => {
        socket.removeAllListeners("data");
        if (buffer.length) target.write(buffer);
        socket.pipe(target);
        target.pipe(socket);
      };
      if (first) {
        target.once("data", (greeting) => {
          socket.write(Buffer.concat([Buffer.from(first), greeting]));
          start();
        });
      } else start();
    };
    script(socket, read, relay).catch(() => socket.destroy());
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: server.address().port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

async function deliverThrough(proxy, label, hostname = "localhost") {
  const server = new MockSmtpServer({ certificate });
  try {
    const starttls = (await server.listen()).port;
    const implicit = (await server.listen({ implicitTls: true })).port;
    for (const [tls, port] of [["starttls", starttls], ["implicit", implicit]]) {
      await postie.sendMail({
        hostname,
        port,
        tls,
        proxy,
        tlsOptions: { caCerts: [testCa], serverName: "localhost" },
      }, { from: "a@postie.test", to: "b@postie.test", subject: `${label} ${tls}`, text: "Hi" });
    }
    assert.deepEqual(
      server.messages.map((m) => m.headers.get("subject")),
      [`${label} starttls`, `${label} implicit`],
    );
    assert.ok(server.messages.every((m) => m.tls));
  } finally {
    await server.close();
  }
}

test("SOCKS5 with username and password through a scripted proxy carries both TLS modes", async () => {
  const ports = [];
  const proxy = await scriptedProxy(async (socket, read, relay) => {
    const [, count] = await read(2);
    await read(count);
    socket.write(Buffer.from([5, 2]));
    const [, ulen] = await read(2);
    const user = (await read(ulen)).toString();
    const [plen] = await read(1);
    const pass = (await read(plen)).toString();
    const ok = user === "ann" && pass === SECRET;
    socket.write(Buffer.from([1, ok ? 0 : 1]));
    if (!ok) return socket.end();
    const head = await read(4);
    const length = head[3] === 3 ? (await read(1))[0] : head[3] === 1 ? 4 : 16;
    await read(length);
    const port = (await read(2)).readUInt16BE(0);
    ports.push(port);
    socket.write(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 0]));
    relay(port);
  });
  try {
    await deliverThrough(`socks5h://ann:${SECRET}@127.0.0.1:${proxy.port}`, "socks5");
    assert.equal(ports.length, 2);
    await assert.rejects(
      postie.sendMail(
        {
          hostname: "localhost",
          port: 25,
          proxy: `socks5h://ann:x${SECRET}@127.0.0.1:${proxy.port}`,
        },
        { from: "a@postie.test", to: "b@postie.test", text: "x" },
      ),
      (error) =>
        error instanceof postie.SmtpConnectionError && error.phase === "connect" &&
        /refused the username and password/.test(error.message) && !error.message.includes(SECRET),
    );
  } finally {
    await proxy.close();
  }
});

test("HTTP CONNECT: a greeting pipelined behind the answer is kept for STARTTLS; 407 is typed", async () => {
  const server = new MockSmtpServer({ certificate });
  let status = "200 OK";
  const proxy = await scriptedProxy(async (socket, read, relay) => {
    let head = "";
    while (!head.endsWith("\r\n\r\n")) head += (await read(1)).toString("latin1");
    const port = Number(/^CONNECT localhost:(\d+) /.exec(head)[1]);
    if (status !== "200 OK") {
      return socket.end(`HTTP/1.1 ${status}\r\nContent-Length: 5\r\n\r\nnope!`);
    }
    relay(port, "HTTP/1.1 200 OK\r\n\r\n");
  });
  try {
    const { port } = await server.listen();
    await postie.sendMail(
      {
        hostname: "localhost",
        port,
        proxy: `http://127.0.0.1:${proxy.port}`,
        tlsOptions: { caCerts: [testCa] },
      },
      { from: "a@postie.test", to: "b@postie.test", subject: "pipelined", text: "Hi" },
    );
    assert.equal(server.messages[0].headers.get("subject"), "pipelined");
    status = "407 Proxy Authentication Required";
    await assert.rejects(
      postie.sendMail(
        { hostname: "localhost", port, proxy: `http://127.0.0.1:${proxy.port}` },
        { from: "a@postie.test", to: "b@postie.test", text: "x" },
      ),
      (error) =>
        error instanceof postie.SmtpConnectionError &&
        /HTTP 407 Proxy Authentication Required \(the proxy requires credentials/.test(
          error.message,
        ),
    );
  } finally {
    await proxy.close();
    await server.close();
  }
});

// --- real proxies from Debian packages ----------------------------------------------------------

const isRoot = process.getuid?.() === 0;

function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function listening(port, child) {
  for (let i = 0; i < 100 && child.exitCode === null; i++) {
    const ok = await new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (ok) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

/** Starts `command` with a config written to a private folder; `{ port, stop }` or `{ reason }`. */
async function startProxy(name, command, config, args) {
  if (!existsSync(command)) {
    return { reason: `${name} is not installed (tests/transport/proxy_setup.sh)` };
  }
  if (!isRoot) return { reason: `${name} is started as root here (it drops to nobody)` };
  const dir = mkdtempSync(join(tmpdir(), `postie-node-${name}-`));
  chmodSync(dir, 0o777);
  const port = await freePort();
  writeFileSync(join(dir, "proxy.conf"), config(dir, port));
  const child = spawn(command, args(dir), { stdio: "ignore" });
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  if (!await listening(port, child)) {
    let log = "";
    try {
      log = readFileSync(join(dir, "proxy.log"), "utf8").slice(-300);
    } catch { /* none */ }
    await stop();
    return { reason: `${name} did not start: ${log}` };
  }
  return { port, stop };
}

const dante = (method) =>
  startProxy("danted", "/usr/sbin/danted", (dir, port) =>
    [
      `logoutput: ${dir}/proxy.log`,
      `internal: 127.0.0.1 port = ${port}`,
      "external: 127.0.0.1",
      `socksmethod: ${method}`,
      "clientmethod: none",
      "user.privileged: root",
      "user.unprivileged: nobody",
      "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }",
      "socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 command: connect }",
      "",
    ].join("\n"), (dir) => ["-f", `${dir}/proxy.conf`, "-N", "1", "-p", `${dir}/proxy.pid`]);

const tinyproxy = (auth) =>
  startProxy("tinyproxy", "/usr/bin/tinyproxy", (dir, port) =>
    [
      "User nobody",
      "Group nogroup",
      `Port ${port}`,
      "Listen 127.0.0.1",
      "Allow 127.0.0.1",
      `LogFile "${dir}/proxy.log"`,
      ...(auth ? ["BasicAuth ann Tiny-pass9"] : []),
      "",
    ].join("\n"), (dir) => ["-d", "-c", `${dir}/proxy.conf`]);

const socksUser = spawnSync("id", ["postie-socks"]).status === 0;

for (
  const [what, starting, url, hostname] of [
    [
      "dante-server, no authentication, socks5",
      () => dante("none"),
      (p) => `socks5://127.0.0.1:${p}`,
      "127.0.0.1",
    ],
    [
      "dante-server, username and password, socks5h",
      () => socksUser ? dante("username") : { reason: "the system user postie-socks is missing" },
      (p) => `socks5h://postie-socks:Socks-pass7@127.0.0.1:${p}`,
      "localhost",
    ],
    ["tinyproxy, CONNECT", () => tinyproxy(false), (p) => `http://127.0.0.1:${p}`, "localhost"],
    [
      "tinyproxy, CONNECT with Basic authentication",
      () => tinyproxy(true),
      (p) => `http://ann:Tiny-pass9@127.0.0.1:${p}`,
      "localhost",
    ],
  ]
) {
  test(`real ${what}: STARTTLS and implicit TLS delivered`, async (t) => {
    const proxy = await starting();
    if (proxy.reason) {
      console.log(`PROXY SKIPPED (${what}): ${proxy.reason}`);
      t.skip(proxy.reason);
      return;
    }
    try {
      await deliverThrough(url(proxy.port), what, hostname);
    } finally {
      await proxy.stop();
    }
  });
}
