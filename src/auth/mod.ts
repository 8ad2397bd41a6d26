/**
 * SMTP authentication: the SASL mechanisms postie implements and the AUTH exchange.
 *
 * Most callers never touch this module directly: they pass `auth` to `SmtpClient.connect` or
 * `sendMail`, which calls {@linkcode authenticate} after EHLO. It is public for two cases: a
 * mechanism object for `auth: { sasl }` (a fixed choice, or one postie lacks, implementing
 * {@linkcode SaslMechanism}), and running the exchange over a channel of your own.
 *
 * | mechanism | factory | notes |
 * |---|---|---|
 * | SCRAM-SHA-256 | {@linkcode scramSha256} | RFC 7677; the server proves it knows the password |
 * | CRAM-MD5 | {@linkcode cramMd5} | RFC 2195 |
 * | PLAIN | {@linkcode plain} | RFC 4616; optional authorization identity |
 * | LOGIN | {@linkcode login} | obsolete but common |
 * | DIGEST-MD5 | {@linkcode digestMd5} | RFC 2831, obsolete; only when named |
 * | XOAUTH2 | {@linkcode xoauth2} | Gmail, Microsoft 365 |
 * | OAUTHBEARER | {@linkcode oauthBearer} | RFC 7628 |
 *
 * Mechanism objects keep credentials in private fields: `JSON.stringify`, `String()` and
 * `console.log` show the mechanism name only.
 *
 * @example A mechanism of your choice, run over a scripted conversation
 * ```ts
 * import { authenticate, cramMd5, type SmtpReply } from "@postie/smtp";
 * import assert from "node:assert/strict";
 *
 * const replies: SmtpReply[] = [
 *   { code: 334, lines: [btoa("<1896.697170952@postoffice.reston.mci.net>")] },
 *   { code: 235, lines: ["Authentication successful"] },
 * ];
 * const sent: string[] = [];
 * const conversation = {
 *   exchange(line: string) {
 *     sent.push(line);
 *     return Promise.resolve(replies.shift()!);
 *   },
 * };
 * await authenticate(conversation, { sasl: cramMd5("tim", "tanstaaftanstaaf") }, {
 *   offered: ["CRAM-MD5", "PLAIN"],
 *   hostname: "mx.example",
 *   port: 587,
 * });
 * assert.deepEqual(sent, ["AUTH CRAM-MD5", btoa("tim b913a602c7eda7a495b4e6e7334d3890")]);
 * assert.equal(JSON.stringify(cramMd5("tim", "tanstaaftanstaaf")), '{"name":"CRAM-MD5"}');
 * ```
 *
 * @module
 */

export { authenticate, DEFAULT_PASSWORD_MECHANISMS } from "./authenticate.ts";
export { cramMd5 } from "./cram_md5.ts";
export { digestMd5, type DigestMd5Options } from "./digest_md5.ts";
export { login } from "./login.ts";
export { oauthBearer } from "./oauthbearer.ts";
export { plain } from "./plain.ts";
export { type ScramOptions, scramSha256 } from "./scram_sha_256.ts";
export { xoauth2 } from "./xoauth2.ts";
export type * from "./types.ts";
