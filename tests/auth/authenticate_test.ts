import assert from "node:assert/strict";
import {
  authenticate,
  type AuthOptions,
  cramMd5,
  DEFAULT_PASSWORD_MECHANISMS,
  digestMd5,
  type SaslMechanism,
  scramSha256,
} from "../../src/auth/mod.ts";
import { MAX_CHALLENGES } from "../../src/auth/authenticate.ts";
import { SmtpAuthError, SmtpProtocolError, SmtpUnsupportedError } from "../../src/errors.ts";
import type { SmtpReply } from "../../src/types.ts";
import { test } from "../_helpers/test.ts";

const b64 = (s: string) => btoa(s);

/** One expected client line (exact, or a pattern), its secret flag, and the server's reply. */
type Step = [line: string | RegExp, secret: boolean, reply: SmtpReply];

/** A scripted conversation that checks every line and its `secret` flag, in order. */
function scripted(steps: Step[]) {
  let i = 0;
  return {
    lines: [] as string[],
    done() {
      assert.equal(i, steps.length, `${steps.length - i} scripted step(s) never ran`);
    },
    exchange(line: string, options?: { readonly secret?: boolean }): Promise<SmtpReply> {
      const step = steps[i++];
      if (!step) return Promise.reject(new Error(`Unexpected line: ${line}`));
      const [expected, secret, reply] = step;
      if (typeof expected === "string") assert.equal(line, expected, `line ${i}`);
      else assert.match(line, expected, `line ${i}`);
      assert.equal(options?.secret ?? false, secret, `secret flag of line ${i}: ${line}`);
      this.lines.push(line);
      return Promise.resolve(reply);
    },
  };
}

const context = (offered: string[], extra: { hostname?: string; signal?: AbortSignal } = {}) => ({
  offered,
  hostname: "mx.example",
  port: 587,
  ...extra,
});
const reply = (code: number, text: string, status?: string): SmtpReply => {
  if (!status) return { code, lines: [text] };
  const [c, s, d] = status.split(".").map(Number) as [number, number, number];
  return { code, enhancedStatus: { class: c, subject: s, detail: d }, lines: [text] };
};
const ok = reply(235, "Authentication successful", "2.7.0");
const denied = reply(535, "Authentication credentials invalid", "5.7.8");
const challenge = (text: string) => reply(334, b64(text));
const cancelled = reply(501, "Authentication cancelled", "5.5.2");

/** Asserts that `error` holds no trace of the given secrets, however it is shown. */
function assertNoSecret(error: unknown, ...secrets: string[]) {
  const shown = [
    String(error),
    (error as Error).message,
    (error as Error).stack ?? "",
    JSON.stringify(error),
    Deno.inspect(error, { depth: 10 }),
    (error as { command?: string }).command ?? "",
  ].join("\n");
  for (const secret of secrets) {
    assert.equal(shown.includes(secret), false, `${secret} shown in ${shown}`);
    assert.equal(shown.includes(b64(secret).slice(0, 8)), false, `base64 of ${secret} shown`);
  }
}

// --- choosing a mechanism -----------------------------------------------------------------------

test("authenticate() picks the strongest password mechanism both sides support", async () => {
  const cases: [string[], RegExp][] = [
    [["LOGIN", "PLAIN", "CRAM-MD5", "SCRAM-SHA-256", "DIGEST-MD5"], /^AUTH SCRAM-SHA-256 /],
    [["PLAIN", "LOGIN", "CRAM-MD5"], /^AUTH CRAM-MD5$/],
    [["LOGIN", "PLAIN"], /^AUTH PLAIN /],
    [["LOGIN", "DIGEST-MD5"], /^AUTH LOGIN$/],
    [["login", "plain"], /^AUTH PLAIN /],
  ];
  for (const [offered, first] of cases) {
    const lines: string[] = [];
    await assert.rejects(
      authenticate(
        { exchange: (line) => (lines.push(line), Promise.resolve(denied)) },
        { username: "u", password: "p" },
        context(offered),
      ),
      SmtpAuthError,
    );
    assert.match(lines[0]!, first, offered.join(" "));
  }
  assert.deepEqual(DEFAULT_PASSWORD_MECHANISMS, ["SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN"]);
});

