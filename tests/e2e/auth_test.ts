import assert from "node:assert/strict";
import {
  type AuthOptions,
  type PasswordMechanism,
  sendMail,
  SmtpAuthError,
  SmtpClient,
  SmtpUnsupportedError,
} from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { type AuthSession, startSmtpServer, testCa } from "../_helpers/smtp_server.ts";
import { expectLine, greet, startScriptedServer } from "../_helpers/scripted_server.ts";
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { Buffer } from "node:buffer";

const PASSWORD = "correct horse battery staple";

/** smtp-server with PLAIN, LOGIN, CRAM-MD5 and XOAUTH2; token "good-token" is valid. */
function authServer(seen: string[] = []) {
  return startSmtpServer({
    authMethods: ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"],
    authOptional: false,
    onAuth(raw, _session, callback) {
      const auth = raw as unknown as AuthSession;
      seen.push(auth.method);
      const ok = auth.method === "XOAUTH2"
        ? auth.accessToken === "good-token"
        : auth.method === "CRAM-MD5"
        ? auth.validatePassword!(PASSWORD)
        : auth.password === PASSWORD;
      if (ok) return callback(null, { user: auth.username });
      if (auth.method === "XOAUTH2") {
        return callback(null, { data: { status: "401", schemes: "bearer", scope: "mail" } });
      }
      callback(new Error("Invalid username or password"));
    },
  });
}

const message = { from: "me@example.com", to: "you@example.com", subject: "Hi", text: "Hello" };

for (const mechanism of ["PLAIN", "LOGIN", "CRAM-MD5"] as PasswordMechanism[]) {
  test(`AUTH ${mechanism} over STARTTLS, and the transcript shows no secret`, async () => {
    const seen: string[] = [];
    await using server = await authServer(seen);
    const transcript: string[] = [];
    await sendMail({
      hostname: "localhost",
      port: server.port,
      tlsOptions: { caCerts: [testCa] },
      auth: { username: "me", password: PASSWORD, mechanisms: [mechanism] },
      onTranscript: (e) => transcript.push(`${e.direction}: ${e.line}`),
    }, message);
    assert.deepEqual(seen, [mechanism]);
    assert.equal(server.received[0]!.user, "me");
    const all = transcript.join("\n");
    assert.doesNotMatch(all, /horse|Y29ycmVjdCBob3Jz|bWUAY29y|AG1lAGNvcnJ/);
    assert.match(all, mechanism === "PLAIN" ? /AUTH PLAIN \[redacted\]/ : /\[redacted\]/);
  });
}

test("the strongest mechanism both sides have is chosen by default", async () => {
  const seen: string[] = [];
  await using server = await authServer(seen);
  await sendMail({
    hostname: "localhost",
    port: server.port,
    tlsOptions: { caCerts: [testCa] },
    auth: { username: "me", password: PASSWORD },
  }, message);
  assert.deepEqual(seen, ["CRAM-MD5"]);
});

test("a wrong password is an SmtpAuthError and the connection is closed", async () => {
  let connections = 0;
  await using server = await startSmtpServer({
    authMethods: ["PLAIN"],
    onConnect: (_s, cb) => (connections++, cb()),
    onAuth: (_a, _s, cb) => cb(new Error("Invalid username or password")),
  });
  await assert.rejects(
    SmtpClient.connect({
      hostname: "localhost",
      port: server.port,
      tlsOptions: { caCerts: [testCa] },
      auth: { username: "me", password: "wrong-password" },
    }),
    (error: unknown) => {
      assert.ok(error instanceof SmtpAuthError, String(error));
      assert.equal(error.code, 535);
      assert.doesNotMatch(error.message, /wrong-password/);
      return true;
    },
  );
  assert.equal(connections, 1, "no retry loop");
});

/** Logs in as "me" without TLS (allowed for 127.0.0.1 only) to a scripted server. */
function plainLogin(port: number, password: string) {
  return SmtpClient.connect({
    hostname: "127.0.0.1",
    port,
    tls: "none",
    allowPlaintextAuth: ["127.0.0.1"],
    auth: { username: "me", password },
  });
}

