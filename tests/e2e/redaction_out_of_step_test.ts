/**
 * A server that goes out of step during a login (one stray extra reply at the step where the
 * client would send its secret) makes the client stop with an `SmtpProtocolError` that names
 * the command it did not send. That name comes from the redacted form of the line: the first
 * word of an AUTH response is the secret itself (base64 of the password, of a CRAM-MD5 digest,
 * of a SCRAM proof). Scripted loopback servers play each mechanism.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { type AuthOptions, scramSha256, SmtpClient, SmtpProtocolError } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import {
  expectLine,
  type ScriptedConnection,
  startScriptedServer,
} from "../_helpers/scripted_server.ts";

const USER = "me@example.com";
const PASSWORD = "hunter2-SECRET";
const TOKEN = "ya29.TOKEN-SECRET";

const b64 = (text: string | Uint8Array) => Buffer.from(text).toString("base64");
const unb64 = (text: string) => Buffer.from(text, "base64").toString();

/**
 * The base64 text that every base64 encoding of a payload containing `secret` contains, for
 * each of the three alignments the secret can have in it.
 */
function base64Cores(secret: string): string[] {
  return [0, 1, 2].map((offset) => {
    const encoded = btoa("\0".repeat(offset) + secret);
    const wholeGroups = Math.floor((offset + secret.length) / 3);
    return encoded.slice(offset === 0 ? 0 : 4, wholeGroups * 4);
  });
}

/** Greets, then answers EHLO with `extensions` plus `stray` in the same write. */
async function greetWith(
  conn: ScriptedConnection,
  extensions: string[],
  stray = "",
): Promise<void> {
  await conn.send("220 scripted.test ESMTP\r\n");
  await expectLine(conn, "EHLO ");
  const lines = ["scripted.test", ...extensions];
  await conn.send(
    lines.map((l, i) => `250${i === lines.length - 1 ? " " : "-"}${l}\r\n`).join("") + stray,
  );
}

/** Reads until the client closes; the client must not send anything after the stray reply. */
async function closed(conn: ScriptedConnection): Promise<string[]> {
  const lines: string[] = [];
  while (true) {
    const line = await conn.readLine();
    if (line === null) return lines;
    lines.push(line);
  }
}

interface Case {
  readonly name: string;
  readonly auth: AuthOptions;
  /** Plays the server up to the stray reply; returns the lines seen after it. */
  readonly script: (conn: ScriptedConnection) => Promise<string[]>;
  /** The secret line the client would have sent next, whose text must show nowhere. */
  readonly secretLine: () => string;
}

const CRAM_CHALLENGE = "<1896.697170952@postoffice.example.net>";
const SCRAM_NONCE = "rOprNGfwEbeRWgbNEkqO";
const SCRAM_SERVER_FIRST = `r=${SCRAM_NONCE}%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=${
  b64("salt-of-the-test")
},i=4096`;

