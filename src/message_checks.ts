/**
 * The checks of a message given to `send()` that need no server: its envelope, a raw message's
 * shape. A message that fails them is refused before any connection is made.
 *
 * @module
 */

import * as commands from "./protocol/_commands.ts";
import { checkFields } from "./_fields.ts";
import type { Envelope, RawMessage } from "./types.ts";

/**
 * Throws a `TypeError` for an envelope that cannot be sent.
 *
 * @param envelope The envelope, as given.
 * @param noRecipient The error's text when it has no recipient.
 */
export function checkEnvelope(
  envelope: Envelope,
  noRecipient = "Cannot send message: the envelope has no recipient",
): void {
  if (envelope === null || typeof envelope !== "object") {
    throw new TypeError("Cannot send message: the envelope must be { from, to }");
  }
  checkFields(envelope, ["from", "to"], "envelope");
  if (typeof envelope.from !== "string") {
    throw new TypeError(
      'Cannot send message: envelope.from must be a string ("" for the null sender <>)',
    );
  }
  if (!Array.isArray(envelope.to)) {
    throw new TypeError("Cannot send message: envelope.to must be a list of addresses");
  }
  commands.assertEnvelopeAddress(envelope.from, "sender address");
  if (envelope.to.length === 0) throw new TypeError(noRecipient);
  for (const address of envelope.to) {
    if (typeof address !== "string") {
      throw new TypeError("Cannot send message: envelope.to must be a list of strings");
    }
    commands.assertEnvelopeAddress(address, "recipient address");
  }
}

/** nodemailer's way to give a raw message's envelope, which postie reads from `envelope`. */
const RAW_HINT = "a raw message is sent as it is: give envelope: { from, to }";

/** Throws a `TypeError` for a raw message that cannot be sent. */
export function checkRawMessage(message: RawMessage, envelope: Envelope | undefined): void {
  checkFields(message, ["raw", "envelope", "binary"], "raw message", {
    from: RAW_HINT,
    to: RAW_HINT,
    cc: RAW_HINT,
    bcc: RAW_HINT,
  });
  const raw: unknown = message.raw;
  if (
    typeof raw !== "string" && !(raw instanceof Uint8Array) && !(raw instanceof ReadableStream)
  ) {
    throw new TypeError(
      "Cannot send message: raw must be a string, a Uint8Array or a ReadableStream",
    );
  }
  if (envelope === undefined && message.envelope === undefined) {
    throw new TypeError(`Cannot send message: ${RAW_HINT}`);
  }
  checkEnvelope(envelope ?? message.envelope);
}
