/**
 * The MAIL and RCPT parameters of a message, as a pure function of the prepared message, what
 * the server offers and the send options: `SIZE`, `BODY`, `SMTPUTF8`, `REQUIRETLS` and DSN, or
 * an {@linkcode SmtpUnsupportedError} before anything is sent when the server lacks what the
 * message needs.
 *
 * @module
 */

import { SmtpUnsupportedError } from "./errors.ts";
import { envelopeAddress, needsSmtpUtf8 } from "./mime/mod.ts";
import type { SendOptions } from "./options.ts";
import type { PreparedMessage } from "./outgoing.ts";
import type { Capabilities } from "./protocol/capabilities.ts";
import * as commands from "./protocol/_commands.ts";
import type { TransactionInput } from "./protocol/_transaction.ts";

/** The envelope as the server gets it. */
export interface MailCommands {
  /** The reverse path, converted for the server (punycode without SMTPUTF8). */
  readonly from: string;
  /** Every recipient of the message, converted likewise, in the message's order. */
  readonly to: readonly string[];
  readonly mailParams: commands.Parameters;
  readonly rcptParams: (address: string) => commands.Parameters;
  /** Whether the message goes with BDAT. */
  readonly chunking: boolean;
}

/** What the connection allows besides the server's capabilities. */
export interface ConnectionFacts {
  /** `chunking` of the client options: BDAT may be used when offered. */
  readonly chunking: boolean;
  /** Whether the connection is encrypted (REQUIRETLS needs it). */
  readonly tls: boolean;
}

/** A character outside ASCII, or DEL. */
const NOT_ASCII = /[\u007f-\uffff]/;

/** Whether `text` is ASCII without DEL. */
function isAscii(text: string): boolean {
  return !NOT_ASCII.test(text);
}

function unsupported(message: string, extension: string): SmtpUnsupportedError {
  return new SmtpUnsupportedError(message, "mail", extension);
}

/**
 * The MAIL FROM and RCPT TO parameters for `message` on this server.
 *
 * @param message The prepared message.
 * @param caps What the server offers.
 * @param connection Client options and the connection's state that matter.
 * @param options The send options (DSN, REQUIRETLS).
 * @returns The envelope addresses and parameters.
 * @throws {SmtpUnsupportedError} When the message needs an extension the server lacks, or is
 *   larger than its SIZE limit.
 */
export function mailCommands(
  message: PreparedMessage,
  caps: Capabilities,
  connection: ConnectionFacts,
  options: SendOptions,
): MailCommands {
  const utf8 = message.smtpUtf8 || needsSmtpUtf8(message.from) || message.to.some(needsSmtpUtf8);
  if (utf8 && !caps.has("SMTPUTF8")) {
    throw unsupported(
      "Cannot send to or from an internationalised address: the server does not offer SMTPUTF8",
      "SMTPUTF8",
    );
  }
  const smtpUtf8 = caps.has("SMTPUTF8");
  const from = envelopeAddress(message.from, smtpUtf8);
  // Built with push, not map(): see SendRecipients.batch().
  const to: string[] = [];
  for (const address of message.to) to.push(envelopeAddress(address, smtpUtf8));
  const mailParams: [string, string | undefined][] = [];

  const size = message.size ??
    (message.body instanceof Uint8Array ? message.body.length : undefined);
  if (size !== undefined && caps.has("SIZE")) {
    const maxSize = caps.maxSize;
    if (maxSize !== undefined && size > maxSize) {
      throw unsupported(
        `Message is larger than the server accepts: ${size} bytes, limit ${maxSize}`,
        "SIZE",
      );
    }
    mailParams.push(["SIZE", String(size)]);
  }

  const chunking = connection.chunking && caps.has("CHUNKING");
  if (message.binary) {
    if (!chunking || !caps.has("BINARYMIME")) {
      throw unsupported(
        "Cannot send a binary MIME message: the server does not offer CHUNKING and BINARYMIME" +
          (caps.has("BINARYMIME") && !connection.chunking ? " (chunking is off)" : ""),
        "BINARYMIME",
      );
    }
    mailParams.push(["BODY", "BINARYMIME"]);
  } else if (message.eightBit) {
    if (!caps.has("8BITMIME")) {
      throw unsupported(
        "Cannot send a message with 8-bit bytes: the server does not offer 8BITMIME " +
          "(encode the message as 7-bit, or compose it and let postie choose the encoding)",
        "8BITMIME",
      );
    }
    mailParams.push(["BODY", "8BITMIME"]);
  }

  if (utf8 || !isAscii(from) || to.some((address) => !isAscii(address))) {
    mailParams.push(["SMTPUTF8", undefined]);
  }
  if (options.requireTls) {
    if (!caps.has("REQUIRETLS") || !connection.tls) {
      throw unsupported(
        "Cannot require TLS for this message: the server does not offer REQUIRETLS over TLS",
        "REQUIRETLS",
      );
    }
    mailParams.push(["REQUIRETLS", undefined]);
  }

  const dsn = options.dsn;
  if (dsn && !caps.has("DSN")) {
    throw unsupported(
      "Cannot request delivery status notifications: the server does not offer DSN",
      "DSN",
    );
  }
  if (dsn?.ret) mailParams.push(["RET", dsn.ret]);
  if (dsn?.envid) mailParams.push(["ENVID", commands.encodeXtext(dsn.envid)]);
  const rcptParams = (address: string): commands.Parameters => {
    if (!dsn) return [];
    const params: [string, string][] = [];
    if (dsn.notify) params.push(["NOTIFY", dsn.notify.join(",")]);
    if (dsn.orcpt) params.push(["ORCPT", commands.encodeOrcpt(address)]);
    return params;
  };
  return { from, to, mailParams, rcptParams, chunking };
}

/**
 * What a transaction sends: `plan`'s envelope for the recipients at `batch` (positions in
 * `message.to`), and `message`'s body.
 *
 * @param plan The envelope and parameters ({@linkcode mailCommands}).
 * @param message The prepared message.
 * @param batch The recipients of this transaction.
 * @returns The transaction's input.
 */
export function transactionInput(
  plan: MailCommands,
  message: PreparedMessage,
  batch: readonly number[],
): TransactionInput {
  // Built with push, not map(): see SendRecipients.batch().
  const to: string[] = [];
  for (const position of batch) to.push(plan.to[position]!);
  return {
    from: plan.from,
    to,
    mailParams: plan.mailParams,
    rcptParams: plan.rcptParams,
    body: message.body,
    ownsBody: message.ownsBody,
    keepLineEnds: message.crlfLineEnds,
    binary: message.binary,
  };
}
