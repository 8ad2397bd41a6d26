/**
 * The address fields of a message: each parsed into mailboxes (strings, lists, `{ name,
 * address }`, nested arrays as nodemailer takes them), and the envelope they come to.
 *
 * @module
 */

import type { Envelope } from "../types.ts";
import { checkFields } from "../_fields.ts";
import { type AddressInput, asciiDomain, type Mailbox, parseAddressList } from "./address.ts";
import type { MessageEnvelope } from "./message.ts";

/** An address field's value: one input or a list of them (nodemailer nests lists too). */
export type AddressField = AddressInput | readonly AddressInput[] | undefined;

function fail(reason: string): TypeError {
  return new TypeError(`Cannot compose message: ${reason}`);
}

/** Describes a value that is not an address, for an error. */
function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") {
    const keys = Object.keys(value as object);
    return keys.length > 0 ? `an object with ${keys.join(", ")}` : "an empty object";
  }
  return typeof value;
}

/**
 * The mailboxes of one address field, in order. A `name` given as data is sent exactly as
 * given (the parser would trim it).
 *
 * @param field The field's name, for errors (`to`, `replyTo`).
 * @param input The field's value.
 * @returns Its mailboxes.
 */
export function addresses(field: string, input: AddressField): Mailbox[] {
  const out: Mailbox[] = [];
  if (input !== undefined) addTo(out, field, input);
  return out;
}

/** Appends the mailboxes of one item of an address field (a nested list, recursively). */
function addTo(out: Mailbox[], field: string, item: unknown): void {
  if (Array.isArray(item)) {
    for (let i = 0; i < item.length; i++) addTo(out, field, item[i]);
    return;
  }
  if (item !== null && typeof item === "object" && "group" in item) {
    throw fail(
      `${field}: address groups ({ name, group }) are not supported: list the addresses`,
    );
  }
  if (typeof item !== "string" && (item === null || typeof item !== "object")) {
    throw fail(`${field}: expected an address or { name, address }, got ${describe(item)}`);
  }
  let list: Mailbox[];
  try {
    list = parseAddressList(item as AddressInput);
  } catch (error) {
    if (error instanceof TypeError) {
      throw new TypeError(`Cannot compose message: ${field}: ${error.message}`, {
        cause: error,
      });
    }
    throw error;
  }
  const object = item as { name?: unknown };
  if (typeof item === "object" && typeof object.name === "string" && list.length === 1) {
    out.push({ name: object.name, address: list[0]!.address });
  } else {
    for (let i = 0; i < list.length; i++) out.push(list[i]!);
  }
}

/**
 * The one mailbox of a field that takes exactly one (`from`, `sender`).
 *
 * @param field The field's name, for errors.
 * @param input The field's value.
 * @returns The mailbox.
 */
export function single(field: string, input: AddressField): Mailbox {
  const list = addresses(field, input);
  if (list.length !== 1) throw fail(`${field} must be exactly one address, got ${list.length}`);
  return list[0]!;
}

/** The key under which two addresses count as the same recipient. */
function recipientKey(address: string): string {
  const at = address.lastIndexOf("@");
  return `${address.slice(0, at)}@${asciiDomain(address)}`;
}

/**
 * The addresses of `mailboxes` in order, each recipient once (the domain compared in its ASCII
 * form, the local part exactly).
 *
 * @param mailboxes The recipients, with duplicates.
 * @returns Their addresses without duplicates.
 */
export function uniqueAddresses(mailboxes: readonly Mailbox[]): string[] {
  const seen = new Set<string>();
  const recipients: string[] = [];
  for (const mailbox of mailboxes) {
    const key = recipientKey(mailbox.address);
    if (seen.has(key)) continue;
    seen.add(key);
    recipients.push(mailbox.address);
  }
  return recipients;
}

/**
 * The envelope a message gives itself (nodemailer's `envelope` field): `from` defaults to
 * `sender`, and `to`, `cc` and `bcc` are all recipients.
 *
 * @param envelope The message's `envelope` field.
 * @param sender The message's envelope sender (its `sender`, else its `from`).
 * @returns The envelope.
 */
export function messageEnvelope(envelope: MessageEnvelope, sender: Mailbox): Envelope {
  if (envelope === null || typeof envelope !== "object") throw fail("envelope is not an object");
  checkFields(envelope, ["from", "to", "cc", "bcc"], "envelope");
  const from = envelope.from === undefined ? sender : single("envelope.from", envelope.from);
  const to = [
    ...addresses("envelope.to", envelope.to),
    ...addresses("envelope.cc", envelope.cc),
    ...addresses("envelope.bcc", envelope.bcc),
  ];
  return { from: from.address, to: uniqueAddresses(to) };
}
