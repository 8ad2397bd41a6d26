/**
 * `signMessage()` and `signatureHeaders()` on raw messages, every signature checked by mailauth:
 * both algorithms, both at once, every canonicalization, the tags written, the header fields
 * chosen; and the negative cases that prove the verifier really checks (a tampered body, a
 * tampered signed header, a field copy added on the way).
 */
import assert from "node:assert/strict";
import { signatureHeaders, signMessage } from "../../src/dkim/mod.ts";
import type { DkimCanonicalization } from "../../src/dkim/mod.ts";
import { test } from "../_helpers/test.ts";
import { assertFails, assertVerifies, makeKeys, signatureTags, verify } from "./_dkim.ts";

const keys = await makeKeys();
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A raw message with what tends to break signatures: folding, odd whitespace, 8-bit text. */
const RAW = [
  "From: =?UTF-8?Q?Zo=C3=AB?= <zoe@example.com>",
  "To: Bob <bob@example.net>,",
  "  carol@example.net",
  "Cc: dave@example.net",
  "Subject:   Gr\u00fc\u00dfe,  \t  und ein sehr langer Betreff, der \u00fcber die Zeile",
  " hinausgeht und gefaltet wurde",
  "Date: Mon, 01 Jan 2024 10:00:00 +0000",
  "Message-ID: <raw-1@example.com>",
  "List-Unsubscribe: <mailto:unsubscribe@example.com>",
  "List-Id: <news.example.com>",
  "X-Not-Signed: by default",
  "MIME-Version: 1.0",
  "Content-Type: text/plain; charset=UTF-8",
  "Content-Transfer-Encoding: 8bit",
  "",
  "Hallo Bob,  ",
  "",
  ".a line with a leading dot",
  "..and two",
  "\ttabs\t\tand  spaces  ",
  "",
  "",
].join("\r\n");

test("RSA-2048 and Ed25519 signatures of a raw message verify, alone and together", async () => {
  await assertVerifies(await signMessage(RAW, keys.rsa), keys.dns, ["rsa2048"]);
  await assertVerifies(await signMessage(RAW, keys.ed25519), keys.dns, ["ed25519"]);
  const dual = await signMessage(RAW, [keys.rsa, keys.ed25519]);
  await assertVerifies(dual, keys.dns, ["rsa2048", "ed25519"]);
  assert.deepEqual(signatureTags(dual).map((t) => t.a), ["rsa-sha256", "ed25519-sha256"]);
});

test("every canonicalization verifies; relaxed/relaxed is the default", async () => {
  assert.equal(signatureTags(await signMessage(RAW, keys.rsa))[0]!.c, "relaxed/relaxed");
  const modes: DkimCanonicalization[] = [
    "relaxed/relaxed",
    "relaxed/simple",
    "simple/relaxed",
    "simple/simple",
  ];
  for (const canonicalization of modes) {
    const signed = await signMessage(RAW, [
      { ...keys.rsa, canonicalization },
      { ...keys.ed25519, canonicalization },
    ]);
    assert.equal(signatureTags(signed)[0]!.c, canonicalization);
    await assertVerifies(signed, keys.dns, ["rsa2048", "ed25519"]);
  }
});

test("the tags: v, a, c, d, s, t, h, bh, b; x only with expiresInSeconds; never l", async () => {
  const before = Math.floor(Date.now() / 1000);
  const [plain] = signatureTags(await signMessage(RAW, keys.rsa));
  assert.deepEqual(Object.keys(plain!), ["v", "a", "c", "d", "s", "t", "h", "bh", "b"]);
  assert.equal(plain!.d, "example.com");
  assert.equal(plain!.s, "rsa2048");
  assert.ok(Number(plain!.t) >= before && Number(plain!.t) <= before + 5);

  const signed = await signMessage(RAW, { ...keys.ed25519, expiresInSeconds: 86400 });
  const [expiring] = signatureTags(signed);
  assert.equal(Number(expiring!.x), Number(expiring!.t) + 86400);
  await assertVerifies(signed, keys.dns, ["ed25519"]);
});

