/**
 * The `postie` command line, run as a subprocess (`deno run -A src/cli/deno.ts ...`: the file
 * that deno.json exports as `./cli`) against servers on 127.0.0.1: exit codes, output formats,
 * redaction. Independent runs go in parallel.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { test } from "../_helpers/test.ts";
import { startSmtpServer } from "../_helpers/smtp_server.ts";
import { serveEsmtp, startScriptedServer } from "../_helpers/scripted_server.ts";
import {
  EXIT_AUTH,
  EXIT_DATA,
  EXIT_INTERRUPTED,
  EXIT_NO_INPUT,
  EXIT_OK,
  EXIT_PROTOCOL,
  EXIT_REJECTED,
  EXIT_TEMPORARY,
  EXIT_TLS,
  EXIT_UNAVAILABLE,
  EXIT_USAGE,
  main,
} from "../../src/cli/main.ts";

const root = new URL("../../", import.meta.url);
const CA = new URL("tests/fixtures/certs/ca.pem", root).pathname;
const PASSWORD = "s3cret-Pa55word";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `src/cli/deno.ts` with `args`; no POSTIE_* variable leaks in from the caller. */
async function postie(
  args: string[],
  options: { env?: Record<string, string>; stdin?: string } = {},
): Promise<Run> {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "src/cli/deno.ts", ...args],
    cwd: root.pathname,
    env: {
      POSTIE_SERVER: "",
      POSTIE_USER: "",
      POSTIE_PASSWORD: "",
      POSTIE_OAUTH_TOKEN: "",
      INIT_CWD: "", // as if run directly, not from a task
      NO_COLOR: "1",
      ...options.env,
    },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = command.spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** Asserts the exit code, showing the output when it differs. */
function assertExit(run: Run, code: number, label: string): void {
  assert.equal(
    run.code,
    code,
    `${label}: expected exit ${code}, got ${run.code}\n${run.stderr}\n${run.stdout}`,
  );
}

/** Asserts that the error is one line on standard error, prefixed with `postie:`. */
function assertOneLineError(run: Run, pattern: RegExp, label: string): void {
  const lines = run.stderr.trimEnd().split("\n").filter((l) => l.startsWith("postie:"));
  assert.equal(lines.length, 1, `${label}: ${run.stderr}`);
  assert.match(lines[0]!, pattern, label);
}

interface AuthSession {
  method: string;
  username?: string;
  password?: string;
}

