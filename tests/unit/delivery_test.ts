import assert from "node:assert/strict";
import { isTooManyRecipients, reportedError, type Stage } from "../../src/delivery.ts";
import {
  SmtpConnectionError,
  type SmtpError,
  SmtpRecipientsError,
  SmtpReplyError,
  SmtpTimeoutError,
  SmtpUnsupportedError,
} from "../../src/errors.ts";
import type { SmtpReply } from "../../src/types.ts";
import { test } from "../_helpers/test.ts";

function reply(code: number, text: string, status?: string): SmtpReply {
  if (!status) return { code, lines: [text] };
  const [c, subject, detail] = status.split(".").map(Number) as [number, number, number];
  return { code, enhancedStatus: { class: c, subject, detail }, lines: [text] };
}

test("isTooManyRecipients: 452 or 552 with x.5.3, or without enhanced status by its text", () => {
  const table: [SmtpReply, boolean][] = [
    [reply(452, "Error: too many recipients", "4.5.3"), true], // Postfix
    [reply(452, "Too many recipients"), true], // no enhanced status codes
    [reply(452, "too many recipients"), true], // Exim
    [reply(552, "Too many recipients", "5.5.3"), true], // RFC 821's code
    [reply(552, "Recipient limit reached", "4.5.3"), true],
    [reply(552, "Too many recipients"), true],
    [reply(452, "Insufficient system storage", "4.3.1"), false],
    [reply(452, "Mailbox full"), false],
    [reply(451, "No more transactions allowed", "4.5.3"), false],
    [reply(550, "Too many recipients", "5.5.3"), false],
    [reply(552, "Message size exceeds fixed limit", "5.3.4"), false],
    [reply(452, "too many recipients, says the text", "4.2.2"), false],
    [reply(250, "OK", "2.1.5"), false],
  ];
  for (const [r, expected] of table) {
    assert.equal(isTooManyRecipients(r), expected, JSON.stringify(r));
  }
});

const ann = { address: "ann@example.com", reply: reply(250, "OK", "2.1.5") };
const bob = { address: "bob@example.com", reply: reply(250, "OK", "2.1.5") };

test("reportedError names the recipients that have the message from an earlier transaction", () => {
  const refused = new SmtpReplyError("Message refused", "data", ".", reply(554, "spam", "5.7.1"));
  const reported = reportedError({ stage: "terminated", error: refused }, [ann, bob]);
  assert.ok(reported instanceof SmtpReplyError);
  assert.equal(
    reported.message,
    "Message refused (after 2 recipients had accepted it in an earlier transaction: see " +
      "error.accepted): 554 5.7.1 spam",
  );
  assert.deepEqual(reported.accepted, [ann, bob]);
  assert.equal(reported.code, 554);
  assert.equal(reported.command, ".");
  assert.equal(reported.outcomeUnknown, false);
  assert.equal(reported.cause, refused);

  // Nothing delivered before: the error as it is.
  assert.equal(reportedError({ stage: "terminated", error: refused }), refused);
  assert.equal(reportedError({ stage: "terminated", error: refused }, []), refused);
});

test("reportedError keeps the class and its fields, and adds outcomeUnknown when it applies", () => {
  const failures: [SmtpError, Stage][] = [
    [new SmtpConnectionError("Connection closed", "data"), "terminated"],
    [new SmtpConnectionError("Connection refused", "connect"), "unsent"],
    [new SmtpTimeoutError("Timed out after 5 ms", "data", 5), "terminated"],
    [new SmtpUnsupportedError("No SMTPUTF8", "mail", "SMTPUTF8"), "unsent"],
    [new SmtpRecipientsError("No recipient", [], [bob]), "envelope"],
  ];
  for (const [error, stage] of failures) {
    const reported = reportedError({ stage, error }, [ann]) as SmtpError;
    assert.equal(reported.constructor, error.constructor, error.name);
    assert.deepEqual(reported.accepted, [ann]);
    assert.match(reported.message, /\(after 1 recipient had accepted it in an earlier transaction/);
    assert.ok(reported.message.startsWith(error.message));
    assert.equal(reported.outcomeUnknown, stage === "terminated");
    assert.equal(reported.phase, error.phase);
  }
  const timeout = reportedError(
    { stage: "unsent", error: new SmtpTimeoutError("Timed out after 5 ms", "data", 5) },
    [ann],
  );
  assert.equal((timeout as SmtpTimeoutError).timeoutMs, 5);
  const unsupported = reportedError(
    { stage: "unsent", error: new SmtpUnsupportedError("No", "mail", "SMTPUTF8") },
    [ann],
  );
  assert.equal((unsupported as SmtpUnsupportedError).extension, "SMTPUTF8");
  // An abort's reason is not an SmtpError: as it is.
  const abort = new DOMException("aborted", "AbortError");
  assert.equal(reportedError({ stage: "data", error: abort }, [ann]), abort);
});

test("SmtpRecipientsError carries accepted as every SmtpError does", () => {
  const error = new SmtpRecipientsError("Partial", [ann], [bob]);
  assert.deepEqual(error.accepted, [ann]);
  assert.deepEqual(error.rejected, [bob]);
  assert.deepEqual(new SmtpConnectionError("x", "data").accepted, []);
});
