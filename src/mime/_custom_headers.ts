/**
 * Custom header fields, of the message and of an attachment: checked, and formatted as
 * unstructured text. The extension point stays open: any field name is taken, except those
 * the builder writes itself.
 *
 * @module
 */

import { checkHeaderName, formatUnstructured } from "./_headers.ts";
import type { CustomHeaders } from "./message.ts";

/** Header fields that describe the MIME structure, which only the builder writes. */
const STRUCTURAL = new Set([
  "content-type",
  "content-transfer-encoding",
  "mime-version",
  "content-disposition",
  "content-id",
]);

/** Header fields that come from message fields, with the field to use instead. */
const FROM_FIELDS: ReadonlyMap<string, string> = new Map([
  ["from", "from"],
  ["sender", "sender"],
  ["to", "to"],
  ["cc", "cc"],
  ["bcc", "bcc"],
  ["reply-to", "replyTo"],
  ["subject", "subject"],
  ["date", "date"],
  ["message-id", "messageId"],
  ["in-reply-to", "inReplyTo"],
  ["references", "references"],
  ["x-priority", "priority"],
  ["importance", "priority"],
  ["x-mailer", "xMailer"],
  ["disposition-notification-to", "readReceiptTo"],
]);

function fail(reason: string): TypeError {
  return new TypeError(`Cannot compose message: ${reason}`);
}

/** The custom headers as name/value pairs, in order; a record's list value gives one each. */
function pairs(headers: CustomHeaders, what: string): [unknown, unknown][] {
  if (headers === null || typeof headers !== "object") {
    throw fail(`${what} must be a record or a list of { key, value }`);
  }
  if (Array.isArray(headers)) {
    return headers.map((h: unknown) => {
      if (h === null || typeof h !== "object") {
        throw fail(`${what} must be a record or a list of { key, value }`);
      }
      const { key, value } = h as { key?: unknown; value?: unknown };
      return [key, value];
    });
  }
  const out: [unknown, unknown][] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (Array.isArray(value)) { for (const item of value) out.push([name, item]); }
    else out.push([name, value]);
  }
  return out;
}

/**
 * Checks and formats custom header fields.
 *
 * @param headers The fields, as given.
 * @param what Whose they are, for errors (`headers`, `attachment 0 headers`).
 * @param part True for an attachment's: only the fields that describe the content are refused
 *   (the message's own fields, such as `Subject`, would mean nothing in a part anyway).
 * @returns The formatted fields, each line ending in CRLF.
 */
export function formatCustomHeaders(
  headers: CustomHeaders | undefined,
  what: string,
  part = false,
): string {
  if (headers === undefined) return "";
  let out = "";
  for (const [name, value] of pairs(headers, what)) {
    if (typeof name !== "string") throw fail(`a custom header name in ${what} is not a string`);
    checkHeaderName(name);
    if (typeof value !== "string") {
      throw fail(`custom header "${name}" must be a string (or, in a record, a list of strings)`);
    }
    const lower = name.toLowerCase();
    if (STRUCTURAL.has(lower)) {
      throw fail(`custom header "${name}" may not replace the header the builder writes`);
    }
    const field = part ? undefined : FROM_FIELDS.get(lower);
    if (field !== undefined) {
      throw fail(`custom header "${name}" duplicates a message field: use "${field}" instead`);
    }
    out += formatUnstructured(name, value, true);
  }
  return out;
}
