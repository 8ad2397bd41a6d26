/**
 * The Cloudflare Workers transport on the real runtime: `tests/workers/_worker.ts` is bundled
 * from the library's sources (`deno bundle`) and served by `workerd` (npm `workerd`), whose
 * network service trusts the test CA (`tlsOptions.trustedCertificates`, the stand-in for the
 * public CAs a deployed Worker trusts). Each step posts a case to the Worker, which sends
 * through `workersTransport` to an `smtp-server` on 127.0.0.1; the step then checks what the
 * server received with mailparser. The README's Worker example runs beside it, as written, with
 * its server and secrets given as `env` bindings.
 *
 * Where `workerd` cannot be had or cannot start, the test prints `WORKERS SKIPPED: <reason>` and
 * is reported as ignored.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { simpleParser } from "mailparser";
import {
  type AuthSession,
  startSmtpServer,
  testCa,
  type TestServer,
} from "../_helpers/smtp_server.ts";
import type { WorkerRequest, WorkerResponse } from "./_worker.ts";

/** The compatibility date the Worker runs with (`node:*` modules need `nodejs_compat`). */
const COMPATIBILITY_DATE = "2025-09-15";
const USER = "worker@example.com";
const PASSWORD = "s3cret-from-env";
const ATTACHMENT = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) % 256);

/** The workerd binary from npm `workerd`, or why it cannot run here. */
async function findWorkerd(): Promise<{ path: string } | { reason: string }> {
  let path: string;
  try {
    const workerd = await import("workerd");
    path = (workerd.default as { default: string }).default ?? workerd.default;
  } catch (error) {
    return { reason: `npm workerd cannot be loaded: ${error}` };
  }
  try {
    const { code, stderr } = await new Deno.Command(path, { args: ["--version"], stdout: "null" })
      .output();
    if (code !== 0) {
      return { reason: `workerd --version failed: ${new TextDecoder().decode(stderr)}` };
    }
  } catch (error) {
    return { reason: `workerd cannot run: ${error}` };
  }
  return { path };
}

const found = await findWorkerd();
const skipReason = "reason" in found ? found.reason : undefined;

/** A free loopback port (closed again for workerd to listen on). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** The README's Worker example: the `ts` block after `<!-- workers-example -->`. */
async function readmeExample(): Promise<string> {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const match = readme.match(/<!-- workers-example -->\s*```ts\n([\s\S]*?)```/);
  if (!match) throw new Error("README.md has no <!-- workers-example --> block");
  return match[1]!;
}

/** Environment bindings of the README example: where it sends, and its secrets. */
interface ReadmeEnv {
  SMTP_HOST: string;
  SMTP_PORT: string;
  SMTP_USER: string;
  SMTP_PASSWORD: string;
}

/**
 * The workerd configuration: the test Worker and the README example, each on its own port, and
 * outbound sockets that trust the test CA.
 */
