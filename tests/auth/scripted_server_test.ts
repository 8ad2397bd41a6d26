/**
 * `authenticate()` over a real loopback socket against scripted servers, for the mechanisms
 * smtp-server lacks (OAUTHBEARER, DIGEST-MD5, SCRAM-SHA-256). Each script checks every client
 * line and computes the expected proofs itself with `node:crypto`, independently of the
 * library's Web Crypto code.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, createHmac, pbkdf2Sync, timingSafeEqual } from "node:crypto";
import { authenticate } from "../../src/auth/mod.ts";
import { SmtpAuthError } from "../../src/errors.ts";
import { test } from "../_helpers/test.ts";
import { scriptedServer, type ScriptPeer, SocketConversation, together } from "./_conversation.ts";

const b64 = (text: string | Buffer) =>
  (typeof text === "string" ? Buffer.from(text) : text).toString("base64");
const unb64 = (text: string) => Buffer.from(text, "base64").toString();

/** Runs `authenticate()` over a fresh socket conversation with `server`. */
async function login<T>(
  server: { port: number },
  run: (conversation: SocketConversation) => Promise<T>,
): Promise<T> {
  await using conversation = await SocketConversation.open(server.port);
  return await run(conversation);
}

// --- OAUTHBEARER --------------------------------------------------------------------------------

test("OAUTHBEARER against a scripted server: GS2 header, host, port, refresh after ^A", async () => {
  let port = 0;
  const payload = (token: string) =>
    `n,a=me@example.com,\x01host=127.0.0.1\x01port=${port}\x01auth=Bearer ${token}\x01\x01`;
  await using server = scriptedServer("OAUTHBEARER", async (peer) => {
    await peer.expect(`AUTH OAUTHBEARER ${b64(payload("stale"))}`);
    await peer.send(
      `334 ${b64('{"status":"invalid_token","scope":"mail","openid-configuration":"x"}')}`,
    );
    await peer.expect("AQ==");
    await peer.send("535 5.7.8 Authentication failed");
    await peer.expect(`AUTH OAUTHBEARER ${b64(payload("fresh"))}`);
    await peer.send("235 2.7.0 Authentication successful");
  });
  port = server.port;
  const requests: boolean[] = [];
  const reply = await together(
    login(server, (conversation) =>
      authenticate(
        conversation,
        {
          username: "me@example.com",
          token: (
            { refresh },
          ) => (requests.push(refresh), Promise.resolve(refresh ? "fresh" : "stale")),
        },
        conversation.context(),
      )),
    server,
  );
  assert.equal(reply.code, 235);
  assert.deepEqual(requests, [false, true]);
});

test("OAUTHBEARER with a fixed refused token ends in SmtpAuthError carrying the server's 535", async () => {
  await using server = scriptedServer("OAUTHBEARER XOAUTH2", async (peer) => {
    await peer.expect(/^AUTH OAUTHBEARER [A-Za-z0-9+/]+=*$/);
    await peer.send(`334 ${b64('{"status":"invalid_token"}')}`);
    await peer.expect("AQ==");
    await peer.send("535 5.7.8 Authentication failed");
  });
  const error = await together(
    login(server, (conversation) =>
      authenticate(
        conversation,
        { username: "me@example.com", token: "secret-token", mechanism: "OAUTHBEARER" },
        conversation.context(),
      ).catch((e) => e)),
    server,
  );
  assert.ok(error instanceof SmtpAuthError);
  assert.equal(error.command, "AUTH OAUTHBEARER");
  assert.match(
    error.message,
    /535 5\.7\.8 Authentication failed \(server said \{"status":"invalid_token"\}\)$/,
  );
  assert.doesNotMatch(String(error), /secret-token/);
});

// --- DIGEST-MD5 ---------------------------------------------------------------------------------

const md5 = (data: Buffer | string) => createHash("md5").update(data).digest();
const md5Hex = (data: Buffer | string) => createHash("md5").update(data).digest("hex");

