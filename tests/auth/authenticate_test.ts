import assert from "node:assert/strict";
import {
  authenticate,
  type AuthOptions,
  SmtpAuthError,
  type SmtpReply,
  SmtpUnsupportedError,
} from "../../mod.ts";
import { test } from "../_helpers/test.ts";

const b64 = (s: string) => btoa(s);

/** A scripted conversation: each step checks the line and returns a reply. */
function scripted(steps: [string | RegExp, boolean, SmtpReply][]) {
  const sent: { line: string; secret: boolean }[] = [];
  let i = 0;
  return {
    sent,
    done: () => assert.equal(i, steps.length, "not every step ran"),
    exchange(line: string, options?: { secret?: boolean }): Promise<SmtpReply> {
      const step = steps[i++];
      if (!step) throw new Error(`unexpected line ${line}`);
      const [expected, secret, reply] = step;
      if (typeof expected === "string") assert.equal(line, expected);
      else assert.match(line, expected);
      assert.equal(options?.secret ?? false, secret, `secret flag of ${line}`);
      sent.push({ line, secret: options?.secret ?? false });
      return Promise.resolve(reply);
    },
  };
}

const context = (offered: string[]) => ({
  offered,
  initialResponse: true,
  hostname: "mx.example",
  port: 587,
});
const ok: SmtpReply = {
  code: 235,
  enhancedStatus: { class: 2, subject: 7, detail: 0 },
  lines: ["OK"],
};
const denied: SmtpReply = {
  code: 535,
  enhancedStatus: { class: 5, subject: 7, detail: 8 },
  lines: ["Authentication credentials invalid"],
};

test("authenticate() picks the strongest mechanism both sides support", async () => {
  const conversation = scripted([["AUTH CRAM-MD5", false, { code: 334, lines: [b64("<1.2@x>")] }], [
    /^[A-Za-z0-9+/=]+$/,
    true,
    ok,
  ]]);
  await authenticate(
    conversation,
    { username: "u", password: "p" },
    context(["PLAIN", "LOGIN", "CRAM-MD5"]),
  );
  conversation.done();
});

test("authenticate() sends PLAIN as an initial response marked secret", async () => {
  const conversation = scripted([[`AUTH PLAIN ${b64("\0u\0p")}`, true, ok]]);
  await authenticate(conversation, { username: "u", password: "p" }, context(["PLAIN"]));
  conversation.done();
});

test("authenticate() runs LOGIN over two challenges", async () => {
  const conversation = scripted([
    ["AUTH LOGIN", false, { code: 334, lines: [b64("Username:")] }],
    [b64("u"), true, { code: 334, lines: [b64("Password:")] }],
    [b64("p"), true, ok],
  ]);
  await authenticate(
    conversation,
    { username: "u", password: "p", mechanisms: ["LOGIN"] },
    context(["LOGIN", "PLAIN"]),
  );
  conversation.done();
});

test("authenticate() says what the server offered when nothing matches", async () => {
  await assert.rejects(
    authenticate(scripted([]), { username: "u", password: "p" }, context(["GSSAPI", "NTLM"])),
    (error: unknown) =>
      error instanceof SmtpUnsupportedError && /offers GSSAPI, NTLM/.test(error.message),
  );
  await assert.rejects(
    authenticate(scripted([]), { username: "u", password: "p" }, context(["DIGEST-MD5"])),
    SmtpUnsupportedError,
    "DIGEST-MD5 only when named",
  );
});

test("authenticate() turns 535 into SmtpAuthError without any secret in it", async () => {
  const conversation = scripted([[/^AUTH PLAIN /, true, denied]]);
  await assert.rejects(
    authenticate(conversation, { username: "u", password: "hunter2" }, context(["PLAIN"])),
    (error: unknown) => {
      assert.ok(error instanceof SmtpAuthError);
      assert.equal(error.command, "AUTH PLAIN");
      assert.equal(error.code, 535);
      for (
        const text of [error.message, String(error), JSON.stringify(error), Deno.inspect(error)]
      ) {
        assert.doesNotMatch(text, /hunter2|AHUAaHVudGVyMg/);
      }
      return true;
    },
  );
});

