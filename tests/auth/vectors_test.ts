import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import {
  cramMd5,
  digestMd5,
  login,
  oauthBearer,
  plain,
  scramSha256,
  xoauth2,
} from "../../src/auth/mod.ts";
import { parseDirectives } from "../../src/auth/digest_md5.ts";
import { test } from "../_helpers/test.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

// --- PLAIN (RFC 4616 section 4) -----------------------------------------------------------------

test("PLAIN follows RFC 4616's examples, with and without an authorization identity", async () => {
  assert.equal(dec((await plain("tim", "tanstaaftanstaaf").start())!), "\0tim\0tanstaaftanstaaf");
  assert.equal(dec((await plain("Kurt", "xipj3plmq", "Ursel").start())!), "Ursel\0Kurt\0xipj3plmq");
  assert.equal(dec((await plain("jürgen", "pässwörd").start())!), "\0jürgen\0pässwörd", "UTF-8");
});

test("PLAIN refuses NUL and empty credentials, and any challenge", async () => {
  assert.throws(() => plain("a\0b", "c"), TypeError);
  assert.throws(() => plain("a", "c\0"), TypeError);
  assert.throws(() => plain("a", "c", "z\0"), TypeError);
  assert.throws(() => plain("", "c"), TypeError);
  assert.throws(() => plain("a", ""), TypeError);
  assert.throws(() => plain(undefined as unknown as string, "c"), /must be a string/);
  await assert.rejects(plain("a", "b").next(new Uint8Array()), /no challenge/);
});

// --- LOGIN --------------------------------------------------------------------------------------

test("LOGIN answers by order whatever the prompts say, and refuses a third challenge", async () => {
  const mechanism = login("me", "secret");
  assert.equal(await mechanism.start(), null);
  assert.equal(dec(await mechanism.next(enc("Benutzername:"))), "me");
  assert.equal(dec(await mechanism.next(enc(""))), "secret");
  await assert.rejects(mechanism.next(enc("Password:")), /third/);
  assert.throws(() => login("me\r\nMAIL FROM:<x>", "p"), TypeError);
});

// --- CRAM-MD5 (RFC 2195 section 2) --------------------------------------------------------------

test("CRAM-MD5 matches RFC 2195's example", async () => {
  const mechanism = cramMd5("tim", "tanstaaftanstaaf");
  assert.equal(await mechanism.start(), null);
  const response = await mechanism.next(enc("<1896.697170952@postoffice.reston.mci.net>"));
  assert.equal(dec(response), "tim b913a602c7eda7a495b4e6e7334d3890");
  assert.equal(
    btoa(dec(response)),
    "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw",
    "the base64 line of the RFC",
  );
  await assert.rejects(mechanism.next(enc("<again@x>")), /one challenge/);
});

// --- DIGEST-MD5 (RFC 2831 section 4) ------------------------------------------------------------

const rfc2831Challenge = 'realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",' +
  "algorithm=md5-sess,charset=utf-8";

test("DIGEST-MD5 matches RFC 2831's example exactly, including the server's rspauth", async () => {
  const mechanism = digestMd5("chris", "secret", "elwood.innosoft.com", {
    cnonce: "OA6MHXh6VqTrRk",
    service: "imap",
  });
  assert.equal(await mechanism.start(), null);
  assert.equal(
    dec(await mechanism.next(enc(rfc2831Challenge))),
    'charset=utf-8,username="chris",realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",' +
      'nc=00000001,cnonce="OA6MHXh6VqTrRk",digest-uri="imap/elwood.innosoft.com",' +
      "response=d388dad90d4bbd760a152321f2143af7,qop=auth",
  );
  await assert.rejects(mechanism.verify!(new Uint8Array()), /without proving/);
  const final = await mechanism.next(enc("rspauth=ea40f60335c427b5527b84dbabcdfffd"));
  assert.equal(final.length, 0, "the final challenge is answered with an empty response");
  await mechanism.verify!(new Uint8Array());
  await assert.rejects(mechanism.next(enc("rspauth=x")), /third/);
});

