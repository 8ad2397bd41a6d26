/**
 * Typos and other libraries' option names fail before any network I/O, naming the field meant:
 * in plain JavaScript nothing else would notice them.
 */

import assert from "node:assert/strict";
import { SmtpClient, SmtpPool } from "../../mod.ts";
import { closest, editDistance } from "../../src/_fields.ts";
import { test } from "../_helpers/test.ts";

/** Options as a JavaScript user might write them: no type checker in the way. */
// deno-lint-ignore no-explicit-any
type Loose = any;

const base = { hostname: "127.0.0.1", port: 1, tls: "none" };

async function refusal(options: Loose): Promise<string> {
  let message = "";
  await assert.rejects(SmtpClient.connect(options), (error: unknown) => {
    assert.ok(error instanceof TypeError, String(error));
    message = error.message;
    return true;
  });
  return message;
}

const cases: [string, Loose, RegExp][] = [
  [
    "a typo in a field",
    { ...base, timeout: {} },
    /Unknown field "timeout" in client options: did you mean "timeouts"\?/,
  ],
  ["a typo in tlsOptions", { ...base, tlsOption: {} }, /did you mean "tlsOptions"\?/],
  [
    "a typo in timeouts",
    { ...base, timeouts: { greeting: 5 } },
    /"greeting" in timeouts: did you mean "greetingMs"\?/,
  ],
  [
    "nodemailer's host",
    { host: "smtp.example.com" },
    /"host" in client options: postie calls it "hostname"/,
  ],
  ["nodemailer's secure", { ...base, secure: true }, /tls: "implicit"/],
  [
    "nodemailer's auth.user",
    { ...base, tls: "starttls", auth: { user: "me", pass: "x" } },
    /"user" in auth: postie calls it "username"/,
  ],
  ["nodemailer's tls object", { ...base, tls: { rejectUnauthorized: false } }, /tlsOptions/],
  ["rejectUnauthorized", { ...base, tlsOptions: { rejectUnauthorized: false } }, /always verified/],
  [
    "a tls mode in capitals",
    { ...base, tls: "STARTTLS" },
    /Invalid tls mode: "STARTTLS" \(expected "implicit", "starttls" or "none"\)/,
  ],
  ["nothing close", { ...base, zzz: 1 }, /^Unknown field "zzz" in client options$/],
];

for (const [what, options, expected] of cases) {
  test(`SmtpClient.connect() refuses ${what} before connecting`, async () => {
    assert.match(await refusal(options), expected);
  });
}

test("send() refuses a typo in its options before writing anything", async () => {
  // No connection is needed to see it: the check comes first.
  const pool = new SmtpPool({ ...base } as Loose);
  await assert.rejects(
    pool.send({ raw: "x", envelope: { from: "a@b.c", to: ["d@e.f"] } }, {
      rejectOnPartialFailures: true,
    } as Loose),
    /"rejectOnPartialFailures" in send options: did you mean "rejectOnPartialFailure"\?/,
  );
  await pool.close();
});

test("SmtpPool refuses a typo in its own options and in the client's", () => {
  assert.throws(
    () => new SmtpPool({ ...base, maxConnection: 2 } as Loose),
    /did you mean "maxConnections"\?/,
  );
  assert.throws(() => new SmtpPool({ ...base, tlsOption: {} } as Loose), /"tlsOptions"/);
  assert.throws(
    () => new SmtpPool({ ...base, rateLimit: { message: 1, intervalMs: 1 } } as Loose),
    /"message" in rateLimit: did you mean "messages"\?/,
  );
});

test("editDistance() counts insertions, deletions, replacements and swaps", () => {
  assert.equal(editDistance("attachments", "attachements"), 1);
  assert.equal(editDistance("tlsOption", "tlsOptions"), 1);
  assert.equal(editDistance("ab", "ba"), 1);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(closest("HOSTNAME", ["hostname", "port"]), "hostname");
  assert.equal(closest("x", ["hostname", "port"]), undefined);
});