/** The server side of DIGEST-MD5 for user `me`, password `password`, realm `example.test`. */
async function digestServer(peer: ScriptPeer, password: string, honest: boolean): Promise<void> {
  const nonce = "OA6MG9tEQGm2hh";
  await peer.expect("AUTH DIGEST-MD5");
  await peer.send(
    `334 ${
      b64(`realm="example.test",nonce="${nonce}",qop="auth",charset=utf-8,algorithm=md5-sess`)
    }`,
  );
  const response = unb64(await peer.readLine());
  const fields = new Map<string, string>();
  for (const match of response.matchAll(/([a-z-]+)=(?:"((?:[^"\\]|\\.)*)"|([^,]*))/g)) {
    fields.set(match[1]!, match[2] ?? match[3]!);
  }
  assert.equal(fields.get("username"), "me");
  assert.equal(fields.get("realm"), "example.test");
  assert.equal(fields.get("nonce"), nonce);
  assert.equal(fields.get("nc"), "00000001");
  assert.equal(fields.get("qop"), "auth");
  assert.equal(fields.get("charset"), "utf-8");
  assert.equal(fields.get("digest-uri"), "smtp/127.0.0.1");
  const cnonce = fields.get("cnonce")!;
  assert.match(cnonce, /^[A-Za-z0-9]{16,}$/, "a random cnonce");
  const ha1 = md5Hex(Buffer.concat([
    md5(Buffer.from(`me:example.test:${password}`, "latin1")),
    Buffer.from(`:${nonce}:${cnonce}`),
  ]));
  const kd = (a2: string) => md5Hex(`${ha1}:${nonce}:00000001:${cnonce}:auth:${md5Hex(a2)}`);
  if (fields.get("response") !== kd("AUTHENTICATE:smtp/127.0.0.1")) {
    await peer.send("535 5.7.8 Authentication failed");
    return;
  }
  const rspauth = honest ? kd(":smtp/127.0.0.1") : "0".repeat(32);
  await peer.send(`334 ${b64(`rspauth=${rspauth}`)}`);
  if (honest) {
    await peer.expect("");
    await peer.send("235 2.7.0 Authentication successful");
  } else {
    await peer.expect("*");
    await peer.send("501 5.7.0 Authentication cancelled");
  }
}

test("DIGEST-MD5 against a scripted server that checks the response and proves itself", async () => {
  await using server = scriptedServer(
    "PLAIN DIGEST-MD5",
    (peer) => digestServer(peer, "pässwort", true),
  );
  const reply = await together(
    login(server, (conversation) =>
      authenticate(
        conversation,
        { username: "me", password: "pässwort", mechanisms: ["DIGEST-MD5"] },
        conversation.context(),
      )),
    server,
  );
  assert.equal(reply.code, 235);
});

test("DIGEST-MD5 with a wrong password gets the server's 535", async () => {
  await using server = scriptedServer("DIGEST-MD5", (peer) => digestServer(peer, "right", true));
  const error = await together(
    login(server, (conversation) =>
      authenticate(
        conversation,
        { username: "me", password: "wrong", mechanisms: ["DIGEST-MD5"] },
        conversation.context(),
      ).catch((e) => e)),
    server,
  );
  assert.ok(error instanceof SmtpAuthError);
  assert.equal(error.code, 535);
});

test("DIGEST-MD5 against a server with a forged rspauth: cancelled, SmtpAuthError", async () => {
  await using server = scriptedServer("DIGEST-MD5", (peer) => digestServer(peer, "pw", false));
  const error = await together(
    login(server, (conversation) =>
      authenticate(
        conversation,
        { username: "me", password: "pw", mechanisms: ["DIGEST-MD5"] },
        conversation.context(),
      ).catch((e) => e)),
    server,
  );
  assert.ok(error instanceof SmtpAuthError);
  assert.match(error.message, /rspauth is wrong/);
});

// --- SCRAM-SHA-256 ------------------------------------------------------------------------------

type ScramBehaviour = "honest" | "forged" | "foreign-nonce" | "no-signature";

/**
 * The server side of SCRAM-SHA-256 (RFC 5802 section 5) for `password`, already in its
 * SASLprep form: checks the client proof, then behaves as told.
 */