test("DIGEST-MD5 checks rspauth in verify() when it comes with the success reply", async () => {
  const mechanism = digestMd5("chris", "secret", "elwood.innosoft.com", {
    cnonce: "OA6MHXh6VqTrRk",
    service: "imap",
  });
  await mechanism.next(enc(rfc2831Challenge));
  await assert.rejects(mechanism.verify!(enc("rspauth=00000000000000000000000000000000")), /wrong/);
  await mechanism.verify!(enc("rspauth=ea40f60335c427b5527b84dbabcdfffd"));
});

test("DIGEST-MD5 refuses a wrong or missing rspauth", async () => {
  const wrong = digestMd5("chris", "secret", "elwood.innosoft.com", { cnonce: "OA6MHXh6VqTrRk" });
  await wrong.next(enc(rfc2831Challenge));
  await assert.rejects(
    wrong.next(enc("rspauth=ea40f60335c427b5527b84dbabcdfffd")),
    /rspauth is wrong/,
    "the RFC's rspauth is for imap/, not smtp/",
  );
  const missing = digestMd5("chris", "secret", "elwood.innosoft.com");
  await missing.next(enc(rfc2831Challenge));
  await assert.rejects(missing.next(enc("foo=bar")), /no rspauth/);
});

test("DIGEST-MD5 refuses challenges it cannot answer safely", async () => {
  const fresh = () => digestMd5("chris", "secret", "h");
  await assert.rejects(fresh().next(enc('realm="r",qop="auth"')), /no nonce/);
  await assert.rejects(fresh().next(enc('nonce="n",qop="auth-conf"')), /qop=auth/);
  await assert.rejects(fresh().next(enc('nonce="n",algorithm=md5')), /algorithm/);
});

test("DIGEST-MD5 uses a random cnonce, the smtp service and the first realm by default", async () => {
  const first = dec(
    await digestMd5("u", "p", "mx.example").next(enc('realm="a",realm="b",nonce="n",qop="auth"')),
  );
  const second = dec(await digestMd5("u", "p", "mx.example").next(enc('nonce="n"')));
  const cnonce = (response: string) => /cnonce="([^"]+)"/.exec(response)![1]!;
  assert.notEqual(cnonce(first), cnonce(second));
  assert.ok(cnonce(first).length >= 20);
  assert.match(first, /digest-uri="smtp\/mx\.example"/);
  assert.match(first, /realm="a"/);
  assert.doesNotMatch(second, /realm=/, "no realm offered, none sent");
  assert.doesNotMatch(second, /charset=/, "no charset offered, none sent");
});

test("DIGEST-MD5 hashes ISO 8859-1 credentials as ISO 8859-1 and others as UTF-8", async () => {
  const md5 = (data: Buffer | string) => createHash("md5").update(data).digest();
  const md5Hex = (data: Buffer | string) => createHash("md5").update(data).digest("hex");
  const expected = (user: Buffer, password: Buffer, response: string) => {
    const cnonce = /cnonce="([^"]+)"/.exec(response)![1]!;
    const a1 = Buffer.concat([
      md5(Buffer.concat([user, Buffer.from(":r:"), password])),
      Buffer.from(`:n:${cnonce}`),
    ]);
    const a2 = md5Hex("AUTHENTICATE:smtp/h");
    return md5Hex(`${md5Hex(a1)}:n:00000001:${cnonce}:auth:${a2}`);
  };
  const challenge = enc('realm="r",nonce="n",qop="auth",charset=utf-8');
  const latin = dec(await digestMd5("jürgen", "pässwort", "h").next(challenge));
  assert.match(latin, /username="jürgen"/);
  assert.match(
    latin,
    new RegExp(
      `response=${
        expected(Buffer.from("jürgen", "latin1"), Buffer.from("pässwort", "latin1"), latin)
      }`,
    ),
  );
  const cyrillic = dec(await digestMd5("jürgen", "пароль", "h").next(challenge));
  assert.match(
    cyrillic,
    new RegExp(
      `response=${
        expected(Buffer.from("jürgen", "latin1"), Buffer.from("пароль", "utf8"), cyrillic)
      }`,
    ),
  );
  await assert.rejects(
    digestMd5("u", "пароль", "h").next(enc('realm="r",nonce="n",qop="auth"')),
    /charset=utf-8/,
  );
});