test("authenticate() cancels with * when the mechanism fails on the client side", async () => {
  const conversation = scripted([
    ["AUTH SCRAM-SHA-256 " + "", true, { code: 334, lines: [b64("r=foreign,s=QUJD,i=4096")] }],
    ["*", false, { code: 501, lines: ["Cancelled"] }],
  ].map(([l, s, r]) =>
    [typeof l === "string" && l.endsWith(" ") ? /^AUTH SCRAM-SHA-256 \S+$/ : l, s, r] as [
      string | RegExp,
      boolean,
      SmtpReply,
    ]
  ));
  await assert.rejects(
    authenticate(conversation, { username: "u", password: "p" }, context(["SCRAM-SHA-256"])),
    (error: unknown) => error instanceof SmtpAuthError && /client side/.test(error.message),
  );
  conversation.done();
});

test("authenticate() gives up after too many challenges", async () => {
  const challenge: SmtpReply = { code: 334, lines: [""] };
  const steps: [string | RegExp, boolean, SmtpReply][] = [["AUTH LOGIN", false, challenge]];
  for (let i = 0; i < 10; i++) steps.push([/.*/, true, challenge]);
  steps.push(["*", false, { code: 501, lines: ["Cancelled"] }]);
  const conversation = scripted(steps);
  const mechanism = {
    name: "LOGIN",
    start: () => Promise.resolve(null),
    next: () => Promise.resolve(new Uint8Array()),
  };
  await assert.rejects(
    authenticate(conversation, { sasl: mechanism }, context(["LOGIN"])),
    /too many challenges/,
  );
  conversation.done();
});

test("authenticate() refreshes an OAuth2 token once after an XOAUTH2 error challenge", async () => {
  const requests: boolean[] = [];
  const auth: AuthOptions = {
    username: "me@example.com",
    token: ({ refresh }) => {
      requests.push(refresh);
      return Promise.resolve(refresh ? "fresh" : "stale");
    },
  };
  const conversation = scripted([
    [`AUTH XOAUTH2 ${b64("user=me@example.com\x01auth=Bearer stale\x01\x01")}`, true, {
      code: 334,
      lines: [b64('{"status":"401","schemes":"bearer"}')],
    }],
    ["", true, denied],
    [`AUTH XOAUTH2 ${b64("user=me@example.com\x01auth=Bearer fresh\x01\x01")}`, true, ok],
  ]);
  await authenticate(conversation, auth, context(["XOAUTH2"]));
  assert.deepEqual(requests, [false, true]);
  conversation.done();
});

test("authenticate() does not refresh a fixed token, and stops after one refresh", async () => {
  const fixed = scripted([[/^AUTH XOAUTH2 /, true, denied]]);
  await assert.rejects(
    authenticate(fixed, { username: "u", token: "t" }, context(["XOAUTH2"])),
    SmtpAuthError,
  );
  fixed.done();
  let calls = 0;
  const twice = scripted([[/^AUTH XOAUTH2 /, true, denied], [/^AUTH XOAUTH2 /, true, denied]]);
  await assert.rejects(
    authenticate(
      twice,
      { username: "u", token: () => Promise.resolve(`t${++calls}`) },
      context(["XOAUTH2"]),
    ),
    SmtpAuthError,
  );
  assert.equal(calls, 2);
  twice.done();
});

test("authenticate() uses OAUTHBEARER when it is all the server offers", async () => {
  const expected = "n,a=me@example.com,\x01host=mx.example\x01port=587\x01auth=Bearer tok\x01\x01";
  const conversation = scripted([[`AUTH OAUTHBEARER ${b64(expected)}`, true, ok]]);
  await authenticate(
    conversation,
    { username: "me@example.com", token: "tok" },
    context(["OAUTHBEARER"]),
  );
  conversation.done();
});

test("authenticate() adds provider hints to well-known refusals", async () => {
  const gmail: SmtpReply = {
    code: 535,
    enhancedStatus: { class: 5, subject: 7, detail: 8 },
    lines: [
      "Username and Password not accepted. For more information, go to",
      "https://support.google.com/mail/?p=BadCredentials",
    ],
  };
  const office: SmtpReply = {
    code: 535,
    enhancedStatus: { class: 5, subject: 7, detail: 139 },
    lines: ["Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."],
  };
  await assert.rejects(
    authenticate(
      scripted([[/AUTH PLAIN/, true, gmail]]),
      { username: "u", password: "p" },
      context(["PLAIN"]),
    ),
    /app password/,
  );
  await assert.rejects(
    authenticate(
      scripted([[/AUTH PLAIN/, true, office]]),
      { username: "u", password: "p" },
      context(["PLAIN"]),
    ),
    /use OAuth2/,
  );
});
