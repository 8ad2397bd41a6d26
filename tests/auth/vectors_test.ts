import assert from "node:assert/strict";
import { cramMd5, digestMd5, login, plain, scramSha256, xoauth2 } from "../../mod.ts";
import { test } from "../_helpers/test.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

test("PLAIN follows RFC 4616, with and without an authorization identity", async () => {
  assert.equal(dec((await plain("tim", "tanstaaftanstaaf").start())!), "\0tim\0tanstaaftanstaaf");
  assert.equal(dec((await plain("Kurt", "xipj3plmq", "Ursel").start())!), "Ursel\0Kurt\0xipj3plmq");
  assert.throws(() => plain("a\0b", "c"), TypeError);
});

test("LOGIN answers by order and refuses a third challenge", async () => {
  const mechanism = login("me", "secret");
  assert.equal(await mechanism.start(), null);
  assert.equal(dec(await mechanism.next(enc("VXNlcm5hbWU6"))), "me");
  assert.equal(dec(await mechanism.next(enc("whatever"))), "secret");
  await assert.rejects(mechanism.next(enc("again")));
});

test("CRAM-MD5 matches RFC 2195", async () => {
  const response = await cramMd5("tim", "tanstaaftanstaaf").next(
    enc("<1896.697170952@postoffice.reston.mci.net>"),
  );
  assert.equal(dec(response), "tim b913a602c7eda7a495b4e6e7334d3890");
});

test("DIGEST-MD5 matches RFC 2831, including the server's rspauth", async () => {
  const mechanism = digestMd5("chris", "secret", "elwood.innosoft.com", {
    cnonce: "OA6MHXh6VqTrRk",
    service: "imap",
  });
  assert.equal(await mechanism.start(), null);
  const response = dec(
    await mechanism.next(
      enc(
        'realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",algorithm=md5-sess,charset=utf-8',
      ),
    ),
  );
  assert.match(response, /response=d388dad90d4bbd760a152321f2143af7/);
  assert.match(response, /digest-uri="imap\/elwood.innosoft.com"/);
  assert.match(response, /username="chris"/);
  assert.match(response, /nc=00000001/);
  await assert.rejects(mechanism.verify!(new Uint8Array()));
  const final = await mechanism.next(enc("rspauth=ea40f60335c427b5527b84dbabcdfffd"));
  assert.equal(final.length, 0);
  await mechanism.verify!(new Uint8Array());
});

test("DIGEST-MD5 refuses a wrong rspauth", async () => {
  const mechanism = digestMd5("chris", "secret", "elwood.innosoft.com", {
    cnonce: "OA6MHXh6VqTrRk",
  });
  await mechanism.next(enc('realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth"'));
  await assert.rejects(mechanism.next(enc("rspauth=00000000000000000000000000000000")), /rspauth/);
});

const serverFirst =
  "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

test("SCRAM-SHA-256 matches RFC 7677 and verifies the server signature", async () => {
  const mechanism = scramSha256("user", "pencil", { nonce: "rOprNGfwEbeRWgbNEkqO" });
  assert.equal(dec((await mechanism.start())!), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  assert.equal(
    dec(await mechanism.next(enc(serverFirst))),
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  );
  await assert.rejects(mechanism.verify!(new Uint8Array()), /without proving/);
  const final = await mechanism.next(enc("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
  assert.equal(final.length, 0);
  await mechanism.verify!(new Uint8Array());
});

test("SCRAM-SHA-256 refuses a wrong server signature, a foreign nonce and huge iteration counts", async () => {
  const wrong = scramSha256("user", "pencil", { nonce: "rOprNGfwEbeRWgbNEkqO" });
  await wrong.next(enc(serverFirst));
  await assert.rejects(
    wrong.next(enc("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")),
    /signature is wrong/,
  );
  const foreign = scramSha256("user", "pencil", { nonce: "abc" });
  await assert.rejects(foreign.next(enc("r=xyz123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")), /nonce/);
  const slow = scramSha256("user", "pencil", { nonce: "abc" });
  await assert.rejects(
    slow.next(enc("r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999")),
    /iteration/,
  );
});

test("XOAUTH2 builds the bearer message and answers an error challenge with nothing", async () => {
  const mechanism = xoauth2("me@example.com", "ya29.token");
  assert.equal(
    dec((await mechanism.start())!),
    "user=me@example.com\x01auth=Bearer ya29.token\x01\x01",
  );
  assert.equal((await mechanism.next(enc('{"status":"401"}'))).length, 0);
});

test("mechanisms never show their secrets", () => {
  const secrets = [
    plain("u", "hunter2-plain"),
    login("u", "hunter2-login"),
    cramMd5("u", "hunter2-cram"),
    digestMd5("u", "hunter2-digest", "h"),
    scramSha256("u", "hunter2-scram"),
    xoauth2("u", "hunter2-token"),
  ];
  for (const mechanism of secrets) {
    for (const shown of [String(mechanism), JSON.stringify(mechanism), Deno.inspect(mechanism)]) {
      assert.doesNotMatch(shown, /hunter2/);
    }
  }
});