test("DIGEST-MD5 directives: quoted strings with escapes, repeated keys, spaces", () => {
  const directives = parseDirectives(
    ' realm="a,b", realm = "c\\"d" ,nonce=xyz, qop="auth,auth-int",stale=true',
  );
  assert.deepEqual(directives.get("realm"), ["a,b", 'c"d']);
  assert.deepEqual(directives.get("nonce"), ["xyz"]);
  assert.deepEqual(directives.get("qop"), ["auth,auth-int"]);
  assert.deepEqual(directives.get("stale"), ["true"]);
});

// --- SCRAM-SHA-256 (RFC 7677 section 3) ---------------------------------------------------------

const clientNonce = "rOprNGfwEbeRWgbNEkqO";
const serverFirst =
  "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const clientFinal =
  "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const serverFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

test("SCRAM-SHA-256 produces RFC 7677's exact messages and verifies its server signature", async () => {
  const mechanism = scramSha256("user", "pencil", { nonce: clientNonce });
  assert.equal(dec((await mechanism.start())!), `n,,n=user,r=${clientNonce}`);
  assert.equal(dec(await mechanism.next(enc(serverFirst))), clientFinal);
  await assert.rejects(mechanism.verify!(new Uint8Array()), /without proving/);
  assert.equal((await mechanism.next(enc(serverFinal))).length, 0);
  await mechanism.verify!(new Uint8Array());
  await assert.rejects(mechanism.next(enc(serverFinal)), /after its final/);
});

test("SCRAM-SHA-256 accepts the server signature in the success data instead", async () => {
  const mechanism = scramSha256("user", "pencil", { nonce: clientNonce });
  await mechanism.next(enc(serverFirst));
  await mechanism.verify!(enc(serverFinal));
});

test("SCRAM-SHA-256 refuses a wrong server signature, in a challenge and in the success data", async () => {
  const wrong = "v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
  const challenged = scramSha256("user", "pencil", { nonce: clientNonce });
  await challenged.next(enc(serverFirst));
  await assert.rejects(challenged.next(enc(wrong)), /signature is wrong/);
  await assert.rejects(challenged.verify!(new Uint8Array()), /without proving/);
  const success = scramSha256("user", "pencil", { nonce: clientNonce });
  await success.next(enc(serverFirst));
  await assert.rejects(success.verify!(enc(wrong)), /signature is wrong/);
  await assert.rejects(success.verify!(enc("v=not base64!")), /signature is wrong/);
  const other = scramSha256("user", "pencil2", { nonce: clientNonce });
  await other.next(enc(serverFirst));
  await assert.rejects(other.next(enc(serverFinal)), /signature is wrong/, "other password");
});

test("SCRAM-SHA-256 refuses a foreign or unextended nonce, bad iteration counts and errors", async () => {
  const fresh = () => scramSha256("user", "pencil", { nonce: "abc" });
  const salt = "s=W22ZaJ0SNY7soEsUEjb6gQ==";
  await assert.rejects(fresh().next(enc(`r=xyz123,${salt},i=4096`)), /nonce/);
  await assert.rejects(fresh().next(enc(`r=abc,${salt},i=4096`)), /nonce/, "not extended");
  await assert.rejects(fresh().next(enc(`r=abcdef,${salt},i=99999999`)), /iteration/);
  await assert.rejects(fresh().next(enc(`r=abcdef,${salt},i=0`)), /iteration/);
  await assert.rejects(fresh().next(enc(`r=abcdef,${salt},i=4.5`)), /iteration/);
  await assert.rejects(fresh().next(enc("r=abcdef,i=4096")), /salt/);
  await assert.rejects(fresh().next(enc("e=unknown-user")), /unknown-user/);
  await assert.rejects(fresh().next(enc(`m=ext,r=abcdef,${salt},i=4096`)), /extension/);
  const errorFinal = scramSha256("user", "pencil", { nonce: clientNonce });
  await errorFinal.next(enc(serverFirst));
  await assert.rejects(errorFinal.next(enc("e=invalid-proof")), /invalid-proof/);
});

