/**
 * Secrets stay secret: a password and an OAuth2 token never show in what a program is likely
 * to print or log. Not in `String()`, `JSON.stringify()` or `Deno.inspect()` (and
 * `node:util.inspect`) of a logged-in client, of a pool built with the password, of the error
 * of a refused login, nor in any transcript event. The real `smtp-server` plays the server,
 * over STARTTLS, for every password mechanism it has and for XOAUTH2.
 */

import assert from "node:assert/strict";
import { inspect } from "node:util";
import {
  type AuthOptions,
  type PasswordMechanism,
  SmtpAuthError,
  SmtpClient,
  SmtpPool,
  type TranscriptEvent,
} from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { type AuthSession, startSmtpServer, testCa } from "../_helpers/smtp_server.ts";

const USER = "me@example.com";
const PASSWORD = "hunter2-SECRET";
const TOKEN = "ya29.TOKEN-SECRET";

/**
 * The base64 text that every base64 encoding of a payload containing `secret` contains, for
 * each of the three alignments the secret can have in it (AUTH PLAIN, LOGIN and XOAUTH2 send
 * the secret in base64, inside a longer payload).
 */
function base64Cores(secret: string): string[] {
  return [0, 1, 2].map((offset) => {
    const encoded = btoa("\0".repeat(offset) + secret);
    const wholeGroups = Math.floor((offset + secret.length) / 3);
    return encoded.slice(offset === 0 ? 0 : 4, wholeGroups * 4);
  });
}

/** The forms in which a secret could show. */
const forbidden = [
  PASSWORD,
  TOKEN,
  "SECRET",
  "hunter2",
  "ya29",
  ...base64Cores(PASSWORD),
  ...base64Cores(TOKEN),
];

/** Asserts that no secret shows in `text`. */
function assertNoSecret(where: string, text: string): void {
  for (const secret of forbidden) {
    assert.equal(text.includes(secret), false, `${where} shows ${JSON.stringify(secret)}`);
  }
}

/** Every way a program commonly turns a value into text. */
function renderings(value: unknown): [string, string][] {
  const shown: [string, string][] = [
    ["String()", String(value)],
    ["Deno.inspect depth 10", Deno.inspect(value, { depth: 10, showHidden: false })],
    ["Deno.inspect depth 10 showHidden", Deno.inspect(value, { depth: 10, showHidden: true })],
    [
      "Deno.inspect depth 10 showHidden getters",
      Deno.inspect(value, { depth: 10, showHidden: true, getters: true }),
    ],
    ["node:util inspect showHidden", inspect(value, { depth: 10, showHidden: true })],
  ];
  try {
    shown.push(["JSON.stringify", JSON.stringify(value) ?? "undefined"]);
  } catch (error) {
    // Not every value serialises (a cycle, a BigInt); then its error must not leak either.
    shown.push(["JSON.stringify's error", String(error)]);
  }
  return shown;
}

/** Asserts that no rendering of `value` shows a secret. */
function assertNothingShows(what: string, value: unknown): void {
  for (const [how, text] of renderings(value)) assertNoSecret(`${how} of ${what}`, text);
}

/** The secrets are spelled right: the check finds them where they are. */
test("the redaction check finds the secrets in their plain and base64 forms", () => {
  const plainPayload = btoa(`\0${USER}\0${PASSWORD}`);
  const loginPayload = btoa(PASSWORD);
  const xoauth2Payload = btoa(`user=${USER}\x01auth=Bearer ${TOKEN}\x01\x01`);
  for (const text of [plainPayload, loginPayload, xoauth2Payload, `x ${PASSWORD}`, TOKEN]) {
    assert.throws(() => assertNoSecret("sample", text), /shows/);
  }
  assert.throws(() => assertNothingShows("sample", { auth: { password: PASSWORD } }), /shows/);
  assertNoSecret("sample", "AUTH PLAIN [redacted]");
});

/** smtp-server that knows one account: `USER` with `PASSWORD`, or `TOKEN` over XOAUTH2. */
function accountServer() {
  return startSmtpServer({
    authMethods: ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"],
    authOptional: false,
    onAuth(raw, _session, callback) {
      const auth = raw as unknown as AuthSession;
      const ok = auth.username === USER && (
        auth.method === "XOAUTH2"
          ? auth.accessToken === TOKEN
          : auth.method === "CRAM-MD5"
          ? auth.validatePassword!(PASSWORD)
          : auth.password === PASSWORD
      );
      if (ok) return callback(null, { user: auth.username });
      if (auth.method === "XOAUTH2") {
        return callback(null, { data: { status: "401", schemes: "bearer", scope: "mail" } });
      }
      callback(new Error("Invalid username or password"));
    },
  });
}