test("a refused login ends the session with QUIT, then the socket is closed", async () => {
  const after: string[] = [];
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, ["AUTH PLAIN"]);
    await expectLine(conn, "AUTH PLAIN ");
    await conn.send("535 5.7.8 Authentication credentials invalid\r\n");
    for (let line = await conn.readLine(); line !== null; line = await conn.readLine()) {
      after.push(line);
    }
  });
  await assert.rejects(plainLogin(server.port, "wrong-password"), SmtpAuthError);
  await server.close();
  assert.deepEqual(after, ["QUIT"]);
});

test("XOAUTH2 with a refreshed token after the server refuses the first", async () => {
  await using server = await authServer();
  const requests: boolean[] = [];
  const auth: AuthOptions = {
    username: "me@example.com",
    token: ({ refresh }) => {
      requests.push(refresh);
      return Promise.resolve(refresh ? "good-token" : "expired-token");
    },
  };
  await sendMail({
    hostname: "localhost",
    port: server.port,
    tlsOptions: { caCerts: [testCa] },
    auth,
  }, message);
  assert.deepEqual(requests, [false, true]);
  assert.equal(server.received.length, 1);
});

test("a server that offers nothing the client can use fails before MAIL", async () => {
  await using server = startScriptedServer(async (conn) => {
    await greet(conn, ["AUTH GSSAPI NTLM"]);
    await conn.waitForClose();
  });
  await assert.rejects(
    plainLogin(server.port, "p"),
    (error: unknown) => error instanceof SmtpUnsupportedError && /GSSAPI, NTLM/.test(error.message),
  );
  await server.close();
  assert.doesNotMatch(server.connections[0]!.received, /AUTH|MAIL/);
});

test("credentials are refused without TLS unless the host is allowed by name", async () => {
  let connections = 0;
  await using server = startScriptedServer(async (conn) => {
    connections++;
    await greet(conn, ["AUTH PLAIN"]);
    await conn.waitForClose();
  });
  await assert.rejects(
    SmtpClient.connect({
      hostname: "127.0.0.1",
      port: server.port,
      tls: "none",
      auth: { username: "me", password: "p" },
    }),
    (error: unknown) => error instanceof TypeError && /allowPlaintextAuth/.test(error.message),
  );
  assert.equal(connections, 0, "refused before any connection");
});

/** A scripted server that checks each step of an exchange, then accepts one message. */
function scriptedAuth(mechanism: string, steps: (line: string) => Promise<string> | string) {
  return startScriptedServer(async (conn) => {
    await greet(conn, [`AUTH ${mechanism}`, "PIPELINING"]);
    let line = await expectLine(conn, `AUTH ${mechanism}`);
    while (true) {
      const reply = await steps(line);
      await conn.send(reply + "\r\n");
      if (!reply.startsWith("334")) break;
      line = (await conn.readLine())!;
    }
    await conn.waitForClose();
  });
}

const b64 = (s: string) => btoa(s);
const unb64 = (s: string) => atob(s);

test("OAUTHBEARER exchange against a scripted server", async () => {
  await using server = scriptedAuth("OAUTHBEARER", (line) => {
    const payload = unb64(line.split(" ")[2]!);
    assert.equal(
      payload,
      "n,a=me@example.com,\x01host=127.0.0.1\x01port=" + server.port +
        "\x01auth=Bearer tok\x01\x01",
    );
    return "235 2.7.0 Accepted";
  });
  const client = await SmtpClient.connect({
    hostname: "127.0.0.1",
    port: server.port,
    tls: "none",
    allowPlaintextAuth: ["127.0.0.1"],
    auth: { username: "me@example.com", token: "tok", mechanism: "OAUTHBEARER" },
  });
  await client.quit();
});

