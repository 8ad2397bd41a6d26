/**
 * The package as users get it: `npm pack` the built folder, install the tarball into a fresh
 * Node.js project, then load it by name with `import` and `require`, type-check a TypeScript
 * consumer of each kind against its declarations (module resolution `node16`), and send a
 * message from a plain script of each kind (`.mjs` and `.cjs`) in that project: STARTTLS, AUTH
 * PLAIN and a file attachment, to a local `smtp-server`; and run the README's Node examples as
 * written.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  depsDir,
  fixture,
  npmDir,
  packageJson,
  parseMail,
  requireDependency,
  startSmtpServer,
} from "./_helpers.cjs";

const pkg = packageJson();
const hasMime = Boolean(pkg.exports["./mime"]);
let dir;
let project;

function run(command, args, cwd) {
  return execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), "postie-install-"));
  run("npm", ["pack", npmDir, "--pack-destination", dir, "--loglevel=error"], dir);
  const tarball = readdirSync(dir).find((name) => name.endsWith(".tgz"));
  assert.ok(tarball, "npm pack wrote no tarball");
  project = join(dir, "consumer");
  mkdirSync(project);
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "consumer", version: "1.0.0", private: true }),
  );
  run("npm", [
    "install",
    "--no-audit",
    "--no-fund",
    "--ignore-scripts",
    "--loglevel=error",
    join(dir, tarball),
  ], project);
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the tarball holds the builds, the types, README and LICENSE, and nothing else", () => {
  const listing = JSON.parse(run("npm", ["pack", npmDir, "--dry-run", "--json"], dir))[0];
  const files = listing.files.map((file) => file.path);
  for (const file of ["package.json", "README.md", "LICENSE", "esm/mod.js", "cjs/mod.js"]) {
    assert.ok(files.includes(file), `${file} is missing`);
  }
  assert.ok(files.includes("types/mod.d.ts") && files.includes("cjs/mod.d.ts"));
  const stray = files.filter((file) => !/^(esm|cjs|types)\/|^[^/]+$/.test(file));
  assert.deepEqual(stray, []);
  assert.deepEqual(listing.bundled ?? [], []);
});

test("require() by name loads the CommonJS build", () => {
  const script = `
    const postie = require("@postie/smtp");
    const out = { client: typeof postie.SmtpClient.connect, send: typeof postie.sendMail,
      tls: new postie.SmtpTlsError("x").phase };
    if (${hasMime}) out.mime = typeof require("@postie/smtp/mime").composeMessage;
    console.log(JSON.stringify(out));`;
  const out = JSON.parse(run("node", ["-e", script], project));
  assert.deepEqual(out, {
    client: "function",
    send: "function",
    tls: "tls",
    ...(hasMime ? { mime: "function" } : {}),
  });
});

test("import by name loads the ES module build", () => {
  const script = `
    const postie = await import("@postie/smtp");
    const out = { client: typeof postie.SmtpClient.connect, send: typeof postie.sendMail,
      esm: import.meta.resolve("@postie/smtp").includes("/esm/") };
    if (${hasMime}) out.mime = typeof (await import("@postie/smtp/mime")).composeMessage;
    console.log(JSON.stringify(out));`;
  const out = JSON.parse(run("node", ["--input-type=module", "-e", script], project));
  assert.deepEqual(out, {
    client: "function",
    send: "function",
    esm: true,
    ...(hasMime ? { mime: "function" } : {}),
  });
});

test("TypeScript consumers type-check with import (.mts) and require (.cts)", () => {
  const ts = requireDependency("typescript");
  const usage = `
    const options: ClientOptions = { hostname: "localhost", tls: "starttls" };
    export async function run(): Promise<number> {
      const client: SmtpClient = await SmtpClient.connect(options);
      const result = await client.send({ raw: "x", envelope: { from: "a@b.c", to: ["d@e.f"] } });
      await client.quit();
      return result.accepted.length;
    }
    export const isTls = (error: unknown): boolean => error instanceof SmtpTlsError;`;
  writeFileSync(
    join(project, "index.mts"),
    `import { type ClientOptions, SmtpClient, SmtpTlsError } from "@postie/smtp";\n${usage}`,
  );
  writeFileSync(
    join(project, "index.cts"),
    `import { type ClientOptions, SmtpClient, SmtpTlsError } from "@postie/smtp";\n${usage}`,
  );
  const program = ts.createProgram({
    rootNames: [join(project, "index.mts"), join(project, "index.cts")],
    options: {
      module: ts.ModuleKind.Node16,
      moduleResolution: ts.ModuleResolutionKind.Node16,
      target: ts.ScriptTarget.ES2022,
      lib: ["lib.es2022.d.ts"],
      types: ["node"],
      typeRoots: [join(depsDir, "node_modules", "@types")],
      strict: true,
      noEmit: true,
    },
  });
  const diagnostics = ts.getPreEmitDiagnostics(program);
  const text = ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: (name) => name,
    getCurrentDirectory: () => project,
    getNewLine: () => "\n",
  });
  assert.equal(diagnostics.length, 0, text);
  // Each kind of consumer got its own declarations: ESM-flavoured for import, CJS for require.
  const loaded = program.getSourceFiles().map((file) => file.fileName);
  assert.ok(loaded.some((name) => name.endsWith("/@postie/smtp/types/mod.d.ts")), "types/");
  assert.ok(loaded.some((name) => name.endsWith("/@postie/smtp/cjs/mod.d.ts")), "cjs/");
});

test("the installed bin runs", { skip: !pkg.bin && "the package has no bin yet" }, () => {
  for (const name of Object.keys(pkg.bin ?? {})) {
    const help = run(join(project, "node_modules", ".bin", name), ["--help"], project);
    assert.match(help, /send/i, `${name} --help`);
  }
});

test(
  "the installed postie bin sends to its embedded demo server when no --server is given",
  { skip: !pkg.bin?.postie && "the package has no postie bin yet" },
  async () => {
    const bin = join(project, "node_modules", ".bin", "postie");
    const env = { ...process.env, POSTIE_SERVER: "", POSTIE_USER: "", POSTIE_PASSWORD: "" };
    const run = (args) =>
      promisify(execFile)(bin, args, { cwd: project, encoding: "utf8", timeout: 15_000, env })
        .catch((error) => {
          throw new Error(`postie ${args.join(" ")} failed: ${error.stderr || error.message}`);
        });
    const [sent, checked] = await Promise.all([
      run(["send", "--subject", "From the npm bin"]),
      run(["check"]),
    ]);
    assert.match(sent.stderr, /embedded local SMTP server on 127\.0\.0\.1:\d+ \(STARTTLS/);
    assert.match(sent.stdout, /^Sent <.+> to reader@postie\.test: 250 /);
    assert.match(sent.stdout, /\(TLS: true, logged in as: demo\)/);
    assert.match(sent.stdout, /^Subject: From the npm bin\r?$/m);
    assert.match(checked.stdout, /^TLS: +TLSv1\.[23], .*certificate CN=localhost verified$/m);
    assert.match(checked.stdout, /^AUTH: +PLAIN LOGIN$/m);
  },
);

/**
 * What a user of the package writes, as a script of each module kind. It takes the server's port,
 * the CA file and the attachment's path from the environment and prints what it learnt as JSON.
 */
