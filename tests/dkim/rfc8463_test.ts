/**
 * The worked example of RFC 8463 Appendix A: the same keys, message and `DKIM-Signature` fields
 * give the RFC's signatures byte for byte. Both algorithms are deterministic (Ed25519, and RSA
 * with PKCS #1 v1.5 padding), so this checks the signing input and the signature primitives
 * exactly; the RSA key is the RFC's PKCS#1 one, so it also checks the PKCS#1 to PKCS#8 wrapping.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { BodyCanonicalizer } from "../../src/dkim/_canonicalize.ts";
import { selectFields, splitFields } from "../../src/dkim/_header_fields.ts";
import { resolveDkim, signData, signingInput } from "../../src/dkim/_signer.ts";
import { test } from "../_helpers/test.ts";
import { assertVerifies } from "./_dkim.ts";

/** RFC 8463 A.2: the Ed25519 secret key, as PKCS#8 (RFC 8410) around the RFC's 32 bytes. */
const ED25519_KEY = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g
-----END PRIVATE KEY-----`;

/** RFC 8463 A.2: the RSA secret key (1024 bits), PKCS#1. */
const RSA_KEY = `-----BEGIN RSA PRIVATE KEY-----
MIICXQIBAAKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQi
Y/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqM
KrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB
AoGAH0cxOhFZDgzXWhDhnAJDw5s4roOXN4OhjiXa8W7Y3rhX3FJqmJSPuC8N9vQm
6SVbaLAE4SG5mLMueHlh4KXffEpuLEiNp9Ss3O4YfLiQpbRqE7Tm5SxKjvvQoZZe
zHorimOaChRL2it47iuWxzxSiRMv4c+j70GiWdxXnxe4UoECQQDzJB/0U58W7RZy
6enGVj2kWF732CoWFZWzi1FicudrBFoy63QwcowpoCazKtvZGMNlPWnC7x/6o8Gc
uSe0ga2xAkEA8C7PipPm1/1fTRQvj1o/dDmZp243044ZNyxjg+/OPN0oWCbXIGxy
WvmZbXriOWoSALJTjExEgraHEgnXssuk7QJBALl5ICsYMu6hMxO73gnfNayNgPxd
WFV6Z7ULnKyV7HSVYF0hgYOHjeYe9gaMtiJYoo0zGN+L3AAtNP9huqkWlzECQE1a
licIeVlo1e+qJ6Mgqr0Q7Aa7falZ448ccbSFYEPD6oFxiOl9Y9se9iYHZKKfIcst
o7DUw1/hz2Ck4N5JrgUCQQCyKveNvjzkkd8HjYs0SwM0fPjK16//5qDZ2UiDGnOe
uEzxBDAr518Z8VFbR41in3W4Y3yCDgQlLlcETrS+zYcL
-----END RSA PRIVATE KEY-----`;

/** RFC 8463 A.2: the DNS records. */
const DNS = {
  "brisbane._domainkey.football.example.com":
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
  "test._domainkey.football.example.com": "v=DKIM1; k=rsa; " +
    "p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQi" +
    "Y/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyV" +
    "YLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB",
};

const HEADER = "From: Joe SixPack <joe@football.example.com>\r\n" +
  "To: Suzie Q <suzie@shopping.example.net>\r\n" +
  "Subject: Is dinner ready?\r\n" +
  "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n" +
  "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n";
const BODY = "Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n";
const NAMES = ["from", "to", "subject", "date", "message-id", "from", "subject", "date"];

/** RFC 8463 A.3: the signatures, up to `b=`, and their `b=` values. */
const ED25519_FIELD = "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n" +
  " d=football.example.com; i=@football.example.com;\r\n" +
  " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n" +
  " subject : date : message-id : from : subject : date;\r\n" +
  " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n b=";
const ED25519_B =
  "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==";
const RSA_FIELD = "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n" +
  " d=football.example.com; i=@football.example.com;\r\n" +
  " q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n" +
  " date : message-id : from : subject : date;\r\n" +
  " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n b=";
const RSA_B =
  "F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1" +
  "tFOeS9mPYQTnGdaSGsgeefOsk2JzdA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=";

/** The folded `b=` value as the RFC prints it. */
function fold(b: string, first: number): string {
  return [b.slice(0, first), ...b.slice(first).match(/.{1,58}/g)!].join("\r\n ");
}

test("the body hash of RFC 8463's example is the RFC's bh=", () => {
  const hash = createHash("sha256");
  const canonicalizer = new BodyCanonicalizer("relaxed", hash);
  canonicalizer.push(new TextEncoder().encode(BODY));
  canonicalizer.end();
  assert.equal(hash.digest("base64"), "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=");
});

test("RFC 8463's Ed25519 signature comes out byte for byte", async () => {
  const [signer] = resolveDkim({
    domain: "football.example.com",
    selector: "brisbane",
    privateKey: ED25519_KEY,
  });
  assert.equal(signer!.algorithm, "ed25519-sha256");
  // The second from, subject and date stand for no field: the message has one of each.
  const selected = selectFields(splitFields(HEADER), NAMES);
  assert.equal(selected.length, 5);
  const input = signingInput("relaxed", selected, ED25519_FIELD);
  assert.equal(await signData(signer!, input), ED25519_B);
});

test("RFC 8463's RSA signature comes out byte for byte from its PKCS#1 key", async () => {
  const [signer] = resolveDkim({
    domain: "football.example.com",
    selector: "test",
    privateKey: RSA_KEY,
  });
  assert.equal(signer!.algorithm, "rsa-sha256");
  const input = signingInput("relaxed", selectFields(splitFields(HEADER), NAMES), RSA_FIELD);
  assert.equal(await signData(signer!, input), RSA_B);
});

test("mailauth verifies RFC 8463's signed message (the verifier and its DNS stub work)", async () => {
  const message = `${ED25519_FIELD}${fold(ED25519_B, 56)}\r\n${RSA_FIELD}${
    fold(RSA_B, 56)
  }\r\n${HEADER}\r\n${BODY}`;
  await assertVerifies(message, DNS, ["brisbane", "test"]);
});