test("SCRAM-SHA-256 escapes the user name, prepares it with SASLprep, and checks the nonce", async () => {
  const first = dec((await scramSha256("a=b,c\u00ad", "p", { nonce: "n" }).start())!);
  assert.equal(first, "n,,n=a=3Db=2Cc,r=n");
  assert.equal(dec((await scramSha256("\u2168", "p", { nonce: "n" }).start())!), "n,,n=IX,r=n");
  assert.throws(() => scramSha256("u", "p", { nonce: "a,b" }), /nonce/);
  assert.throws(() => scramSha256("u", "p", { nonce: "" }), /nonce/);
  assert.throws(() => scramSha256("u", "\u00ad"), /empty after SASLprep/);
  assert.throws(() => scramSha256("u", "p\u0007"), TypeError);
  const nonces = new Set<string>();
  for (let i = 0; i < 20; i++) {
    nonces.add(/r=(.+)$/.exec(dec((await scramSha256("u", "p").start())!))![1]!);
  }
  assert.equal(nonces.size, 20, "a fresh random nonce each time");
});

test("SCRAM-SHA-256 hashes the SASLprep form of the password", async () => {
  // U+00A0 NO-BREAK SPACE maps to a space and U+00AD SOFT HYPHEN to nothing: "pen cil" and
  // "pen\u00a0c\u00adil" must give the same proof.
  const proof = async (password: string) => {
    const mechanism = scramSha256("user", password, { nonce: clientNonce });
    return dec(await mechanism.next(enc(serverFirst)));
  };
  assert.equal(await proof("pen\u00a0c\u00adil"), await proof("pen cil"));
  assert.notEqual(await proof("pen cil"), await proof("pencil"));
});

// --- XOAUTH2 and OAUTHBEARER --------------------------------------------------------------------

test("XOAUTH2 builds the bearer message and answers one error challenge with nothing", async () => {
  const mechanism = xoauth2("me@example.com", "ya29.token");
  assert.equal(
    dec((await mechanism.start())!),
    "user=me@example.com\x01auth=Bearer ya29.token\x01\x01",
  );
  assert.equal((await mechanism.next(enc('{"status":"401"}'))).length, 0);
  await assert.rejects(mechanism.next(enc("{}")), /at most one/);
  assert.throws(() => xoauth2("me", ""), TypeError);
  assert.throws(() => xoauth2("me", "tok\x01en"), TypeError);
});

test("OAUTHBEARER builds RFC 7628's message and answers an error challenge with ^A", async () => {
  // RFC 7628 section 4.1, with the user name as the authorization identity.
  const mechanism = oauthBearer(
    "user@example.com",
    "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
    "server.example.com",
    143,
  );
  assert.equal(
    dec((await mechanism.start())!),
    "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01" +
      "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01",
  );
  assert.deepEqual(await mechanism.next(enc('{"status":"invalid_token"}')), new Uint8Array([1]));
  await assert.rejects(mechanism.next(enc("{}")), /at most one/);
  assert.equal(
    dec((await oauthBearer("a,b=c", "t", "h", 1).start())!).split("\x01")[0],
    "n,a=a=2Cb=3Dc,",
  );
  assert.throws(() => oauthBearer("u", "t", "h", 0), RangeError);
  assert.throws(() => oauthBearer("u", "t", "h\r\n", 25), TypeError);
});

// --- secrets ------------------------------------------------------------------------------------

test("mechanisms never show their secrets through String, JSON, inspect or console.log", async () => {
  const mechanisms = [
    plain("u", "hunter2-plain"),
    login("u", "hunter2-login"),
    cramMd5("u", "hunter2-cram"),
    digestMd5("u", "hunter2-digest", "h"),
    scramSha256("u", "hunter2-scram"),
    xoauth2("u", "hunter2-token"),
    oauthBearer("u", "hunter2-bearer", "h", 587),
  ];
  // After a start() too: nothing derived from the secret may become visible either.
  for (const mechanism of mechanisms) await mechanism.start();
  const { inspect } = await import("node:util");
  for (const mechanism of mechanisms) {
    const shown = [
      String(mechanism),
      `${mechanism}`,
      JSON.stringify(mechanism),
      JSON.stringify({ auth: { sasl: mechanism } }),
      Deno.inspect(mechanism, { showHidden: true, depth: 10 }),
      inspect(mechanism, { showHidden: true, depth: 10 }),
      Object.keys(mechanism).join(","),
    ];
    for (const text of shown) assert.doesNotMatch(text, /hunter2|aHVudGVyM/, text);
    assert.equal(JSON.stringify(mechanism), `{"name":"${mechanism.name}"}`);
    assert.equal(String(mechanism), `SaslMechanism(${mechanism.name})`);
  }
});