async function scramServer(peer: ScriptPeer, password: string, behaviour: ScramBehaviour) {
  const hmac = (key: Buffer, data: string) => createHmac("sha256", key).update(data).digest();
  const auth = await peer.expect(/^AUTH SCRAM-SHA-256 [A-Za-z0-9+/]+=*$/);
  const clientFirst = unb64(auth.split(" ")[2]!);
  const first = /^n,,(n=me,r=([\x21-\x2b\x2d-\x7e]+))$/.exec(clientFirst);
  assert.ok(first, `client-first ${clientFirst}`);
  const [, clientFirstBare, clientNonce] = first as unknown as [string, string, string];
  assert.ok(clientNonce.length >= 16, "a long enough client nonce");
  const salt = Buffer.from("postie-scram-salt");
  const nonce = behaviour === "foreign-nonce" ? "someone-elses-nonce" : `${clientNonce}srv3rN0nce`;
  const serverFirst = `r=${nonce},s=${salt.toString("base64")},i=4096`;
  await peer.send(`334 ${b64(serverFirst)}`);
  if (behaviour === "foreign-nonce") {
    await peer.expect("*");
    await peer.send("501 5.7.0 Authentication cancelled");
    return;
  }
  const clientFinal = unb64(await peer.readLine());
  const final = /^(c=biws,r=([^,]+)),p=([A-Za-z0-9+/]+=*)$/.exec(clientFinal);
  assert.ok(final, `client-final ${clientFinal}`);
  const [, withoutProof, finalNonce, proof] = final as unknown as [string, string, string, string];
  assert.equal(finalNonce, nonce);
  const salted = pbkdf2Sync(Buffer.from(password, "utf8"), salt, 4096, 32, "sha256");
  const clientKey = hmac(salted, "Client Key");
  const storedKey = createHash("sha256").update(clientKey).digest();
  const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
  const clientSignature = hmac(storedKey, authMessage);
  const recovered = Buffer.from(
    Buffer.from(proof, "base64").map((b, i) => b ^ clientSignature[i]!),
  );
  if (!timingSafeEqual(createHash("sha256").update(recovered).digest(), storedKey)) {
    await peer.send(`334 ${b64("e=invalid-proof")}`);
    await peer.expect("*");
    await peer.send("535 5.7.8 Authentication failed");
    return;
  }
  if (behaviour === "no-signature") {
    await peer.send("235 2.7.0 Authentication successful");
    return;
  }
  const signature = behaviour === "honest"
    ? hmac(hmac(salted, "Server Key"), authMessage)
    : Buffer.alloc(32, 7);
  await peer.send(`334 ${b64(`v=${signature.toString("base64")}`)}`);
  if (behaviour === "honest") {
    await peer.expect("");
    await peer.send("235 2.7.0 Authentication successful");
  } else {
    await peer.expect("*");
    await peer.send("501 5.7.0 Authentication cancelled");
  }
}

function scramLogin(server: { port: number }, password: string) {
  return login(server, (conversation) =>
    authenticate(
      conversation,
      { username: "me", password },
      conversation.context(),
    ).catch((e) => e));
}

test("SCRAM-SHA-256 against a scripted server that proves it knows the password", async () => {
  await using server = scriptedServer(
    "PLAIN CRAM-MD5 SCRAM-SHA-256",
    (peer) => scramServer(peer, "pencil", "honest"),
  );
  const reply = await together(scramLogin(server, "pencil"), server);
  assert.equal(reply.code, 235, String(reply));
});

test("SCRAM-SHA-256 prepares a non-ASCII password with SASLprep before hashing", async () => {
  // NO-BREAK SPACE becomes a space, SOFT HYPHEN disappears, ROMAN NUMERAL NINE becomes "IX".
  await using server = scriptedServer(
    "SCRAM-SHA-256",
    (peer) => scramServer(peer, "pässwort IX", "honest"),
  );
  const reply = await together(scramLogin(server, "päss\u00adwort\u00a0\u2168"), server);
  assert.equal(reply.code, 235, String(reply));
});

test("SCRAM-SHA-256 with a wrong password: the server's e=invalid-proof, cancelled, 535", async () => {
  await using server = scriptedServer(
    "SCRAM-SHA-256",
    (peer) => scramServer(peer, "pencil", "honest"),
  );
  const error = await together(scramLogin(server, "crayon"), server);
  assert.ok(error instanceof SmtpAuthError);
  assert.equal(error.code, 535);
  assert.match(error.message, /invalid-proof/);
});

for (
  const [behaviour, message] of [
    ["forged", /signature is wrong/],
    ["foreign-nonce", /nonce does not extend/],
    ["no-signature", /without proving it knows the password/],
  ] as [ScramBehaviour, RegExp][]
) {
  test(`SCRAM-SHA-256 against a scripted server: ${behaviour} is an SmtpAuthError`, async () => {
    await using server = scriptedServer(
      "SCRAM-SHA-256",
      (peer) => scramServer(peer, "pencil", behaviour),
    );
    const error = await together(scramLogin(server, "pencil"), server);
    assert.ok(error instanceof SmtpAuthError, String(error));
    assert.equal(error.command, "AUTH SCRAM-SHA-256");
    assert.match(error.message, message);
    assert.doesNotMatch(String(error), /pencil/);
  });
}