test("authenticate() follows the caller's order of mechanisms, and DIGEST-MD5 when named", async () => {
  const login = scripted([["AUTH LOGIN", false, denied]]);
  await assert.rejects(
    authenticate(
      login,
      { username: "u", password: "p", mechanisms: ["LOGIN", "PLAIN"] },
      context(["PLAIN", "LOGIN", "CRAM-MD5"]),
    ),
    SmtpAuthError,
  );
  login.done();
  const digest = scripted([["AUTH DIGEST-MD5", false, denied]]);
  await assert.rejects(
    authenticate(
      digest,
      { username: "u", password: "p", mechanisms: ["DIGEST-MD5", "PLAIN"] },
      context(["PLAIN", "DIGEST-MD5"]),
    ),
    SmtpAuthError,
  );
  digest.done();
});

test("authenticate() lists what the server offers when nothing matches, and sends nothing", async () => {
  const nothing = scripted([]);
  const error = await authenticate(
    nothing,
    { username: "u", password: "p" },
    context(["GSSAPI", "NTLM"]),
  ).catch((e) => e);
  assert.ok(error instanceof SmtpUnsupportedError);
  assert.equal(error.extension, "AUTH");
  assert.equal(error.phase, "auth");
  assert.equal(
    error.message,
    "No usable authentication mechanism: the server offers GSSAPI, NTLM, the client would use " +
      "SCRAM-SHA-256, CRAM-MD5, PLAIN, LOGIN",
  );
  await assert.rejects(
    authenticate(nothing, { username: "u", password: "p" }, context(["DIGEST-MD5"])),
    (e: unknown) =>
      e instanceof SmtpUnsupportedError && /DIGEST-MD5 is used only when named/.test(e.message),
  );
  await assert.rejects(
    authenticate(nothing, { username: "u", token: "t" }, context(["PLAIN"])),
    (e: unknown) =>
      e instanceof SmtpUnsupportedError &&
      /offers PLAIN, the client would use XOAUTH2$/.test(e.message),
  );
  await assert.rejects(
    authenticate(
      nothing,
      { username: "u", token: "t", mechanism: "OAUTHBEARER" },
      context(["XOAUTH2"]),
    ),
    /the client would use OAUTHBEARER/,
  );
  await assert.rejects(
    authenticate(nothing, { sasl: cramMd5("u", "p") }, context([])),
    /the server offers none, the client would use CRAM-MD5/,
  );
  nothing.done();
});

test("authenticate() refuses bad input with TypeError before sending anything", async () => {
  const nothing = scripted([]);
  const offered = context(["PLAIN", "X"]);
  const bad: unknown[] = [
    null,
    {},
    { username: "u", password: "p", mechanisms: [] },
    { username: "u", password: "p", mechanisms: ["PLAIN", "NTLM"] },
    { username: 1, password: "p" },
    { username: "u", password: undefined },
    { username: "u", token: 42 },
    { username: "u", token: "t", mechanism: "PLAIN" },
    { sasl: { name: "plain", start: () => Promise.resolve(null), next: () => Promise.resolve() } },
    { sasl: { name: "X\r\nMAIL", start: () => Promise.resolve(null) } },
    { username: "u\r\nMAIL FROM:<a@b>", password: "p" },
  ];
  for (const auth of bad) {
    await assert.rejects(
      authenticate(nothing, auth as AuthOptions, offered),
      TypeError,
      JSON.stringify(auth),
    );
  }
  nothing.done();
});

// --- the exchange -------------------------------------------------------------------------------

test("authenticate() sends PLAIN as an initial response marked secret", async () => {
  const conversation = scripted([[`AUTH PLAIN ${b64("\0tim\0tanstaaftanstaaf")}`, true, ok]]);
  const result = await authenticate(
    conversation,
    { username: "tim", password: "tanstaaftanstaaf", mechanisms: ["PLAIN"] },
    context(["PLAIN", "LOGIN"]),
  );
  assert.deepEqual(result, ok);
  conversation.done();
});

test("authenticate() without SASL-IR sends AUTH alone and the initial response after 334", async () => {
  const conversation = scripted([
    ["AUTH PLAIN", false, reply(334, "")],
    [b64("\0tim\0tanstaaftanstaaf"), true, ok],
  ]);
  await authenticate(
    conversation,
    { username: "tim", password: "tanstaaftanstaaf" },
    { ...context(["PLAIN"]), initialResponse: false },
  );
  conversation.done();
});