const sendCall = `sendMail(
    {
      hostname: "127.0.0.1",
      port: Number(process.env.SMTP_PORT),
      tls: "starttls",
      tlsOptions: { caCerts: [readFileSync(process.env.SMTP_CA, "utf8")] },
      auth: { username: "alice", password: "s3cret pass" },
    },
    {
      from: "Alice <alice@example.com>",
      to: "bob@example.com",
      subject: "Report from a Node.js project",
      text: "The report is attached.",
      attachments: [{ content: { path: process.env.ATTACHMENT } }],
    },
  )`;
const report = (resolved) =>
  `console.log(JSON.stringify({
    resolved: ${resolved},
    accepted: result.accepted.map((r) => r.address),
    rejected: result.rejected.length,
    code: result.reply.code,
    messageId: result.messageId,
  }));`;
const consumers = {
  "send.mjs": `import { readFileSync } from "node:fs";
import process from "node:process";
import { sendMail } from "@postie/smtp";

const result = await ${sendCall};
${report('import.meta.resolve("@postie/smtp")')}
`,
  "send.cjs": `"use strict";
const { readFileSync } = require("node:fs");
const process = require("node:process");
const { sendMail } = require("@postie/smtp");

(async () => {
  const result = await ${sendCall};
  ${report('require.resolve("@postie/smtp")')}
})().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
`,
};

/**
 * The runtimes that run the consumer scripts: Node.js, and Bun where the build found it
 * (`POSTIE_BUN`, the binary of npm `bun`).
 */
const runtimes = [["node", "node"]];
if (process.env.POSTIE_BUN) runtimes.push(["bun", process.env.POSTIE_BUN]);

for (const [runtime, executable] of runtimes) {
  for (const [script, build] of [["send.mjs", "esm"], ["send.cjs", "cjs"]]) {
    consumerTest(runtime, executable, script, build);
  }
}

