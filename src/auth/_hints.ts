/**
 * Hints for well-known provider replies to a failed login: what the user must change.
 *
 * @module
 */

import type { SmtpReply } from "../types.ts";

interface Hint {
  readonly matches: (reply: SmtpReply, text: string, status: string) => boolean;
  readonly hint: string;
}

const HINTS: readonly Hint[] = [
  {
    matches: (reply, text, status) =>
      ((reply.code === 535 && status === "5.7.8") || (reply.code === 534 && status === "5.7.14") ||
        (reply.code === 534 && status === "5.7.9")) && /google|gmail/i.test(text),
    hint: "Gmail requires an app password (with 2-step verification) or OAuth2 (XOAUTH2)",
  },
  {
    matches: (reply, text, status) =>
      reply.code >= 500 &&
      (status === "5.7.139" ||
        (status === "5.7.3" && /basic auth|outlook|office|microsoft/i.test(text))),
    hint: "basic authentication is disabled for this Microsoft 365 tenant or mailbox: use OAuth2 " +
      "(XOAUTH2), or enable authenticated SMTP for the mailbox",
  },
];

/** A hint for a failed AUTH reply, or `undefined` when the reply is not a known one. */
export function authHint(reply: SmtpReply): string | undefined {
  const status = reply.enhancedStatus
    ? `${reply.enhancedStatus.class}.${reply.enhancedStatus.subject}.${reply.enhancedStatus.detail}`
    : "";
  const text = reply.lines.join(" ");
  return HINTS.find((h) => h.matches(reply, text, status))?.hint;
}