test("authenticate() sends an empty initial response as '='", async () => {
  const external: SaslMechanism = {
    name: "EXTERNAL",
    start: () => Promise.resolve(new Uint8Array()),
    next: () => Promise.reject(new Error("no challenge expected")),
  };
  const conversation = scripted([["AUTH EXTERNAL =", false, ok]]);
  await authenticate(conversation, { sasl: external }, context(["EXTERNAL"]));
  conversation.done();
});

test("authenticate() runs LOGIN over two challenges, each answer secret", async () => {
  const conversation = scripted([
    ["AUTH LOGIN", false, challenge("Username:")],
    [b64("tim"), true, challenge("Password:")],
    [b64("tanstaaftanstaaf"), true, ok],
  ]);
  await authenticate(
    conversation,
    { username: "tim", password: "tanstaaftanstaaf", mechanisms: ["LOGIN"] },
    context(["LOGIN", "PLAIN"]),
  );
  conversation.done();
});

test("authenticate() answers the RFC 2195 CRAM-MD5 challenge", async () => {
  const conversation = scripted([
    ["AUTH CRAM-MD5", false, challenge("<1896.697170952@postoffice.reston.mci.net>")],
    ["dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw", true, ok],
  ]);
  await authenticate(
    conversation,
    { username: "tim", password: "tanstaaftanstaaf" },
    context(["PLAIN", "CRAM-MD5"]),
  );
  conversation.done();
});

const scramFirst =
  "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const scramFinal =
  "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const scramSignature = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
const rfc7677 = () => scramSha256("user", "pencil", { nonce: "rOprNGfwEbeRWgbNEkqO" });

test("authenticate() runs RFC 7677's SCRAM-SHA-256 exchange and checks the server signature", async () => {
  const conversation = scripted([
    [`AUTH SCRAM-SHA-256 ${b64("n,,n=user,r=rOprNGfwEbeRWgbNEkqO")}`, true, challenge(scramFirst)],
    [b64(scramFinal), true, challenge(scramSignature)],
    ["", true, ok],
  ]);
  await authenticate(conversation, { sasl: rfc7677() }, context(["SCRAM-SHA-256"]));
  conversation.done();
});

test("authenticate() cancels SCRAM-SHA-256 with * when the server signature is wrong", async () => {
  const conversation = scripted([
    [/^AUTH SCRAM-SHA-256 /, true, challenge(scramFirst)],
    [b64(scramFinal), true, challenge("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")],
    ["*", false, cancelled],
  ]);
  const error = await authenticate(conversation, { sasl: rfc7677() }, context(["SCRAM-SHA-256"]))
    .catch((e) => e);
  assert.ok(error instanceof SmtpAuthError);
  assert.match(error.message, /^SCRAM-SHA-256 failed on the client side: .*signature is wrong/);
  assert.equal(error.command, "AUTH SCRAM-SHA-256");
  assert.deepEqual(error.reply, cancelled);
  assert.ok(error.cause instanceof Error);
  conversation.done();
});

test("authenticate() fails SCRAM-SHA-256 when the server says 235 without its signature", async () => {
  const conversation = scripted([
    [/^AUTH SCRAM-SHA-256 /, true, challenge(scramFirst)],
    [b64(scramFinal), true, ok],
  ]);
  const error = await authenticate(conversation, { sasl: rfc7677() }, context(["SCRAM-SHA-256"]))
    .catch((e) => e);
  assert.ok(error instanceof SmtpAuthError);
  assert.equal(error.code, 235);
  assert.match(error.message, /proof did not verify.*without proving it knows the password/);
  conversation.done();
});