/** smtp-server with STARTTLS, AUTH PLAIN and LOGIN for "me" / PASSWORD. */
function authServer(options: { rejectRecipients?: string[] } = {}) {
  return startSmtpServer({
    authMethods: ["PLAIN", "LOGIN"],
    authOptional: false,
    size: 10 * 1024 * 1024,
    ...options,
    onAuth(raw, _session, callback) {
      const auth = raw as unknown as AuthSession;
      if (auth.username === "me" && auth.password === PASSWORD) {
        return callback(null, { user: auth.username });
      }
      callback(new Error("Invalid username or password"));
    },
  });
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

test("send: a message with an attachment arrives; exit 0; --json reports the result", async () => {
  await using server = await authServer();
  const attachment = await Deno.makeTempFile({ suffix: ".txt" });
  try {
    await Deno.writeTextFile(attachment, "attached text\n");
    const [plain, json] = await Promise.all([
      postie([
        "send",
        ...["--server", `localhost:${server.port}`, "--ca-file", CA, "--user", "me"],
        ...["--from", "Zoë <me@example.com>", "--to", "you@example.com"],
        ...["--subject", "Quarterly ✓", "--text", "@-", "--attach", `${attachment};name=notes.txt`],
        ...["--header", "X-Campaign: q3"],
      ], { env: { POSTIE_PASSWORD: PASSWORD }, stdin: "Body from standard input\n" }),
      postie([
        "send",
        ...["--server", `localhost:${server.port}`, "--ca-file", CA, "--json"],
        ...["--from", "me@example.com", "--to", "you@example.com", "--subject", "JSON"],
      ], { env: { POSTIE_USER: "me", POSTIE_PASSWORD: PASSWORD } }),
    ]);
    assertExit(plain, EXIT_OK, "plain");
    assert.match(plain.stdout, /^Sent <[^>]+@example\.com> to you@example\.com: 250 /);
    assertExit(json, EXIT_OK, "json");
    const result = JSON.parse(json.stdout);
    assert.equal(result.ok, true);
    assert.equal(result.exitCode, 0);
    assert.match(result.messageId, /^<.+@example\.com>$/);
    assert.deepEqual(result.envelope, { from: "me@example.com", to: ["you@example.com"] });
    assert.equal(result.accepted.length, 1);
    assert.deepEqual(Object.keys(result.accepted[0]).sort(), [
      "address",
      "code",
      "enhancedStatus",
      "text",
    ]);
    assert.equal(result.accepted[0].address, "you@example.com");
    assert.equal(result.accepted[0].code, 250);
    assert.deepEqual(result.rejected, []);
    assert.equal(result.reply.code, 250);
    assert.match(result.reply.text, /queued/);

    assert.equal(server.received.length, 2);
    const received = server.received.find((m) => m.text.includes("Quarterly"))!;
    assert.ok(received, "the plain send arrived");
    assert.equal(received.secure, true);
    assert.equal(received.user, "me");
    assert.match(received.text, /^Subject: Quarterly =\?UTF-8\?B\?4pyT\?=\r$/m);
    assert.match(received.text, /^X-Campaign: q3\r$/m);
    assert.match(received.text, /Body from standard input/);
    assert.match(received.text, /filename=notes\.txt/);
    assert.ok(received.text.includes(btoa("attached text\n").slice(0, 16)));
  } finally {
    await Deno.remove(attachment);
  }
});

test("send: each failure has its own exit code and a one-line error", async () => {
  await using good = await authServer({ rejectRecipients: ["nobody@example.com"] });
  await using scripted = startScriptedServer(async (conn) => {
    await serveEsmtp(conn, {
      extensions: ["PIPELINING"],
      rcpt: () => "451 4.3.0 Mailbox busy, try again later",
    });
  });
  await using garbage = startScriptedServer(async (conn) => {
    await conn.send("this is not SMTP\r\n");
    await conn.waitForClose(2000);
  });
  const closed = freePort();
  const message = ["--from", "me@example.com", "--to", "you@example.com", "--subject", "x"];
  const at = (port: number) => ["--server", `localhost:${port}`];
  const env = { POSTIE_USER: "me", POSTIE_PASSWORD: PASSWORD };
  const cases: [string, Promise<Run>, number, RegExp][] = [
    ["unknown option", postie(["send", "--bogus"]), EXIT_USAGE, /Unknown option '--bogus'/],
    [
      "no password and no terminal",
      postie(["send", ...at(good.port), ...message, "--user", "me"]),
      EXIT_USAGE,
      /needs a password: set POSTIE_PASSWORD/,
    ],
    [
      "credentials without TLS",
      postie(["send", ...at(good.port), "--tls", "none", ...message], { env }),
      EXIT_USAGE,
      /--allow-plaintext-auth/,
    ],
    [
      "invalid address",
      postie(["send", ...at(good.port), "--from", "me@example.com", "--to", "not an address"]),
      EXIT_DATA,
      /Invalid address "not an address"/,
    ],
    [
      "missing attachment",
      postie(["send", ...at(good.port), ...message, "--attach", "/nonexistent/file.pdf"]),
      EXIT_NO_INPUT,
      /Cannot attach \/nonexistent\/file\.pdf: no such file/,
    ],
    [
      "recipient refused",
      postie([
        "send",
        ...at(good.port),
        "--ca-file",
        CA,
        "--from",
        "me@example.com",
        "--to",
        "nobody@example.com",
      ], { env }),
      EXIT_REJECTED,
      /550 5\.1\.1/,
    ],
    [
      "connection refused",
      postie(["send", ...at(closed), ...message]),
      EXIT_UNAVAILABLE,
      /Cannot connect to localhost:\d+.*\(check --server host:port/,
    ],
    [
      "temporary failure",
      postie(["send", "--server", `127.0.0.1:${scripted.port}`, "--tls", "none", ...message]),
      EXIT_TEMPORARY,
      /451 4\.3\.0 Mailbox busy/,
    ],
    [
      "protocol error",
      postie(["send", "--server", `127.0.0.1:${garbage.port}`, "--tls", "none", ...message]),
      EXIT_PROTOCOL,
      /postie: .*(malformed|Malformed|invalid|Invalid)/,
    ],
    [
      "wrong password",
      postie(["send", ...at(good.port), "--ca-file", CA, ...message], {
        env: { POSTIE_USER: "me", POSTIE_PASSWORD: "wrong-password" },
      }),
      EXIT_AUTH,
      /535/,
    ],
    [
      "untrusted certificate (no --ca-file)",
      postie(["send", ...at(good.port), ...message], { env }),
      EXIT_TLS,
      /not signed by a trusted CA \(add the CA with --ca-file\)/,
    ],
  ];
  const runs = await Promise.all(cases.map(([, run]) => run));
  cases.forEach(([label, , code, pattern], i) => {
    assertExit(runs[i]!, code, label);
    assertOneLineError(runs[i]!, pattern, label);
  });
  // Only the refused recipient and the wrong password reached the point of sending anything.
  assert.equal(good.received.length, 0);
});

test("send --json on a partial rejection lists both sides and exits 67", async () => {
  await using server = await authServer({ rejectRecipients: ["nobody@example.com"] });
  const run = await postie([
    "send",
    ...["--server", `localhost:${server.port}`, "--ca-file", CA, "--json"],
    ...["--from", "me@example.com", "--to", "you@example.com", "--cc", "nobody@example.com"],
  ], { env: { POSTIE_USER: "me", POSTIE_PASSWORD: PASSWORD } });
  assertExit(run, EXIT_REJECTED, "partial");
  const result = JSON.parse(run.stdout);
  assert.equal(result.ok, false);
  assert.equal(result.exitCode, EXIT_REJECTED);
  assert.deepEqual(result.accepted.map((r: { address: string }) => r.address), [
    "you@example.com",
  ]);
  assert.deepEqual(result.rejected, [{
    address: "nobody@example.com",
    code: 550,
    enhancedStatus: "5.1.1",
    text: "No such user here",
  }]);
  assert.match(run.stderr, /sent to 1 of 2 recipients; refused: nobody@example\.com \(550/);
  assert.equal(server.received.length, 1);
});

test("send --dry-run prints the composed message and connects nowhere", async () => {
  const closed = freePort();
  const [plain, json] = await Promise.all([
    postie([
      "send",
      "--dry-run",
      ...["--server", `127.0.0.1:${closed}`],
      ...["--from", "me@example.com", "--to", "you@example.com", "--bcc", "hidden@example.com"],
      ...["--subject", "Dry", "--html", "<p>Hi</p>", "--attach", "deno.json;type=text/plain"],
    ]),
    postie([
      "send",
      "--dry-run",
      "--json",
      ...["--from", "me@example.com", "--to", "you@example.com", "--text", "hello"],
    ]),
  ]);
  assertExit(plain, EXIT_OK, "dry run");
  assert.match(plain.stdout, /^Subject: Dry\r$/m);
  assert.match(plain.stdout, /^Content-Type: multipart\/mixed; boundary=/m);
  assert.match(plain.stdout, /^Content-Type: text\/html; charset=UTF-8\r$/m);
  assert.match(plain.stdout, /^Content-Type: text\/plain; name=deno\.json\r$/m);
  assert.doesNotMatch(plain.stdout, /hidden@example\.com|^Bcc:/im);
  assert.match(
    plain.stderr,
    /MAIL FROM:<me@example\.com> RCPT TO:<you@example\.com> RCPT TO:<hidden@example\.com>/,
  );
  assertExit(json, EXIT_OK, "dry run json");
  const composed = JSON.parse(json.stdout);
  assert.deepEqual(composed.envelope, { from: "me@example.com", to: ["you@example.com"] });
  assert.match(composed.message, /\r\n\r\nhello\r\n$/);
});

test("send --transcript shows the dialogue and never the password", async () => {
  await using server = await authServer();
  const runs = await Promise.all(["PLAIN", "LOGIN"].map((mechanism) =>
    postie([
      "send",
      "--transcript",
      ...["--server", `localhost:${server.port}`, "--ca-file", CA],
      ...["--auth-mechanism", mechanism],
      ...["--from", "me@example.com", "--to", "you@example.com", "--subject", "t"],
    ], { env: { POSTIE_USER: "me", POSTIE_PASSWORD: PASSWORD } })
  ));
  const secrets = [
    PASSWORD,
    Buffer.from(PASSWORD).toString("base64"),
    Buffer.from(`\0me\0${PASSWORD}`).toString("base64"),
  ];
  for (const [i, run] of runs.entries()) {
    assertExit(run, EXIT_OK, `transcript ${i}`);
    assert.match(run.stderr, /^C: STARTTLS$/m);
    assert.match(run.stderr, /^\* TLS established with localhost, certificate verified/m);
    assert.match(run.stderr, /^S: 235 /m);
    assert.match(run.stderr, /^C: MAIL FROM:<me@example\.com>/m);
    for (const secret of secrets) {
      assert.ok(!run.stderr.includes(secret) && !run.stdout.includes(secret), secret);
    }
  }
  assert.match(runs[0]!.stderr, /^C: AUTH PLAIN \[redacted\]$/m);
  assert.match(runs[1]!.stderr, /^C: AUTH LOGIN$/m);
  assert.match(runs[1]!.stderr, /^C: \[redacted\]$/m);
});

test("check reports TLS and the server's extensions, as text and as JSON", async () => {
  await using server = await authServer();
  const args = ["check", "--server", `localhost:${server.port}`, "--ca-file", CA];
  const [plain, json, untrusted] = await Promise.all([
    postie(args),
    postie([...args, "--json"]),
    postie(["check", "--server", `localhost:${server.port}`]),
  ]);
  assertExit(plain, EXIT_OK, "check");
  assert.match(plain.stdout, /^Server: +localhost:\d+ \(STARTTLS\)$/m);
  assert.match(plain.stdout, /^TLS: .*certificate verified/m);
  assert.match(plain.stdout, /^AUTH: +PLAIN LOGIN$/m);
  assert.match(plain.stdout, /^Max size: .*\(10485760 bytes\)$/m);
  assert.match(plain.stdout, /^ {2}PIPELINING$/m);
  assert.match(plain.stdout, /^ {2}8BITMIME$/m);
  assertExit(json, EXIT_OK, "check --json");
  const report = JSON.parse(json.stdout);
  assert.equal(report.ok, true);
  assert.equal(report.server.tls, "starttls");
  assert.match(report.greeting, /^220 /);
  assert.notEqual(report.tls, null);
  assert.ok(report.capabilities.keywords.includes("PIPELINING"));
  assert.deepEqual(report.capabilities.authMechanisms, ["PLAIN", "LOGIN"]);
  assert.equal(report.capabilities.maxSize, 10485760);
  assert.deepEqual(report.capabilities.extensions.SIZE, ["10485760"]);
  assertExit(untrusted, EXIT_TLS, "check without the CA");
  assert.equal(server.received.length, 0);
});

test("send and check without --server use the embedded local server", async () => {
  const [sent, checked] = await Promise.all([
    postie(["send", "--subject", "Local"]),
    postie(["check"]),
  ]);
  assertExit(sent, EXIT_OK, "local send");
  assert.match(sent.stderr, /embedded local SMTP server on 127\.0\.0\.1:\d+ \(STARTTLS/);
  assert.match(sent.stdout, /^Sent <.+> to reader@postie\.test: 250 /);
  assert.match(sent.stdout, /What the local server received/);
  assert.match(sent.stdout, /\(TLS: true, logged in as: demo\)/);
  assert.match(sent.stdout, /^Subject: Local\r?$/m);
  assertExit(checked, EXIT_OK, "local check");
  assert.match(checked.stdout, /^AUTH: +PLAIN LOGIN$/m);
});

test("the file deno.json exports as ./cli runs with --help, and imported runs nothing", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  const entry: string = config.exports["./cli"];
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", entry, "--help"],
    cwd: root.pathname,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stdout } = await command.output();
  assert.equal(code, EXIT_OK);
  assert.match(new TextDecoder().decode(stdout), /^Usage:\n {2}postie send/m);
  // Imported, the entry only exports: import.meta.main keeps it from running (or exiting).
  const module = await import(new URL(entry, root).href);
  assert.equal(module.main, main);
  assert.equal(module.EXIT_OK, EXIT_OK);
});

test("a directory or a missing file as --text @file or --attach fails before connecting (66)", async () => {
  const dir = await Deno.makeTempDir();
  const common = ["send", "--server", "127.0.0.1:9", "--tls", "none", "--from", "a@example.com"];
  try {
    const [text, missing, attach] = await Promise.all([
      postie([...common, "--to", "b@example.com", "--text", `@${dir}`]),
      postie([...common, "--to", "b@example.com", "--text", `@${dir}/missing.txt`]),
      postie([...common, "--to", "b@example.com", "--attach", dir]),
    ]);
    assertExit(text, EXIT_NO_INPUT, "directory");
    assertOneLineError(text, /Cannot read --text file .+: (not a file|is a directory)$/, "dir");
    assertExit(missing, EXIT_NO_INPUT, "missing");
    assertOneLineError(missing, /Cannot read --text file .+: no such file$/, "missing");
    assertExit(attach, EXIT_NO_INPUT, "attach");
    assertOneLineError(attach, /Cannot attach .+: (not a file|is a directory)$/, "attach");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("--help documents options, exit codes and examples", async () => {
  const [help, sendHelp, none] = await Promise.all([
    postie(["--help"]),
    postie(["send", "--help"]),
    postie([]),
  ]);
  assertExit(help, EXIT_OK, "help");
  for (const flag of ["--server", "--tls", "--ca-file", "--attach", "--dry-run", "--json"]) {
    assert.ok(help.stdout.includes(flag), flag);
  }
  for (const code of [64, 65, 66, 67, 69, 75, 76, 77, 78]) {
    assert.match(help.stdout, new RegExp(`^ +${code}  `, "m"), String(code));
  }
  assert.match(help.stdout, /POSTIE_PASSWORD/);
  assert.match(help.stdout, /^Examples:/m);
  assertExit(sendHelp, EXIT_OK, "send --help");
  assertExit(none, EXIT_USAGE, "no command");
  assertOneLineError(none, /Missing command: send or check \(see --help\)$/, "no command");
});

test("in process: a large message draws a progress bar on a terminal", async () => {
  await using server = await startSmtpServer({ size: 20 * 1024 * 1024 });
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/big.bin`;
    const data = new Uint8Array(1536 * 1024);
    for (let i = 0; i < data.length; i += 65536) {
      crypto.getRandomValues(data.subarray(i, i + 65536));
    }
    await Deno.writeFile(path, data);
    let stdout = "";
    let stderr = "";
    const decoder = new TextDecoder();
    const text = (d: string | Uint8Array) => typeof d === "string" ? d : decoder.decode(d);
    const code = await main([
      "send",
      ...["--server", `localhost:${server.port}`, "--ca-file", CA],
      ...["--from", "me@example.com", "--to", "you@example.com", "--attach", path],
    ], {
      stdout: { write: (d) => void (stdout += text(d)) },
      stderr: { write: (d) => void (stderr += text(d)), isTerminal: true },
      env: {},
    });
    assert.equal(code, EXIT_OK, stderr);
    assert.match(stdout, /^Sent <.+> to you@example\.com: 250 /);
    assert.match(stderr, /Sending \[#{30}\] 100% 2\.\d MB\n$/);
    const received = server.received[0]!;
    assert.match(received.text, /filename=big\.bin/);
    const base64 = received.text.split("\r\n\r\n")[2]!.split("\r\n--")[0]!.replaceAll("\r\n", "");
    assert.deepEqual(new Uint8Array(Buffer.from(base64, "base64")), data);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("Ctrl-C while waiting for the server ends the run with exit 130", async () => {
  let connected!: () => void;
  const reached = new Promise<void>((resolve) => connected = resolve);
  await using silent = startScriptedServer(async (conn) => {
    connected();
    await conn.waitForClose(5000); // never greets
  });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "src/cli/deno.ts", "send", "--tls", "none"].concat(
      ["--server", `127.0.0.1:${silent.port}`, "--from", "a@example.com", "--to", "b@example.com"],
    ),
    cwd: root.pathname,
    env: { POSTIE_USER: "", POSTIE_PASSWORD: "", POSTIE_OAUTH_TOKEN: "" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await reached;
  const started = Date.now();
  child.kill("SIGINT");
  const { code, stderr } = await child.output();
  assert.equal(code, EXIT_INTERRUPTED, new TextDecoder().decode(stderr));
  assert.match(new TextDecoder().decode(stderr), /^postie: Interrupted\n$/);
  assert.ok(Date.now() - started < 3000);
});

test("in process: POSTIE_OAUTH_TOKEN logs in with XOAUTH2 and the token never prints", async () => {
  const TOKEN = "ya29.secret-access-token";
  await using server = await startSmtpServer({
    authMethods: ["XOAUTH2"],
    authOptional: false,
    onAuth(raw, _session, callback) {
      const auth = raw as unknown as { accessToken?: string; username?: string };
      if (auth.accessToken === TOKEN) return callback(null, { user: auth.username });
      callback(null, { data: { status: "401", schemes: "bearer", scope: "mail" } });
    },
  });
  const body = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(body, "Body from a file\n");
    let output = "";
    const write = (d: string | Uint8Array) =>
      void (output += typeof d === "string" ? d : new TextDecoder().decode(d));
    const code = await main([
      "send",
      "--transcript",
      ...["--server", `localhost:${server.port}`, "--ca-file", CA, "--user", "me@example.com"],
      ...["--from", "me@example.com", "--to", "you@example.com", "--text", `@${body}`],
    ], { stdout: { write }, stderr: { write }, env: { POSTIE_OAUTH_TOKEN: TOKEN } });
    assert.equal(code, EXIT_OK, output);
    assert.match(output, /^C: AUTH XOAUTH2 \[redacted\]$/m);
    assert.ok(!output.includes(TOKEN));
    assert.ok(!output.includes(btoa(`user=me@example.com\x01auth=Bearer ${TOKEN}\x01\x01`)));
    assert.equal(server.received[0]!.user, "me@example.com");
    assert.match(server.received[0]!.text, /Body from a file/);
  } finally {
    await Deno.remove(body);
  }
});
