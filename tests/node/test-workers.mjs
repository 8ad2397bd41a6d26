/**
 * The npm package in a Worker: `workerd` (npm `workerd`, found by the build: `POSTIE_WORKERD`)
 * loads the ES module build as it is, without a bundler, one module per file, with the
 * `nodejs_compat` flag that the package needs on Workers. A Worker imports the main entry and
 * `./workers`, and sends through `workersTransport` to an `smtp-server` on 127.0.0.1 over
 * STARTTLS and implicit TLS with AUTH and an attachment; the test CA is trusted through
 * workerd's network service. (tests/workers does the same from the Deno sources, bundled.)
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import process from "node:process";
import { after, before, test } from "node:test";
import { npmDir, parseMail, startSmtpServer, testCa } from "./_helpers.cjs";

const workerdPath = process.env.POSTIE_WORKERD;
const skip = workerdPath ? false : "POSTIE_WORKERD is not set (run through deno task build:npm)";
if (skip) console.log(`WORKERS SKIPPED: ${skip}`);

const worker = `
import { sendMail } from "./esm/mod.js";
import { workersTransport } from "./esm/src/transport/workers.js";

export default {
  async fetch(request, env) {
    const { port, tls } = await request.json();
    try {
      const result = await sendMail(
        {
          hostname: "localhost",
          port,
          tls,
          auth: { username: env.SMTP_USER, password: env.SMTP_PASS },
          transport: workersTransport,
        },
        {
          from: "app@example.com",
          to: "you@example.com",
          subject: "From the npm package on workerd (" + tls + ")",
          text: "Hello from a Worker",
          attachments: [{ filename: "data.bin", content: new Uint8Array([0, 1, 2, 255]) }],
        },
      );
      return Response.json({ accepted: result.accepted.map((r) => r.address) });
    } catch (error) {
      return Response.json({ error: error.name + ": " + error.message });
    }
  },
};
`;

/** A free loopback port for workerd to listen on. */
async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function* walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.name.endsWith(".js")) yield path;
  }
}

let dir;
let child;
let url;
const log = [];

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), "postie-workerd-npm-"));
  writeFileSync(join(dir, "worker.js"), worker);
  const modules = [`(name = "worker.js", esModule = embed "worker.js")`];
  for (const path of walk(join(npmDir, "esm"))) {
    const name = relative(npmDir, path).split("\\").join("/");
    const embed = relative(dir, path).split("\\").join("/");
    modules.push(`(name = ${JSON.stringify(name)}, esModule = embed ${JSON.stringify(embed)})`);
  }
  const port = await freePort();
  writeFileSync(
    join(dir, "config.capnp"),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "internet", network = (
      allow = ["local"],
      tlsOptions = (trustedCertificates = [${JSON.stringify(testCa)}]),
    )),
  ],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [${modules.join(",\n    ")}],
  bindings = [
    (name = "SMTP_USER", text = "alice"),
    (name = "SMTP_PASS", text = "s3cret"),
  ],
  compatibilityDate = "2025-09-15",
  compatibilityFlags = ["nodejs_compat"],
);
`,
  );
  child = spawn(workerdPath, ["serve", join(dir, "config.capnp")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderr.on("data", (chunk) => log.push(String(chunk)));
  url = `http://127.0.0.1:${port}/`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await (await fetch(url, { method: "POST", body: "{}" })).text();
      return;
    } catch (error) {
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`workerd did not start: ${error}\n${log.join("")}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
});

after(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

for (const tls of ["starttls", "implicit"]) {
  test(`a Worker sends with the npm package over ${tls} with AUTH and an attachment`, {
    skip,
  }, async () => {
    const server = await startSmtpServer({
      users: { alice: "s3cret" },
      ...(tls === "implicit" ? { secure: true } : {}),
    });
    let answer;
    try {
      const response = await fetch(url, {
        method: "POST",
        body: JSON.stringify({ port: server.port, tls }),
        signal: AbortSignal.timeout(30_000),
      });
      answer = await response.json();
    } finally {
      await server.close();
    }
    assert.deepEqual(answer, { accepted: ["you@example.com"] }, log.join(""));
    const received = server.received[0];
    assert.equal(received.secure, true);
    assert.equal(received.user, "alice");
    const mail = await parseMail(received.raw);
    assert.equal(mail.subject, `From the npm package on workerd (${tls})`);
    assert.deepEqual([...mail.attachments[0].content], [0, 1, 2, 255]);
  });
}