test("h= signs the default fields present, List-* too, and over-signs From, To, Cc, Subject, Date", async () => {
  const [tags] = signatureTags(await signMessage(RAW, keys.rsa));
  assert.deepEqual(tags!.h!.split(":"), [
    "from",
    "from",
    "to",
    "to",
    "cc",
    "cc",
    "subject",
    "subject",
    "date",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "list-id",
    "list-unsubscribe",
  ]);
  // Fields that are absent are not signed as absent: relays add some (Postfix adds a Date).
  const [minimal] = signatureTags(
    await signMessage("From: a@example.com\r\n\r\nx\r\n", keys.rsa),
  );
  assert.equal(minimal!.h, "from:from");
});

test("headers: the list given is signed, From always, each name as often as the field appears", async () => {
  const signed = await signMessage(RAW, { ...keys.rsa, headers: ["X-Not-Signed", "Subject"] });
  assert.equal(signatureTags(signed)[0]!.h, "from:from:x-not-signed:subject:subject");
  await assertVerifies(signed, keys.dns, ["rsa2048"]);
});

test("line ends become CRLF as SMTP delivers them, and the signature covers that", async () => {
  const lf = "From: a@example.com\nSubject: LF only\n\nline one\nline two";
  const signed = await signMessage(lf, keys.ed25519);
  const text = decoder.decode(signed);
  assert.ok(
    text.endsWith("\r\nFrom: a@example.com\r\nSubject: LF only\r\n\r\nline one\r\nline two\r\n"),
  );
  await assertVerifies(signed, keys.dns, ["ed25519"]);
});

test("a stream is signed as its bytes are; signatureHeaders() reads it once", async () => {
  const bytes = encoder.encode(RAW);
  const chunked = () =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 7) controller.enqueue(bytes.slice(i, i + 7));
        controller.close();
      },
    });
  const signed = await signMessage(chunked(), [keys.rsa, keys.ed25519]);
  await assertVerifies(signed, keys.dns, ["rsa2048", "ed25519"]);
  const fields = await signatureHeaders(chunked(), [keys.rsa, keys.ed25519]);
  assert.match(fields, /^DKIM-Signature: [^]*\r\nDKIM-Signature: [^]*\r\n$/);
  await assertVerifies(fields + RAW, keys.dns, ["rsa2048", "ed25519"]);
});

test("a tampered body fails verification", async () => {
  const signed = decoder.decode(await signMessage(RAW, [keys.rsa, keys.ed25519]));
  const tampered = signed.replace("Hallo Bob,", "Hallo Rob,");
  assert.notEqual(tampered, signed);
  const verdicts = await assertFails(tampered, keys.dns);
  for (const verdict of verdicts) assert.match(verdict.comment, /body hash did not verify/);
});

test("a tampered signed header fails verification; an unsigned one does not matter", async () => {
  const signed = decoder.decode(await signMessage(RAW, [keys.rsa, keys.ed25519]));
  await assertFails(signed.replace("Message-ID: <raw-1@", "Message-ID: <raw-2@"), keys.dns);
  await assertVerifies(
    signed.replace("X-Not-Signed: by default", "X-Not-Signed: changed"),
    keys.dns,
    ["rsa2048", "ed25519"],
  );
});

test("over-signing: a second Subject, From or Cc added on the way breaks the signature", async () => {
  const signed = decoder.decode(await signMessage(RAW, keys.ed25519));
  for (const added of ["Subject: Pay now", "From: ceo@example.com", "Cc: eve@example.org"]) {
    const [fields, body] = [
      signed.slice(0, signed.indexOf("\r\n\r\n")),
      signed.slice(signed.indexOf("\r\n\r\n")),
    ];
    await assertFails(`${fields}\r\n${added}${body}`, keys.dns);
  }
  // Without Subject in h=, the same addition goes through: the failure above is over-signing's.
  const narrow = decoder.decode(await signMessage(RAW, { ...keys.ed25519, headers: ["To"] }));
  const cut = narrow.indexOf("\r\n\r\n");
  const added = `${narrow.slice(0, cut)}\r\nSubject: Pay now${narrow.slice(cut)}`;
  assert.deepEqual((await verify(added, keys.dns)).map((v) => v.result), ["pass"]);
  // And a field that is not signed may be added.
  const withReceived = signed.replace("From: ", "Received: by relay.example.net\r\nFrom: ");
  assert.deepEqual((await verify(withReceived, keys.dns)).map((v) => v.result), ["pass"]);
});