/** The client-final message of SCRAM-SHA-256 for `USER`/`PASSWORD`, computed with node:crypto. */
function scramClientFinal(): string {
  const salted = pbkdf2Sync(PASSWORD, "salt-of-the-test", 4096, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const nonce = SCRAM_SERVER_FIRST.split(",")[0]!.slice(2);
  const withoutProof = `c=biws,r=${nonce}`;
  const authMessage = `n=${USER},r=${SCRAM_NONCE},${SCRAM_SERVER_FIRST},` +
    withoutProof;
  const signature = createHmac("sha256", storedKey).update(authMessage).digest();
  const proof = clientKey.map((byte, i) => byte ^ signature[i]!);
  return `${withoutProof},p=${Buffer.from(proof).toString("base64")}`;
}

const cases: Case[] = [
  {
    name: "LOGIN, a second 334 with the password prompt",
    auth: { username: USER, password: PASSWORD, mechanisms: ["LOGIN"] },
    script: async (conn) => {
      await greetWith(conn, ["AUTH LOGIN"]);
      await expectLine(conn, "AUTH LOGIN");
      await conn.send("334 VXNlcm5hbWU6\r\n");
      assert.equal(unb64(await expectLine(conn, /^[A-Za-z0-9+/=]+$/)), USER);
      await conn.send("334 UGFzc3dvcmQ6\r\n334 UGFzc3dvcmQ6\r\n");
      return await closed(conn);
    },
    secretLine: () => b64(PASSWORD),
  },
  {
    name: "PLAIN with an initial response, a stray line after the EHLO reply",
    auth: { username: USER, password: PASSWORD, mechanisms: ["PLAIN"] },
    script: async (conn) => {
      await greetWith(conn, ["AUTH PLAIN"], "250 stray\r\n");
      return await closed(conn);
    },
    secretLine: () => `AUTH PLAIN ${b64(`\0${USER}\0${PASSWORD}`)}`,
  },
  {
    name: "CRAM-MD5, the challenge twice",
    auth: { username: USER, password: PASSWORD, mechanisms: ["CRAM-MD5"] },
    script: async (conn) => {
      await greetWith(conn, ["AUTH CRAM-MD5"]);
      await expectLine(conn, "AUTH CRAM-MD5");
      await conn.send(`334 ${b64(CRAM_CHALLENGE)}\r\n334 ${b64(CRAM_CHALLENGE)}\r\n`);
      return await closed(conn);
    },
    secretLine: () =>
      b64(`${USER} ${createHmac("md5", PASSWORD).update(CRAM_CHALLENGE).digest("hex")}`),
  },
  {
    name: "XOAUTH2, a stray line after the EHLO reply",
    auth: { username: USER, token: TOKEN, mechanism: "XOAUTH2" },
    script: async (conn) => {
      await greetWith(conn, ["AUTH XOAUTH2"], "250 stray\r\n");
      return await closed(conn);
    },
    secretLine: () => `AUTH XOAUTH2 ${b64(`user=${USER}\x01auth=Bearer ${TOKEN}\x01\x01`)}`,
  },
  {
    name: "OAUTHBEARER, a stray line after the EHLO reply",
    auth: { username: USER, token: TOKEN, mechanism: "OAUTHBEARER" },
    script: async (conn) => {
      await greetWith(conn, ["AUTH OAUTHBEARER"], "250 stray\r\n");
      return await closed(conn);
    },
    secretLine: () => TOKEN,
  },
  {
    name: "SCRAM-SHA-256, the server-first message twice",
    auth: { sasl: scramSha256(USER, PASSWORD, { nonce: SCRAM_NONCE }) },
    script: async (conn) => {
      await greetWith(conn, ["AUTH SCRAM-SHA-256"]);
      const first = await expectLine(conn, "AUTH SCRAM-SHA-256 ");
      assert.equal(unb64(first.split(" ")[2]!), `n,,n=${USER},r=${SCRAM_NONCE}`);
      const serverFirst = `334 ${b64(SCRAM_SERVER_FIRST)}\r\n`;
      await conn.send(serverFirst + serverFirst);
      return await closed(conn);
    },
    secretLine: () => b64(scramClientFinal()),
  },
];

/** Every text an error carries: message, `String()`, stack and inspection, down its causes. */
function texts(error: unknown): string[] {
  const out: string[] = [];
  for (let e = error, depth = 0; e !== undefined && depth < 10; depth++) {
    out.push(String(e), Deno.inspect(e, { depth: 10, showHidden: true }));
    if (!(e instanceof Error)) break;
    out.push(e.message, e.stack ?? "");
    e = e.cause;
  }
  return out;
}

for (const { name, auth, script, secretLine } of cases) {
  test(`${name}: the out-of-step error shows no secret`, async () => {
    let after: string[] | undefined;
    await using server = startScriptedServer(async (conn) => {
      after = await script(conn);
    });
    const error = await SmtpClient.connect({
      hostname: "127.0.0.1",
      port: server.port,
      tls: "none",
      clientName: "client.postie.test",
      allowPlaintextAuth: ["127.0.0.1"],
      auth,
    }).then(
      (client) => (client.close(), assert.fail("expected a rejection")),
      (error: unknown) => error,
    );
    await server.close();
    assert.ok(error instanceof SmtpProtocolError, String(error));
    assert.equal(error.phase, "auth");
    assert.match(error.message, /^Server sent a reply before \S+ was sent: .*out of step/);
    assert.deepEqual(after, [], "the client sent more after the stray reply");
    const line = secretLine();
    const forbidden = [
      PASSWORD,
      TOKEN,
      ...base64Cores(PASSWORD),
      ...base64Cores(TOKEN),
      line,
      ...line.split(" "),
    ].filter((s) => s.length >= 8);
    for (const text of texts(error)) {
      for (const secret of forbidden) {
        assert.equal(text.includes(secret), false, `the error shows ${JSON.stringify(secret)}`);
      }
    }
  });
}
