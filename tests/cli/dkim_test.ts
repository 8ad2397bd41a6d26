/**
 * `postie send --dkim-domain D --dkim-selector S --dkim-key FILE...`: the flags parsed and
 * paired, the key files read and checked before connecting, and what the server receives (or
 * `--dry-run` prints) verified by mailauth.
 */
import assert from "node:assert/strict";
import { parseCommandLine } from "../../src/cli/_args.ts";
import { EXIT_DATA, EXIT_NO_INPUT, EXIT_OK, UsageError } from "../../src/cli/exit_codes.ts";
import { startSmtpServer } from "../_helpers/smtp_server.ts";
import { test } from "../_helpers/test.ts";
import { assertVerifies, dnsRecord, ed25519Pem, fixtureKey } from "../dkim/_dkim.ts";

const root = new URL("../../", import.meta.url);
const fixtures = new URL("tests/fixtures/dkim/", root).pathname;
const CA = new URL("tests/fixtures/certs/ca.pem", root).pathname;

async function postie(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "src/cli/deno.ts", ...args],
    cwd: root.pathname,
    env: { POSTIE_SERVER: "", POSTIE_USER: "", POSTIE_PASSWORD: "", NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

const base = ["send", "--from", "me@example.com", "--to", "you@example.net", "--text", "Hi."];

test("--dkim-selector pairs with --dkim-key: one for all, or one each in order", () => {
  const one = parseCommandLine(
    [
      ...base,
      "--dkim-domain",
      "example.com",
      "--dkim-selector",
      "s",
      "--dkim-key",
      "a.pem",
      "--dkim-key",
      "b.pem",
    ],
    {},
  );
  assert.deepEqual(one.command === "send" && one.dkim, {
    domain: "example.com",
    keys: [{ path: "a.pem", selector: "s" }, { path: "b.pem", selector: "s" }],
  });
  const each = parseCommandLine(
    [
      ...base,
      "--dkim-domain",
      "example.com",
      "--dkim-key",
      "a.pem",
      "--dkim-selector",
      "rsa",
      "--dkim-key",
      "b.pem",
      "--dkim-selector",
      "ed",
    ],
    {},
  );
  assert.deepEqual(each.command === "send" && each.dkim && each.dkim.keys, [
    { path: "a.pem", selector: "rsa" },
    { path: "b.pem", selector: "ed" },
  ]);
  const none = parseCommandLine(base, {});
  assert.equal(none.command === "send" && none.dkim, undefined);
  const usage: [string[], RegExp][] = [
    [["--dkim-key", "a.pem", "--dkim-selector", "s"], /needs --dkim-domain/],
    [["--dkim-domain", "example.com", "--dkim-selector", "s"], /needs --dkim-key FILE/],
    [["--dkim-domain", "example.com", "--dkim-key", "a.pem"], /needs --dkim-selector/],
    [
      [
        "--dkim-domain",
        "d.example",
        "--dkim-key",
        "a",
        "--dkim-key",
        "b",
        "--dkim-key",
        "c",
        "--dkim-selector",
        "x",
        "--dkim-selector",
        "y",
      ],
      /one --dkim-selector for all --dkim-key files, or one per file \(3\)/,
    ],
  ];
  for (const [flags, pattern] of usage) {
    assert.throws(() => parseCommandLine([...base, ...flags], {}), (error: Error) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, pattern);
      return true;
    });
  }
  assert.throws(
    () => parseCommandLine(["check", "--server", "x", "--dkim-domain", "example.com"], {}),
    /--dkim-domain is an option of send, not of check/,
  );
});

test("send signs with every --dkim-key (RSA PKCS#1 and Ed25519); --dry-run prints it signed", async () => {
  await using server = await startSmtpServer();
  const dir = await Deno.makeTempDir();
  try {
    const edKey = `${dir}/ed25519.pem`;
    const edPem = await ed25519Pem();
    await Deno.writeTextFile(edKey, edPem);
    const dns = {
      "rsa._domainkey.example.com": await dnsRecord(fixtureKey("rsa2048-pkcs8.pem")),
      "ed._domainkey.example.com": await dnsRecord(edPem),
    };
    const dkim = [
      "--dkim-domain",
      "example.com",
      "--dkim-key",
      `${fixtures}rsa2048-pkcs1.pem`,
      "--dkim-selector",
      "rsa",
      "--dkim-key",
      edKey,
      "--dkim-selector",
      "ed",
    ];
    const [sent, dry] = await Promise.all([
      postie([
        ...base,
        "--server",
        `127.0.0.1:${server.port}`,
        "--tls",
        "none",
        "--subject",
        "Grüße",
        ...dkim,
      ]),
      postie([...base, "--dry-run", "--subject", "Grüße", ...dkim]),
    ]);
    assert.equal(sent.code, EXIT_OK, sent.stderr);
    await assertVerifies(server.received[0]!.raw, dns, ["rsa", "ed"]);
    assert.equal(dry.code, EXIT_OK, dry.stderr);
    assert.match(dry.stdout, /^DKIM-Signature: v=1; a=rsa-sha256;/);
    await assertVerifies(dry.stdout, dns, ["rsa", "ed"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("a --dkim-key that is missing, not a key, or too weak fails before connecting", async () => {
  const flags = (key: string) => [
    ...base,
    "--server",
    "127.0.0.1:9",
    "--tls",
    "none",
    "--dkim-domain",
    "example.com",
    "--dkim-selector",
    "s",
    "--dkim-key",
    key,
  ];
  const [missing, certificate, weak, selector] = await Promise.all([
    postie(flags("/nonexistent/key.pem")),
    postie(flags(CA)),
    postie(flags(`${fixtures}rsa512-pkcs1.pem`)),
    postie([
      ...flags(`${fixtures}ed25519.pem`).slice(0, -4),
      "--dkim-selector",
      "a b",
      "--dkim-key",
      `${fixtures}ed25519.pem`,
    ]),
  ]);
  assert.equal(missing.code, EXIT_NO_INPUT, missing.stderr);
  assert.match(
    missing.stderr,
    /^postie: Cannot read --dkim-key \/nonexistent\/key\.pem: no such file$/m,
  );
  assert.equal(certificate.code, EXIT_DATA, certificate.stderr);
  assert.match(
    certificate.stderr,
    /^postie: Invalid --dkim-key .*ca\.pem: it is a certificate, not a private key$/m,
  );
  assert.equal(weak.code, EXIT_DATA, weak.stderr);
  assert.match(weak.stderr, /RSA keys need at least 1024 bits \(RFC 8301\), this one has 512/);
  assert.equal(selector.code, EXIT_DATA, selector.stderr);
  assert.match(selector.stderr, /^postie: Invalid --dkim-selector "a b"/m);
  // None of them got as far as connecting (port 9 would have refused).
  for (const run of [missing, certificate, weak, selector]) {
    assert.doesNotMatch(run.stderr, /connect/i);
  }
});