function config(ports: { main: number; readme: number }, env: ReadmeEnv): string {
  const bindings = Object.entries(env)
    .map(([name, value]) => `(name = "${name}", text = ${JSON.stringify(value)})`)
    .join(", ");
  return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "readme", worker = .readme),
    (name = "internet", network = (
      allow = ["public", "private", "local"],
      tlsOptions = (trustedCertificates = [${JSON.stringify(testCa)}]),
    )),
  ],
  sockets = [
    (name = "main", address = "127.0.0.1:${ports.main}", http = (), service = "main"),
    (name = "readme", address = "127.0.0.1:${ports.readme}", http = (), service = "readme"),
  ],
);
const worker :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = embed "worker.js")],
  compatibilityDate = "${COMPATIBILITY_DATE}",
  compatibilityFlags = ["nodejs_compat"],
);
const readme :Workerd.Worker = (
  modules = [(name = "readme.js", esModule = embed "readme.js")],
  bindings = [${bindings}],
  compatibilityDate = "${COMPATIBILITY_DATE}",
  compatibilityFlags = ["nodejs_compat"],
);
`;
}

/** Bundles a Worker from the sources: `@postie/smtp` resolves to this checkout (deno.json). */
async function bundle(entry: string, output: string): Promise<void> {
  const result = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform=browser",
      "--format=esm",
      "--external=cloudflare:*",
      "--external=node:*",
      `--config=${new URL("../../deno.json", import.meta.url).pathname}`,
      `--output=${output}`,
      entry,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (result.code !== 0) {
    throw new Error(`deno bundle ${entry} failed: ${new TextDecoder().decode(result.stderr)}`);
  }
}

/** A running workerd serving the bundled Workers. */
interface Workerd extends AsyncDisposable {
  /** Posts a case to the test Worker. */
  send(request: WorkerRequest): Promise<WorkerResponse>;
  /** Posts `body` to the README example. */
  readme(body: unknown): Promise<{ status: number; body: unknown }>;
}

async function startWorkerd(binary: string, env: ReadmeEnv): Promise<Workerd> {
  const dir = await Deno.makeTempDir({ prefix: "postie-workerd-" });
  try {
    await bundle(new URL("./_worker.ts", import.meta.url).pathname, `${dir}/worker.js`);
    await Deno.writeTextFile(`${dir}/readme.ts`, await readmeExample());
    await bundle(`${dir}/readme.ts`, `${dir}/readme.js`);
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  const ports = { main: freePort(), readme: freePort() };
  await Deno.writeTextFile(`${dir}/config.capnp`, config(ports, env));
  const child = new Deno.Command(binary, {
    args: ["serve", `${dir}/config.capnp`],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log: string[] = [];
  const logged = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (text) => void log.push(text) }),
  );
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* exited */ }
    await child.status;
    await logged.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  };
  const url = `http://127.0.0.1:${ports.main}/`;
  // Ready once it answers: poll for at most 20 s.
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const response = await fetch(url, { method: "POST", body: "{}" });
      await response.body?.cancel();
      break;
    } catch (error) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`workerd did not answer within 20 s: ${error}\n${log.join("")}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    async send(request) {
      const response = await fetch(url, {
        method: "POST",
        body: JSON.stringify(request),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await response.text();
      try {
        return JSON.parse(text);
      } catch {
        throw new Error(`The Worker answered ${response.status}: ${text}\n${log.join("")}`);
      }
    },
    async readme(body) {
      const response = await fetch(`http://127.0.0.1:${ports.readme}/`, {
        method: "POST",
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await response.text();
      try {
        return { status: response.status, body: JSON.parse(text) };
      } catch {
        throw new Error(`The README Worker answered ${response.status}: ${text}\n${log.join("")}`);
      }
    },
    [Symbol.asyncDispose]: stop,
  };
}

/** An smtp-server that requires AUTH PLAIN or LOGIN as {@linkcode USER}. */
function authServer(options: { secure?: boolean; plain?: boolean } = {}): Promise<TestServer> {
  return startSmtpServer({
    authMethods: ["PLAIN", "LOGIN"],
    authOptional: false,
    ...(options.secure ? { secure: true } : {}),
    ...(options.plain ? { disabledCommands: ["STARTTLS"], allowInsecureAuth: true } : {}),
    onAuth(raw, _session, callback) {
      const auth = raw as unknown as AuthSession;
      if (auth.username === USER && auth.password === PASSWORD) {
        return callback(null, { user: auth.username });
      }
      callback(new Error("Invalid username or password"));
    },
  });
}

function message(subject: string): WorkerRequest["message"] {
  return {
    from: "app@example.com",
    to: "you@example.com",
    subject,
    text: `Sent from a Worker: ${subject}`,
    attachments: [{
      filename: "data.bin",
      base64: btoa(String.fromCharCode(...ATTACHMENT)),
      contentType: "application/octet-stream",
    }],
  };
}

/** Checks one received message: envelope, login, TLS, subject, body and attachment bytes. */
async function checkReceived(
  server: TestServer,
  index: number,
  subject: string,
  secure: boolean,
): Promise<void> {
  const received = server.received[index];
  assert.ok(received, `the server received message ${index + 1}`);
  assert.equal(received.from, "app@example.com");
  assert.deepEqual(received.to, ["you@example.com"]);
  assert.equal(received.user, USER);
  assert.equal(received.secure, secure);
  const parsed = await simpleParser(Buffer.from(received.raw));
  assert.equal(parsed.subject, subject);
  assert.equal(parsed.text?.trim(), `Sent from a Worker: ${subject}`);
  assert.equal(parsed.attachments.length, 1);
  assert.equal(parsed.attachments[0]!.filename, "data.bin");
  assert.deepEqual(new Uint8Array(parsed.attachments[0]!.content), ATTACHMENT);
}

