/**
 * SMTP authentication: the SASL mechanisms postie implements and the AUTH exchange.
 *
 * @module
 */

export { authenticate, DEFAULT_PASSWORD_MECHANISMS } from "./authenticate.ts";
export { cramMd5 } from "./cram_md5.ts";
export { digestMd5 } from "./digest_md5.ts";
export { login } from "./login.ts";
export { oauthBearer } from "./oauthbearer.ts";
export { plain } from "./plain.ts";
export { scramSha256 } from "./scram_sha_256.ts";
export { xoauth2 } from "./xoauth2.ts";
export type * from "./types.ts";