const message = { from: USER, to: "you@example.com", subject: "Hi", text: "Hello" };

const logins: [string, AuthOptions, AuthOptions][] = [
  ...(["PLAIN", "LOGIN", "CRAM-MD5"] as PasswordMechanism[]).map((
    mechanism,
  ): [string, AuthOptions, AuthOptions] => [
    mechanism,
    { username: USER, password: PASSWORD, mechanisms: [mechanism] },
    { username: USER, password: `${PASSWORD}-wrong`, mechanisms: [mechanism] },
  ]),
  ["XOAUTH2 (token)", { username: USER, token: TOKEN }, {
    username: USER,
    token: `${TOKEN}-expired`,
  }],
  ["XOAUTH2 (token function)", {
    username: USER,
    token: () => Promise.resolve(TOKEN),
  }, { username: USER, token: ({ refresh }) => Promise.resolve(`${TOKEN}-${refresh}`) }],
];

for (const [mechanism, auth, wrongAuth] of logins) {
  test(`${mechanism}: no secret in the client, its transcript or a refused login's error`, async () => {
    await using server = await accountServer();
    const events: TranscriptEvent[] = [];
    const options = {
      hostname: "localhost",
      port: server.port,
      tlsOptions: { caCerts: [testCa] },
      onTranscript: (event: TranscriptEvent) => events.push(event),
    };

    const client = await SmtpClient.connect({ ...options, auth });
    assertNothingShows("a logged-in client", client);
    const result = await client.send(message);
    assertNothingShows("a send result", result);
    assertNothingShows("a client after a send", client);
    await client.quit();
    assertNothingShows("a client after quit()", client);
    assert.equal(server.received.length, 1);
    assert.equal(server.received[0]!.user, USER);

    const error = await SmtpClient.connect({ ...options, auth: wrongAuth }).then(
      () => assert.fail("the wrong credentials were accepted"),
      (error: unknown) => error,
    );
    assert.ok(error instanceof SmtpAuthError, String(error));
    assert.equal(error.code, 535);
    assertNothingShows("the SmtpAuthError", error);
    assertNoSecret("the error's stack", error.stack ?? "");
    assertNoSecret("the error's command", error.command);

    // The transcript saw the AUTH exchange twice (accepted, refused), redacted both times.
    assert.ok(events.filter((e) => /^AUTH /.test(e.line)).length >= 2);
    const sent = events.filter((e) => e.direction === "client").map((e) => e.line);
    if (!mechanism.startsWith("CRAM")) assert.ok(sent.some((line) => /\[redacted\]/.test(line)));
    for (const event of events) {
      assertNoSecret("a transcript line", event.line);
      assertNothingShows(`the transcript event ${JSON.stringify(event.line)}`, event);
    }
  });
}

test("an SmtpPool built with the password shows it nowhere, idle or with a connection", async () => {
  await using server = await accountServer();
  const events: TranscriptEvent[] = [];
  await using pool = new SmtpPool({
    hostname: "localhost",
    port: server.port,
    tlsOptions: { caCerts: [testCa] },
    auth: { username: USER, password: PASSWORD, mechanisms: ["PLAIN"] },
    onTranscript: (event) => events.push(event),
    maxConnections: 2,
  });
  assertNothingShows("a new pool", pool);
  await pool.send(message);
  assert.equal(pool.stats.connections, 1);
  assertNothingShows("a pool with an idle connection", pool);
  await pool.withClient((client) => {
    assertNothingShows("a client borrowed from the pool", client);
    return Promise.resolve();
  });
  await pool.close();
  assertNothingShows("a closed pool", pool);
  assert.equal(server.received.length, 1);
  assert.ok(events.some((e) => e.line === "AUTH PLAIN [redacted]"));
  for (const event of events) assertNothingShows("a pool transcript event", event);
});

test("an SmtpPool built with a token shows it nowhere", () => {
  const pool = new SmtpPool({ hostname: "localhost", auth: { username: USER, token: TOKEN } });
  assertNothingShows("a new pool", pool);
});