function assertSent(response: WorkerResponse): asserts response is WorkerResponse & { ok: true } {
  assert.ok(response.ok, `the Worker failed to send: ${JSON.stringify(response)}`);
  assert.deepEqual(response.rejected, []);
}

function assertRefused(
  response: WorkerResponse,
  expected: { name: string; phase?: string; message: RegExp },
): void {
  assert.ok(
    !response.ok,
    `the Worker sent although it should have refused (${expected.message}): ${
      JSON.stringify(response)
    }`,
  );
  assert.equal(response.name, expected.name, response.message);
  if (expected.phase) assert.equal(response.phase, expected.phase, response.message);
  assert.match(response.message, expected.message);
}

if (skipReason) console.log(`WORKERS SKIPPED: ${skipReason}`);

Deno.test({
  name: "the Workers transport sends from a Worker on workerd",
  ignore: skipReason !== undefined,
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    // The README example's server: its port is one of the Worker's bindings.
    await using readmeServer = await authServer();
    await using workerd = await startWorkerd((found as { path: string }).path, {
      SMTP_HOST: "localhost",
      SMTP_PORT: String(readmeServer.port),
      SMTP_USER: USER,
      SMTP_PASSWORD: PASSWORD,
    });

    // First, before any TLS session to the name exists: workerd resumes TLS sessions by name, and
    // Deno's smtp-servers share ticket keys, so a later handshake would skip the check.
    await t.step("reports an untrusted certificate as a TLS error", async () => {
      await using implicit = await startSmtpServer({ secure: true, certName: "unknown-ca" });
      await using starttls = await startSmtpServer({ certName: "unknown-ca" });
      const cases = [
        [implicit.port, "implicit", /^TLS setup failed: .*public CA/],
        [starttls.port, "starttls", /^STARTTLS upgrade failed: .*public CA/],
      ] as const;
      for (const [port, tls, text] of cases) {
        assertRefused(
          await workerd.send({
            client: { hostname: "127.0.0.1", port, tls },
            message: message(`untrusted ${tls}`),
          }),
          { name: "SmtpTlsError", phase: "tls", message: text },
        );
      }
    });

    const modes = [
      { title: "over STARTTLS", tls: "starttls", hostname: "localhost", server: {}, secure: true },
      {
        title: "over implicit TLS",
        tls: "implicit",
        hostname: "localhost",
        server: { secure: true },
        secure: true,
      },
      {
        title: "in clear text (tls: none, AUTH allowed for the host)",
        tls: "none",
        hostname: "127.0.0.1",
        server: { plain: true },
        secure: false,
      },
    ] as const;
    for (const { title, tls, hostname, server: serverOptions, secure } of modes) {
      await t.step(`${title} with AUTH and an attachment`, async () => {
        await using server = await authServer(serverOptions);
        const response = await workerd.send({
          client: {
            hostname,
            port: server.port,
            tls,
            auth: { username: USER, password: PASSWORD },
            ...(tls === "none" ? { allowPlaintextAuth: [hostname] } : {}),
          },
          message: message(title),
        });
        assertSent(response);
        assert.deepEqual(response.accepted, ["you@example.com"]);
        await checkReceived(server, 0, title, secure);
      });
    }

    await t.step("through a pool, two messages on one STARTTLS connection", async () => {
      let connections = 0;
      await using server = await startSmtpServer({
        onConnect: (_session, callback) => (connections++, callback()),
      });
      const response = await workerd.send({
        client: { hostname: "localhost", port: server.port },
        message: { from: "app@example.com", to: "you@example.com", subject: "pooled", text: "x" },
        pool: true,
      });
      assertSent(response);
      assert.equal(server.received.length, 2);
      assert.equal(connections, 1);
      assert.ok(server.received.every((r) => r.secure));
    });

    await t.step("the README's Worker example sends as written", async () => {
      const sent = await workerd.readme({ to: "you@example.com", subject: "README", text: "Hi" });
      assert.equal(sent.status, 200, JSON.stringify(sent.body));
      assert.equal((sent.body as { accepted: number }).accepted, 1);
      const received = readmeServer.received[0];
      assert.ok(received, "the server received the message");
      assert.equal(received.from, USER);
      assert.equal(received.user, USER);
      assert.equal(received.secure, true);
      assert.equal((await simpleParser(Buffer.from(received.raw))).subject, "README");
    });

    await t.step("refuses port 25: the platform blocks it", async () => {
      assertRefused(
        await workerd.send({
          client: { hostname: "127.0.0.1", port: 25, tls: "none" },
          message: message("port 25"),
        }),
        { name: "SmtpUnsupportedError", phase: "connect", message: /block outbound .*port 25/ },
      );
    });

    await t.step(
      "refuses ClientOptions.path and { path } attachments: no file system",
      async () => {
        assertRefused(
          await workerd.send({
            client: { hostname: "localhost", path: "/run/smtp.sock", tls: "none" },
            message: message("path"),
          }),
          { name: "SmtpUnsupportedError", phase: "connect", message: /no file system/ },
        );
        let connections = 0;
        await using server = await startSmtpServer({
          onConnect: (_session, callback) => (connections++, callback()),
        });
        assertRefused(
          await workerd.send({
            client: { hostname: "localhost", port: server.port },
            message: {
              ...message("file"),
              attachments: [{ filename: "report.pdf", path: "/tmp/report.pdf" }],
            },
          }),
          { name: "TypeError", message: /report\.pdf.*no file system/ },
        );
        assert.equal(connections, 0, "the attachment was refused before connecting");
      },
    );

    await t.step("refuses custom CA certificates and a client certificate", async () => {
      await using implicit = await authServer({ secure: true });
      await using starttls = await authServer();
      for (const [port, tls] of [[implicit.port, "implicit"], [starttls.port, "starttls"]]) {
        assertRefused(
          await workerd.send({
            client: {
              hostname: "localhost",
              port: port as number,
              tls: tls as "implicit" | "starttls",
              tlsOptions: { caCerts: [testCa] },
            },
            message: message("caCerts"),
          }),
          { name: "SmtpUnsupportedError", phase: "tls", message: /public CAs only/ },
        );
      }
      assertRefused(
        await workerd.send({
          client: {
            hostname: "localhost",
            port: implicit.port,
            tls: "implicit",
            tlsOptions: { clientCertificate: { cert: "x", key: "y" } },
          },
          message: message("client certificate"),
        }),
        { name: "SmtpUnsupportedError", phase: "tls", message: /no client certificate/ },
      );
      assert.equal(implicit.received.length + starttls.received.length, 0);
    });

    await t.step("reports a refused connection as a connection error", async () => {
      const port = freePort();
      for (const tls of ["implicit", "starttls"] as const) {
        assertRefused(
          await workerd.send({
            client: { hostname: "127.0.0.1", port, tls },
            message: message("refused"),
          }),
          { name: "SmtpConnectionError", phase: "connect", message: /Cannot connect/ },
        );
      }
    });

    await t.step("times out on a server that never greets", async () => {
      using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const held: Deno.Conn[] = [];
      const accepting = (async () => {
        for await (const conn of listener) held.push(conn);
      })().catch(() => {});
      const started = performance.now();
      const response = await workerd.send({
        client: {
          hostname: "127.0.0.1",
          port: (listener.addr as Deno.NetAddr).port,
          tls: "none",
          timeouts: { greetingMs: 300 },
        },
        message: message("silent"),
      });
      const elapsed = performance.now() - started;
      assertRefused(response, { name: "SmtpTimeoutError", phase: "greeting", message: /300 ms/ });
      assert.ok(elapsed < 5_000, `gave up after ${Math.round(elapsed)} ms`);
      // The Worker closed its socket: the server side reads the end of the stream.
      const conn = held[0];
      assert.ok(conn, "the Worker connected");
      assert.equal(await conn.read(new Uint8Array(16)), null);
      for (const c of held) c.close();
      listener.close();
      await accepting;
    });
  },
});
