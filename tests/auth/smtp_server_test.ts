/**
 * `authenticate()` over a real loopback socket against npm `smtp-server` (PLAIN, LOGIN,
 * CRAM-MD5, XOAUTH2), without the client: the test's own line conversation does greeting and
 * EHLO, then hands the socket to `authenticate()`.
 */

import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { authenticate, type PasswordMechanism } from "../../src/auth/mod.ts";
import { SmtpAuthError } from "../../src/errors.ts";
import { test } from "../_helpers/test.ts";
import { SocketConversation } from "./_conversation.ts";

const PASSWORD = "correct horse battery staple";
const GOOD_TOKEN = "ya29.good-token";

/** What smtp-server's onAuth receives, as far as these tests use it. */
interface AuthAttempt {
  method: string;
  username?: string;
  password?: string;
  accessToken?: string;
  validatePassword?: (password: string) => boolean;
}

/** smtp-server on 127.0.0.1 with AUTH in clear text (loopback only); records every attempt. */
async function startServer(): Promise<
  { port: number; attempts: AuthAttempt[]; [Symbol.asyncDispose](): Promise<void> }
> {
  const attempts: AuthAttempt[] = [];
  const server = new SMTPServer({
    secure: false,
    allowInsecureAuth: true,
    hideSTARTTLS: true,
    disableReverseLookup: true,
    logger: false,
    authMethods: ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"],
    onAuth(raw, _session, callback) {
      const auth = raw as unknown as AuthAttempt;
      attempts.push(auth);
      if (auth.username !== "me@example.com") {
        return callback(new Error("Invalid username or password"));
      }
      const accepted = auth.method === "XOAUTH2"
        ? auth.accessToken === GOOD_TOKEN
        : auth.method === "CRAM-MD5"
        ? auth.validatePassword!(PASSWORD)
        : auth.password === PASSWORD;
      if (accepted) return callback(null, { user: auth.username });
      if (auth.method === "XOAUTH2") {
        // The XOAUTH2 error challenge; smtp-server answers the client's empty reply with 535.
        return callback(null, { data: { status: "401", schemes: "bearer", scope: "mail" } });
      }
      callback(new Error("Invalid username or password"));
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  server.on("error", () => {});
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    attempts,
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

for (const mechanism of ["PLAIN", "LOGIN", "CRAM-MD5"] as PasswordMechanism[]) {
  test(`authenticate() logs in to smtp-server with ${mechanism}`, async () => {
    await using server = await startServer();
    await using conversation = await SocketConversation.open(server.port);
    assert.deepEqual(conversation.offered, ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"]);
    const reply = await authenticate(
      conversation,
      { username: "me@example.com", password: PASSWORD, mechanisms: [mechanism] },
      conversation.context(),
    );
    assert.equal(reply.code, 235);
    assert.deepEqual(server.attempts.map((a) => a.method), [mechanism]);
    assert.equal(conversation.sent[0]!.line.split(" ").slice(0, 2).join(" "), `AUTH ${mechanism}`);
    // Every line that carries the password, or anything derived from it, is marked secret.
    for (const { line, secret } of conversation.sent.slice(mechanism === "PLAIN" ? 0 : 1)) {
      assert.equal(secret, true, line);
    }
    const noop = await conversation.exchange("NOOP");
    assert.equal(noop.code, 250, "the session goes on after the login");
  });
}

test("authenticate() picks CRAM-MD5 from smtp-server's list by default", async () => {
  await using server = await startServer();
  await using conversation = await SocketConversation.open(server.port);
  await authenticate(
    conversation,
    { username: "me@example.com", password: PASSWORD },
    conversation.context(),
  );
  assert.deepEqual(server.attempts.map((a) => a.method), ["CRAM-MD5"]);
});

for (const mechanism of ["PLAIN", "LOGIN", "CRAM-MD5"] as PasswordMechanism[]) {
  test(`a wrong password for ${mechanism} is an SmtpAuthError with smtp-server's 535`, async () => {
    await using server = await startServer();
    await using conversation = await SocketConversation.open(server.port);
    const error = await authenticate(
      conversation,
      { username: "me@example.com", password: "wrong-password", mechanisms: [mechanism] },
      conversation.context(),
    ).catch((e) => e);
    assert.ok(error instanceof SmtpAuthError, String(error));
    assert.equal(error.code, 535);
    assert.equal(error.command, `AUTH ${mechanism}`);
    assert.match(
      error.message,
      /^Authentication with .* failed: 535 .*Invalid username or password/,
    );
    assert.doesNotMatch(`${error.message} ${String(error)}`, /wrong-password|d3JvbmctcGFzc3dvcmQ/);
    assert.equal(server.attempts.length, 1, "no second attempt");
    const noop = await conversation.exchange("NOOP");
    assert.equal(noop.code, 250, "the connection stays usable");
  });
}

test("authenticate() logs in to smtp-server with an XOAUTH2 token", async () => {
  await using server = await startServer();
  await using conversation = await SocketConversation.open(server.port);
  const reply = await authenticate(
    conversation,
    { username: "me@example.com", token: GOOD_TOKEN },
    conversation.context(),
  );
  assert.equal(reply.code, 235);
  assert.equal(server.attempts[0]!.accessToken, GOOD_TOKEN);
  assert.deepEqual(conversation.sent.map((s) => s.secret), [true]);
});

test("a refused XOAUTH2 token: error challenge, empty answer, 535, SmtpAuthError", async () => {
  await using server = await startServer();
  await using conversation = await SocketConversation.open(server.port);
  const error = await authenticate(
    conversation,
    { username: "me@example.com", token: "ya29.expired" },
    conversation.context(),
  ).catch((e) => e);
  assert.ok(error instanceof SmtpAuthError, String(error));
  assert.equal(error.code, 535);
  assert.match(error.message, /server said \{"status":"401","schemes":"bearer","scope":"mail"\}/);
  assert.doesNotMatch(String(error), /expired/);
  assert.deepEqual(conversation.sent.map((s) => s.line.slice(0, 12)), ["AUTH XOAUTH2", ""]);
  assert.equal(server.attempts.length, 1, "a fixed token is not retried");
});

test("XOAUTH2 with a refreshed token: the first is refused, the second accepted", async () => {
  await using server = await startServer();
  await using conversation = await SocketConversation.open(server.port);
  const requests: boolean[] = [];
  const reply = await authenticate(
    conversation,
    {
      username: "me@example.com",
      token: ({ refresh }) => {
        requests.push(refresh);
        return Promise.resolve(refresh ? GOOD_TOKEN : "ya29.expired");
      },
    },
    conversation.context(),
  );
  assert.equal(reply.code, 235);
  assert.deepEqual(requests, [false, true]);
  assert.deepEqual(server.attempts.map((a) => a.accessToken), ["ya29.expired", GOOD_TOKEN]);
  assert.deepEqual(
    conversation.sent.map((s) => [s.line.slice(0, 12), s.secret]),
    [["AUTH XOAUTH2", true], ["", true], ["AUTH XOAUTH2", true]],
  );
});

test("XOAUTH2 refresh happens once: two refused tokens end in SmtpAuthError", async () => {
  await using server = await startServer();
  await using conversation = await SocketConversation.open(server.port);
  let calls = 0;
  await assert.rejects(
    authenticate(
      conversation,
      { username: "me@example.com", token: () => Promise.resolve(`ya29.bad-${++calls}`) },
      conversation.context(),
    ),
    (error: unknown) => error instanceof SmtpAuthError && error.code === 535,
  );
  assert.equal(calls, 2);
  assert.equal(server.attempts.length, 2);
});