function consumerTest(runtime, executable, script, build) {
  test(`${runtime} ${script} in the project sends over STARTTLS with AUTH PLAIN and a file`, async () => {
    const logins = [];
    const server = await startSmtpServer({
      authOptional: false,
      authMethods: ["PLAIN"],
      onAuth(auth, _session, callback) {
        logins.push({ method: auth.method, username: auth.username });
        if (auth.username === "alice" && auth.password === "s3cret pass") {
          return callback(null, { user: "alice" });
        }
        callback(new Error("Invalid username or password"));
      },
    });
    // Binary content: any damage in base64 encoding, dot-stuffing or streaming shows.
    const content = randomBytes(96 * 1024 + 7);
    const attachment = join(dir, `report-${runtime}-${build}.bin`);
    const file = `${runtime}-${script}`;
    writeFileSync(attachment, content);
    writeFileSync(join(project, file), consumers[script]);
    writeFileSync(join(dir, "ca.pem"), fixture("ca.pem"));
    let stdout;
    try {
      // Asynchronously: the server runs in this process.
      ({ stdout } = await promisify(execFile)(executable, [file], {
        cwd: project,
        encoding: "utf8",
        timeout: 15_000,
        env: {
          ...process.env,
          SMTP_PORT: String(server.port),
          SMTP_CA: join(dir, "ca.pem"),
          ATTACHMENT: attachment,
        },
      }).catch((error) => {
        throw new Error(`${runtime} ${script} failed: ${error.stderr || error.message}`);
      }));
    } finally {
      await server.close();
    }
    const out = JSON.parse(stdout);
    // The installed copy was used, the build of the module kind asked for.
    const resolved = out.resolved.startsWith("file:") ? fileURLToPath(out.resolved) : out.resolved;
    assert.ok(
      realpathSync(resolved).startsWith(
        join(realpathSync(project), "node_modules", "@postie", "smtp", build) + "/",
      ),
      resolved,
    );
    assert.deepEqual(out.accepted, ["bob@example.com"]);
    assert.equal(out.rejected, 0);
    assert.equal(out.code, 250);
    assert.deepEqual(logins, [{ method: "PLAIN", username: "alice" }]);
    assert.equal(server.received.length, 1);
    const received = server.received[0];
    assert.equal(received.secure, true, "the message came over TLS");
    assert.equal(received.user, "alice");
    assert.equal(received.from, "alice@example.com");
    assert.deepEqual(received.to, ["bob@example.com"]);
    const mail = await parseMail(received.raw);
    assert.equal(mail.subject, "Report from a Node.js project");
    assert.equal(mail.text.trim(), "The report is attached.");
    if (out.messageId) assert.equal(mail.messageId, out.messageId);
    assert.equal(mail.attachments.length, 1);
    assert.equal(mail.attachments[0].filename, `report-${runtime}-${build}.bin`);
    assert.ok(content.equals(mail.attachments[0].content), "the attachment arrived intact");
  });
}

/** The README's Node examples: each ```js block after a `<!-- node-example: NAME -->` line. */
function readmeExamples() {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const examples = new Map();
  for (const match of readme.matchAll(/<!-- node-example: (\S+) -->\s*```js\n([\s\S]*?)```/g)) {
    examples.set(match[1], match[2]);
  }
  return examples;
}

test("the README has a Node example of each module kind", () => {
  assert.deepEqual([...readmeExamples().keys()].sort(), ["send.cjs", "send.mjs"]);
});

for (const [name, code] of readmeExamples()) {
  test(`the README's ${name} runs as written on Node ${process.versions.node}`, async () => {
    const server = await startSmtpServer({
      authOptional: false,
      authMethods: ["PLAIN", "LOGIN"],
      onAuth(auth, _session, callback) {
        if (auth.username === "me@example.com" && auth.password === "readme pass") {
          return callback(null, { user: auth.username });
        }
        callback(new Error("Invalid username or password"));
      },
    });
    const file = join(project, `readme-${name}`);
    writeFileSync(file, code);
    writeFileSync(join(dir, "ca.pem"), fixture("ca.pem"));
    try {
      await promisify(execFile)("node", [file], {
        cwd: project,
        encoding: "utf8",
        timeout: 15_000,
        env: {
          ...process.env,
          SMTP_HOST: "localhost",
          SMTP_PORT: String(server.port),
          SMTP_USER: "me@example.com",
          SMTP_PASSWORD: "readme pass",
          // The test server's CA, the way a user adds a private CA without code.
          NODE_EXTRA_CA_CERTS: join(dir, "ca.pem"),
        },
      }).catch((error) => {
        throw new Error(`node ${name} failed: ${error.stderr || error.message}`);
      });
    } finally {
      await server.close();
    }
    assert.ok(server.received.length >= 1, "nothing arrived");
    for (const received of server.received) {
      assert.equal(received.secure, true, "sent over TLS");
      assert.equal(received.user, "me@example.com");
    }
  });
}