test("authenticate() takes the SCRAM-SHA-256 server signature from the 235 reply's data", async () => {
  const good = scripted([
    [/^AUTH SCRAM-SHA-256 /, true, challenge(scramFirst)],
    [b64(scramFinal), true, reply(235, b64(scramSignature), "2.7.0")],
  ]);
  await authenticate(good, { sasl: rfc7677() }, context(["SCRAM-SHA-256"]));
  good.done();
  const forged = scripted([
    [/^AUTH SCRAM-SHA-256 /, true, challenge(scramFirst)],
    [b64(scramFinal), true, reply(235, b64("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))],
  ]);
  await assert.rejects(
    authenticate(forged, { sasl: rfc7677() }, context(["SCRAM-SHA-256"])),
    (e: unknown) => e instanceof SmtpAuthError && /signature is wrong/.test(e.message),
  );
});

test("authenticate() gives verify() the 235 data, else the last challenge, else nothing", async () => {
  const received: string[] = [];
  const recorder = (): SaslMechanism => ({
    name: "X-TEST",
    start: () => Promise.resolve(null),
    next: () => Promise.resolve(new Uint8Array()),
    verify: (success) => (received.push(new TextDecoder().decode(success)), Promise.resolve()),
  });
  const runs: Step[][] = [
    [["AUTH X-TEST", false, challenge("first")], ["", true, reply(235, b64("final=data"))]],
    [["AUTH X-TEST", false, challenge("first")], ["", true, reply(235, "Accepted", "2.7.0")]],
    [["AUTH X-TEST", false, reply(235, "2.7.0 OK")]],
  ];
  for (const steps of runs) {
    await authenticate(scripted(steps), { sasl: recorder() }, context(["X-TEST"]));
  }
  assert.deepEqual(received, ["final=data", "first", ""]);
});

test("authenticate() runs DIGEST-MD5 and checks rspauth (RFC 2831's example)", async () => {
  const challengeText = 'realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",' +
    "algorithm=md5-sess,charset=utf-8";
  const mechanism = () =>
    digestMd5("chris", "secret", "elwood.innosoft.com", {
      cnonce: "OA6MHXh6VqTrRk",
      service: "imap",
    });
  const good = scripted([
    ["AUTH DIGEST-MD5", false, challenge(challengeText)],
    [/^[A-Za-z0-9+/]+=*$/, true, challenge("rspauth=ea40f60335c427b5527b84dbabcdfffd")],
    ["", true, ok],
  ]);
  await authenticate(good, { sasl: mechanism() }, context(["DIGEST-MD5"]));
  assert.match(atob(good.lines[1]!), /response=d388dad90d4bbd760a152321f2143af7/);
  good.done();
  const forged = scripted([
    ["AUTH DIGEST-MD5", false, challenge(challengeText)],
    [/./, true, challenge("rspauth=00000000000000000000000000000000")],
    ["*", false, cancelled],
  ]);
  await assert.rejects(
    authenticate(forged, { sasl: mechanism() }, context(["DIGEST-MD5"])),
    (e: unknown) => e instanceof SmtpAuthError && /rspauth is wrong/.test(e.message),
  );
  forged.done();
  const silent = scripted([
    ["AUTH DIGEST-MD5", false, challenge(challengeText)],
    [/./, true, ok],
  ]);
  await assert.rejects(
    authenticate(silent, { sasl: mechanism() }, context(["DIGEST-MD5"])),
    (e: unknown) => e instanceof SmtpAuthError && /without proving/.test(e.message),
  );
});

test("authenticate() cancels with * when a mechanism fails on the client side", async () => {
  const conversation = scripted([
    [/^AUTH SCRAM-SHA-256 \S+$/, true, challenge("r=foreign,s=QUJD,i=4096")],
    ["*", false, cancelled],
  ]);
  const error = await authenticate(
    conversation,
    { username: "u", password: "p" },
    context(["SCRAM-SHA-256"]),
  ).catch((e) => e);
  assert.ok(error instanceof SmtpAuthError);
  assert.match(error.message, /^SCRAM-SHA-256 failed on the client side: .*nonce/);
  assert.equal(error.reply.code, 501);
  conversation.done();
});

test("authenticate() gives up after MAX_CHALLENGES challenges and cancels", async () => {
  assert.equal(MAX_CHALLENGES, 10);
  const endless: SaslMechanism = {
    name: "X-ENDLESS",
    start: () => Promise.resolve(null),
    next: () => Promise.resolve(new TextEncoder().encode("more")),
  };
  const steps: Step[] = [["AUTH X-ENDLESS", false, challenge("again")]];
  for (let i = 1; i < MAX_CHALLENGES; i++) steps.push([b64("more"), true, challenge("again")]);
  steps.push([b64("more"), true, challenge("again")], ["*", false, cancelled]);
  const conversation = scripted(steps);
  await assert.rejects(
    authenticate(conversation, { sasl: endless }, context(["X-ENDLESS"])),
    (e: unknown) =>
      e instanceof SmtpAuthError && /sent more than 10 challenges/.test(e.message) &&
      e.command === "AUTH X-ENDLESS",
  );
  conversation.done();
  assert.equal(conversation.lines.filter((line) => line === b64("more")).length, 10);
});

test("authenticate() cancels and reports a protocol error for a challenge that is not base64", async () => {
  const conversation = scripted([
    ["AUTH LOGIN", false, reply(334, "Username:")],
    ["*", false, cancelled],
  ]);
  await assert.rejects(
    authenticate(
      conversation,
      { username: "u", password: "p", mechanisms: ["LOGIN"] },
      context(["LOGIN"]),
    ),
    (e: unknown) =>
      e instanceof SmtpProtocolError && e.phase === "auth" && /not base64/.test(e.message),
  );
  conversation.done();
});

test("authenticate() turns every failure reply into SmtpAuthError with the reply", async () => {
  const failures = [
    reply(535, "Authentication credentials invalid", "5.7.8"),
    reply(534, "Authentication mechanism is too weak", "5.7.9"),
    reply(538, "Encryption required for requested authentication mechanism", "5.7.11"),
    reply(454, "Temporary authentication failure", "4.7.0"),
    reply(504, "Unrecognized authentication type", "5.5.4"),
    reply(421, "Service not available, closing channel"),
    reply(250, "What?"),
  ];
  for (const failure of failures) {
    const error = await authenticate(
      scripted([[/^AUTH PLAIN /, true, failure]]),
      { username: "u", password: "p" },
      context(["PLAIN"]),
    ).catch((e) => e);
    assert.ok(error instanceof SmtpAuthError, String(error));
    assert.equal(error.reply, failure);
    assert.equal(error.command, "AUTH PLAIN");
    assert.equal(error.phase, "auth");
    assert.equal(error.temporary, failure.code >= 400 && failure.code < 500);
    assert.ok(error.message.startsWith("Authentication with PLAIN failed: "), error.message);
  }
});

test("authenticate() never puts a credential into an error", async () => {
  const password = "hunter2-very-secret";
  const token = "ya29.hunter2-token";
  const runs: [AuthOptions, string[], Step[]][] = [
    [{ username: "u", password, mechanisms: ["PLAIN"] }, ["PLAIN"], [[
      /^AUTH PLAIN /,
      true,
      denied,
    ]]],
    [{ username: "u", password, mechanisms: ["LOGIN"] }, ["LOGIN"], [
      ["AUTH LOGIN", false, challenge("Username:")],
      [b64("u"), true, challenge("Password:")],
      [b64(password), true, denied],
    ]],
    [{ username: "u", password, mechanisms: ["LOGIN"] }, ["LOGIN"], [
      ["AUTH LOGIN", false, challenge("Username:")],
      [b64("u"), true, challenge("Password:")],
      [b64(password), true, challenge("Again:")],
      ["*", false, cancelled],
    ]],
    [{ username: "u", token }, ["XOAUTH2"], [
      [/^AUTH XOAUTH2 /, true, challenge('{"status":"401","schemes":"bearer"}')],
      ["", true, denied],
    ]],
  ];
  for (const [auth, offered, steps] of runs) {
    const error = await authenticate(scripted(steps), auth, context(offered)).catch((e) => e);
    assert.ok(error instanceof SmtpAuthError);
    assertNoSecret(error, password, token, `\0u\0${password}`, `user=u\x01auth=Bearer ${token}`);
  }
});

test("authenticate() rejects with the abort reason once the signal is aborted", async () => {
  const controller = new AbortController();
  controller.abort(new DOMException("Stop", "AbortError"));
  await assert.rejects(
    authenticate(
      scripted([]),
      { username: "u", password: "p" },
      context(["PLAIN"], { signal: controller.signal }),
    ),
    /Stop/,
  );
  const late = new AbortController();
  const conversation = scripted([["AUTH LOGIN", false, challenge("Username:")]]);
  const exchange = conversation.exchange.bind(conversation);
  conversation.exchange = (line, options) => {
    late.abort(new Error("Aborted in the middle"));
    return exchange(line, options);
  };
  await assert.rejects(
    authenticate(
      conversation,
      { username: "u", password: "p", mechanisms: ["LOGIN"] },
      context(["LOGIN"], { signal: late.signal }),
    ),
    /Aborted in the middle/,
  );
});

// --- OAuth2 -------------------------------------------------------------------------------------

const xoauth2Line = (token: string) =>
  `AUTH XOAUTH2 ${b64(`user=me@example.com\x01auth=Bearer ${token}\x01\x01`)}`;
const oauthError = challenge(
  '{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}',
);

test("authenticate() refreshes an OAuth2 token once after an XOAUTH2 error challenge and 535", async () => {
  const requests: boolean[] = [];
  const auth: AuthOptions = {
    username: "me@example.com",
    token: ({ refresh }) => {
      requests.push(refresh);
      return Promise.resolve(refresh ? "fresh" : "stale");
    },
  };
  const conversation = scripted([
    [xoauth2Line("stale"), true, oauthError],
    ["", true, denied],
    [xoauth2Line("fresh"), true, ok],
  ]);
  assert.deepEqual(await authenticate(conversation, auth, context(["PLAIN", "XOAUTH2"])), ok);
  assert.deepEqual(requests, [false, true]);
  conversation.done();
});

test("authenticate() refreshes at most once, and reports the server's JSON error", async () => {
  const requests: boolean[] = [];
  const conversation = scripted([
    [xoauth2Line("t1"), true, oauthError],
    ["", true, denied],
    [xoauth2Line("t2"), true, oauthError],
    ["", true, denied],
  ]);
  const error = await authenticate(
    conversation,
    {
      username: "me@example.com",
      token: ({ refresh }) => (requests.push(refresh), Promise.resolve(`t${requests.length}`)),
    },
    context(["XOAUTH2"]),
  ).catch((e) => e);
  assert.ok(error instanceof SmtpAuthError);
  assert.match(
    error.message,
    /^Authentication with XOAUTH2 failed: 535 5\.7\.8 .* \(server said \{"status":"401"/,
  );
  assert.deepEqual(requests, [false, true]);
  conversation.done();
});

test("authenticate() refreshes after a plain 535 too, but not for a fixed token", async () => {
  let calls = 0;
  const refreshed = scripted([[xoauth2Line("t1"), true, denied], [xoauth2Line("t2"), true, ok]]);
  await authenticate(
    refreshed,
    { username: "me@example.com", token: () => Promise.resolve(`t${++calls}`) },
    context(["XOAUTH2"]),
  );
  refreshed.done();
  const fixed = scripted([[xoauth2Line("t"), true, oauthError], ["", true, denied]]);
  await assert.rejects(
    authenticate(fixed, { username: "me@example.com", token: "t" }, context(["XOAUTH2"])),
    SmtpAuthError,
  );
  fixed.done();
});

test("authenticate() does not refresh after a temporary failure or a client-side failure", async () => {
  for (
    const steps of [
      [[xoauth2Line("t1"), true, reply(454, "Temporary authentication failure", "4.7.0")]],
      [[xoauth2Line("t1"), true, reply(504, "Unrecognized authentication type", "5.5.4")]],
      [[xoauth2Line("t1"), true, oauthError], ["", true, oauthError], ["*", false, denied]],
    ] as Step[][]
  ) {
    let calls = 0;
    const conversation = scripted(steps);
    await assert.rejects(
      authenticate(
        conversation,
        { username: "me@example.com", token: () => Promise.resolve(`t${++calls}`) },
        context(["XOAUTH2"]),
      ),
      SmtpAuthError,
    );
    assert.equal(calls, 1);
    conversation.done();
  }
});

test("authenticate() passes the signal to the token function and checks what it returns", async () => {
  const controller = new AbortController();
  let seen: AbortSignal | undefined;
  await authenticate(
    scripted([[xoauth2Line("t"), true, ok]]),
    { username: "me@example.com", token: ({ signal }) => ((seen = signal), Promise.resolve("t")) },
    context(["XOAUTH2"], { signal: controller.signal }),
  );
  assert.equal(seen, controller.signal);
  await assert.rejects(
    authenticate(
      scripted([]),
      { username: "u", token: () => Promise.resolve("") },
      context(["XOAUTH2"]),
    ),
    TypeError,
  );
});

const bearer = (token: string) =>
  `AUTH OAUTHBEARER ${
    b64(`n,a=me@example.com,\x01host=mx.example\x01port=587\x01auth=Bearer ${token}\x01\x01`)
  }`;

test("authenticate() uses OAUTHBEARER when it is all the server offers, or when named", async () => {
  const only = scripted([[bearer("tok"), true, ok]]);
  await authenticate(only, { username: "me@example.com", token: "tok" }, context(["OAUTHBEARER"]));
  only.done();
  const named = scripted([[bearer("tok"), true, ok]]);
  await authenticate(
    named,
    { username: "me@example.com", token: "tok", mechanism: "OAUTHBEARER" },
    context(["XOAUTH2", "OAUTHBEARER"]),
  );
  named.done();
  const preferred = scripted([[xoauth2Line("tok"), true, ok]]);
  await authenticate(
    preferred,
    { username: "me@example.com", token: "tok" },
    context(["OAUTHBEARER", "XOAUTH2"]),
  );
  preferred.done();
});

test("authenticate() answers an OAUTHBEARER error challenge with ^A, then refreshes", async () => {
  const requests: boolean[] = [];
  const conversation = scripted([
    [bearer("stale"), true, challenge('{"status":"invalid_token","scope":"mail"}')],
    ["AQ==", true, reply(535, "Authentication failed", "5.7.8")],
    [bearer("fresh"), true, ok],
  ]);
  await authenticate(
    conversation,
    {
      username: "me@example.com",
      token: (
        { refresh },
      ) => (requests.push(refresh), Promise.resolve(refresh ? "fresh" : "stale")),
      mechanism: "OAUTHBEARER",
    },
    context(["OAUTHBEARER"]),
  );
  assert.deepEqual(requests, [false, true]);
  conversation.done();
});

// --- provider hints -----------------------------------------------------------------------------

const gmail535 = {
  code: 535,
  enhancedStatus: { class: 5, subject: 7, detail: 8 },
  lines: [
    "Username and Password not accepted. For more information, go to",
    "https://support.google.com/mail/?p=BadCredentials a1-20020a05",
  ],
};

async function failureMessage(failure: SmtpReply, hostname = "mx.example"): Promise<string> {
  const error = await authenticate(
    scripted([[/^AUTH PLAIN /, true, failure]]),
    { username: "u", password: "p" },
    context(["PLAIN"], { hostname }),
  ).catch((e) => e);
  assert.ok(error instanceof SmtpAuthError);
  return error.message;
}

test("authenticate() adds a hint to Gmail's refusals", async () => {
  assert.equal(
    await failureMessage(gmail535),
    "Authentication with PLAIN failed: 535 5.7.8 Username and Password not accepted. For more " +
      "information, go to https://support.google.com/mail/?p=BadCredentials a1-20020a05 " +
      "(hint: Gmail requires an app password or OAuth2 (XOAUTH2))",
  );
  assert.match(
    await failureMessage(
      reply(534, "Please log in with your web browser", "5.7.14"),
      "smtp.gmail.com",
    ),
    /\(hint: Gmail requires an app password or OAuth2 \(XOAUTH2\)\)$/,
  );
});

test("authenticate() adds a hint to Office 365's refusals", async () => {
  const hint = "(hint: basic authentication is disabled for this tenant: use OAuth2 (XOAUTH2))";
  const messages = [
    await failureMessage(
      reply(
        535,
        "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.",
        "5.7.139",
      ),
    ),
    await failureMessage(
      reply(535, "Authentication unsuccessful [AM0PR02CA0001.eurprd02.prod.outlook.com]", "5.7.3"),
    ),
    await failureMessage(reply(535, "Authentication unsuccessful", "5.7.3"), "smtp.office365.com"),
  ];
  for (const message of messages) assert.ok(message.endsWith(hint), message);
});

test("authenticate() adds no hint to other servers' refusals", async () => {
  for (
    const [failure, hostname] of [
      [reply(535, "Error: authentication failed", "5.7.8"), "mail.example.org"],
      [reply(535, "Authentication unsuccessful", "5.7.3"), "exchange.example.org"],
      [reply(535, "Authentication failed"), "smtp.gmail.com"],
    ] as [SmtpReply, string][]
  ) {
    assert.doesNotMatch(await failureMessage(failure, hostname), /hint/);
  }
});