test("DIGEST-MD5 exchange against a scripted server that checks the response", async () => {
  let cnonce = "";
  let step = 0;
  const nonce = "OA6MG9tEQGm2hh";
  const ha1 = () =>
    createHash("md5").update(
      Buffer.concat([
        createHash("md5").update(`me:example.test:${PASSWORD}`).digest(),
        Buffer.from(`:${nonce}:${cnonce}`),
      ]),
    ).digest("hex");
  const md5 = (s: string) => createHash("md5").update(s).digest("hex");
  await using server = scriptedAuth("DIGEST-MD5", (line) => {
    step++;
    if (step === 1) {
      return "334 " +
        b64(`realm="example.test",nonce="${nonce}",qop="auth",charset=utf-8,algorithm=md5-sess`);
    }
    if (step === 2) {
      const response = unb64(line);
      cnonce = /cnonce="([^"]+)"/.exec(response)![1]!;
      assert.match(response, /digest-uri="smtp\/127.0.0.1"/);
      const expected = md5(
        `${ha1()}:${nonce}:00000001:${cnonce}:auth:${md5("AUTHENTICATE:smtp/127.0.0.1")}`,
      );
      assert.match(response, new RegExp(`response=${expected}`));
      return "334 " +
        b64(
          `rspauth=${md5(`${ha1()}:${nonce}:00000001:${cnonce}:auth:${md5(":smtp/127.0.0.1")}`)}`,
        );
    }
    assert.equal(line, "");
    return "235 2.7.0 Accepted";
  });
  const client = await SmtpClient.connect({
    hostname: "127.0.0.1",
    port: server.port,
    tls: "none",
    allowPlaintextAuth: ["127.0.0.1"],
    auth: { username: "me", password: PASSWORD, mechanisms: ["DIGEST-MD5"] },
  });
  await client.quit();
  assert.equal(step, 3);
});

for (const honest of [true, false]) {
  test(`SCRAM-SHA-256 against a scripted server ${honest ? "that proves the password" : "that fakes its signature"}`, async () => {
    const salt = Buffer.from("postie-salt");
    const iterations = 4096;
    let clientFirstBare = "";
    let serverFirst = "";
    let step = 0;
    const hmac = (key: Uint8Array, data: string) => createHmac("sha256", key).update(data).digest();
    await using server = scriptedAuth("SCRAM-SHA-256", (line) => {
      step++;
      if (step === 1) {
        const first = unb64(line.split(" ")[2]!);
        assert.match(first, /^n,,n=me,r=[^,]+$/);
        clientFirstBare = first.slice(3);
        const nonce = clientFirstBare.split("r=")[1]!;
        serverFirst = `r=${nonce}SERVER,s=${salt.toString("base64")},i=${iterations}`;
        return "334 " + b64(serverFirst);
      }
      if (step === 2) {
        const final = unb64(line);
        const withoutProof = final.slice(0, final.indexOf(",p="));
        const proof = Buffer.from(final.slice(final.indexOf(",p=") + 3), "base64");
        const salted = pbkdf2Sync(PASSWORD, salt, iterations, 32, "sha256");
        const clientKey = hmac(salted, "Client Key");
        const storedKey = createHash("sha256").update(clientKey).digest();
        const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
        const signature = hmac(storedKey, authMessage);
        const recovered = Buffer.from(proof.map((b, i) => b ^ signature[i]!));
        assert.ok(recovered.equals(clientKey), "client proof is right");
        const serverSignature = honest
          ? hmac(hmac(salted, "Server Key"), authMessage)
          : Buffer.alloc(32, 7);
        return "334 " + b64(`v=${serverSignature.toString("base64")}`);
      }
      if (line === "*") return "501 5.7.0 Cancelled";
      assert.equal(line, "");
      return "235 2.7.0 Accepted";
    });
    const connect = SmtpClient.connect({
      hostname: "127.0.0.1",
      port: server.port,
      tls: "none",
      allowPlaintextAuth: ["127.0.0.1"],
      auth: { username: "me", password: PASSWORD, mechanisms: ["SCRAM-SHA-256"] },
    });
    if (honest) {
      await (await connect).quit();
    } else {
      await assert.rejects(
        connect,
        (error: unknown) =>
          error instanceof SmtpAuthError && /signature is wrong/.test(error.message),
      );
    }
  });
}