test("a field the message lacks may be added on the way (Postfix adds a Date): the signature holds", async () => {
  const signed = decoder.decode(
    await signMessage("From: a@example.com\r\nSubject: no date\r\n\r\nx\r\n", keys.ed25519),
  );
  const withDate = signed.replace(
    "Subject: no date\r\n",
    "Subject: no date\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-Id: <added@relay>\r\n",
  );
  await assertVerifies(withDate, keys.dns, ["ed25519"]);
});

test("relaxed survives what relays do to whitespace and header case; simple does not", async () => {
  const relaxed = decoder.decode(await signMessage(RAW, keys.rsa));
  const simple = decoder.decode(
    await signMessage(RAW, { ...keys.rsa, canonicalization: "simple/simple" }),
  );
  const relay = (text: string) =>
    text.replace("Subject:   Gr", "SUBJECT: Gr").replace("Hallo Bob,  ", "Hallo Bob,");
  await assertVerifies(relay(relaxed), keys.dns, ["rsa2048"]);
  await assertFails(relay(simple), keys.dns);
});

test("the dkim option is checked: unknown fields (nodemailer's named), domain, selector, lists", async () => {
  const cases: [unknown, RegExp][] = [
    [
      { ...keys.rsa, domainName: "example.com" },
      /Unknown field "domainName" in dkim: postie calls it "domain"/,
    ],
    [{ ...keys.rsa, selectr: "x" }, /Unknown field "selectr" in dkim: did you mean "selector"\?/],
    [
      { ...keys.rsa, domain: "not a domain" },
      /^Invalid dkim\.domain "not a domain": not a domain name$/,
    ],
    [{ ...keys.rsa, domain: "localhost" }, /^Invalid dkim\.domain "localhost"/],
    [{ ...keys.rsa, selector: "bad selector" }, /^Invalid dkim\.selector "bad selector"/],
    [{ ...keys.rsa, selector: "a\r\nb" }, /^Invalid dkim\.selector/],
    [
      { ...keys.rsa, canonicalization: "relaxed" },
      /^Invalid dkim\.canonicalization "relaxed": expected one of/,
    ],
    [{ ...keys.rsa, headers: "From:To" }, /^Invalid dkim\.headers: expected a list/],
    [
      { ...keys.rsa, headers: ["Sub ject"] },
      /^Invalid dkim\.headers: "Sub ject" is not a field name/,
    ],
    [{ ...keys.rsa, algorithm: "rsa-sha1" }, /^Invalid dkim\.algorithm "rsa-sha1"/],
    [[], /^Invalid dkim: the list of signers is empty \(use false for none\)/],
    [
      [keys.rsa, { ...keys.ed25519, privateKey: undefined }],
      /^Invalid dkim\[1\]\.privateKey for example\.com \(selector ed25519\): missing/,
    ],
  ];
  for (const [dkim, pattern] of cases) {
    // deno-lint-ignore no-explicit-any
    await assert.rejects(signMessage(RAW, dkim as any), (error: Error) => {
      assert.ok(error instanceof TypeError, `${error.name}: ${error.message}`);
      assert.match(error.message, pattern);
      return true;
    });
  }
  await assert.rejects(signMessage(RAW, { ...keys.rsa, expiresInSeconds: 0 }), RangeError);
  await assert.rejects(signMessage(RAW, { ...keys.rsa, expiresInSeconds: 1.5 }), RangeError);
});

test("a raw message without a From field cannot be signed", async () => {
  await assert.rejects(
    signMessage("Subject: no sender\r\n\r\nbody\r\n", keys.rsa),
    (error: Error) => error instanceof TypeError && /it has no From field/.test(error.message),
  );
});

test("an internationalised domain signs as punycode (d=), and verifies there", async () => {
  const idn = await makeKeys("xn--bcher-kva.example");
  const signed = await signMessage(RAW, { ...idn.ed25519, domain: "Bücher.example" });
  assert.equal(signatureTags(signed)[0]!.d, "xn--bcher-kva.example");
  await assertVerifies(signed, idn.dns, ["ed25519"]);
});
