/**
 * Hints for well-known provider replies to a failed login: what the user must change. A table,
 * so that a new provider is one more row.
 *
 * @module
 */

import type { SmtpReply } from "../types.ts";

/** One row: which replies it matches, and what to tell the user. */
interface Hint {
  /** Reply code and enhanced status pairs, e.g. `535 5.7.8`. */
  readonly replies: readonly string[];
  /**
   * Matches the reply text or the server's host name. Without it, the codes alone decide
   * (for codes that only this provider uses).
   */
  readonly provider?: RegExp;
  /** The hint, appended to the error message. */
  readonly hint: string;
}

const HINTS: readonly Hint[] = [
  {
    // 535 5.7.8 is also the generic "bad credentials" of Postfix and others: Gmail's text always
    // links to support.google.com.
    replies: ["535 5.7.8", "534 5.7.9", "534 5.7.14"],
    provider: /google|gmail/i,
    hint: "Gmail requires an app password or OAuth2 (XOAUTH2)",
  },
  {
    // 5.7.139 is Exchange Online's own code; 5.7.3 is generic, Office 365 names outlook.com.
    replies: ["535 5.7.139"],
    hint: "basic authentication is disabled for this tenant: use OAuth2 (XOAUTH2)",
  },
  {
    replies: ["535 5.7.3"],
    provider: /outlook|office365|microsoft/i,
    hint: "basic authentication is disabled for this tenant: use OAuth2 (XOAUTH2)",
  },
];

/**
 * A hint for a refused login, or `undefined` when the reply is not a known one.
 *
 * @param reply The server's failure reply.
 * @param hostname The host name the client connected to.
 */
export function authHint(reply: SmtpReply, hostname = ""): string | undefined {
  const status = reply.enhancedStatus;
  if (!status) return undefined;
  const key = `${reply.code} ${status.class}.${status.subject}.${status.detail}`;
  const text = `${reply.lines.join(" ")} ${hostname}`;
  return HINTS.find((h) => h.replies.includes(key) && (!h.provider || h.provider.test(text)))
    ?.hint;
}
