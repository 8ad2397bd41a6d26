/**
 * A message on its way to the server: prepares the body of each attempt, knows whether the
 * message can still be produced again byte for byte (the replay rule of `delivery.ts`), and
 * which recipients still wait for it (a send may take several transactions: recipient limits).
 *
 * @module
 */

import { bodyTouched, type Failure, type Stage } from "./delivery.ts";
import type { Capabilities, ServerLimits } from "./protocol/capabilities.ts";
import type { TransactionOutcome } from "./protocol/_transaction.ts";
import { concat } from "./_bytes.ts";
import { HOLD_LIMIT, prependStream, readWhole, withCrlfLineEnds } from "./dkim/_bodies.ts";
import { signBytes, signStream } from "./dkim/_message_signer.ts";
import { type ResolvedSigner, signersOf } from "./dkim/_signer.ts";
import { checkSendOptions } from "./client_options.ts";
import type { SendOptions } from "./options.ts";
import { composeForSending } from "./mime/compose.ts";
import { checkFiles } from "./mime/_attachments.ts";
import { isAscii } from "./mime/_text.ts";
import { type CheckedMessage, checkMessage } from "./mime/_check.ts";
import { recordedBoundaries } from "./mime/_multipart.ts";
import type { Message } from "./mime/mod.ts";
import { checkEnvelope, checkRawMessage } from "./message_checks.ts";
import { SendRecipients } from "./send_recipients.ts";
import type { FileOpener } from "./transport/types.ts";
import type { Envelope, RawMessage, RecipientResult, SendResult } from "./types.ts";

/** A message ready for one transaction attempt. */
export interface PreparedMessage {
  readonly from: string;
  readonly to: readonly string[];
  readonly body: Uint8Array | ReadableStream<Uint8Array>;
  /** True when the body stream is the library's own (a composed message's). */
  readonly ownsBody: boolean;
  readonly eightBit: boolean;
  /** True when a header address needs SMTPUTF8. */
  readonly smtpUtf8: boolean;
  readonly messageId?: string;
  /** True when every line of the body ends in CRLF already (composed messages). */
  readonly crlfLineEnds: boolean;
  /** True for binary MIME: sent untouched with BDAT and `BODY=BINARYMIME`. */
  readonly binary: boolean;
  /** The body's size in bytes, when known without reading it. */
  readonly size?: number | undefined;
}

function hasEightBitBytes(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! >= 0x80) return true;
  return false;
}

/**
 * One message and the bodies of its attempts. The rule for sending it again: bytes (a raw
 * message given as bytes or text, a composed message without streams) can always be produced
 * again; a stream the caller gave (a raw message's, or an attachment's) only while not one byte
 * of it was read, by sending the very same unread body. A composed message is composed again
 * with the same Message-ID, Date, MIME boundaries and transfer encodings: byte for byte the same.
 *
 * With DKIM signers the message is signed once, on its final bytes, and every attempt and
 * every transaction sends the same signature before the same bytes: a body in memory is signed
 * as it is; a streamed composition (file attachments) is read once for the body hash and then
 * composed again to send. A stream the caller gave is read into memory first (up to
 * `HOLD_LIMIT`), which makes the message bytes: it can then be sent again like any other.
 *
 * It also keeps the send's recipients: each transaction takes some of those still waiting
 * ({@linkcode Outgoing.batch}), and its outcome settles them ({@linkcode Outgoing.settle}):
 * accepted, refused, or, when the server had too many for one transaction, still waiting for
 * the next. A recipient that accepted the message is never given it again, by a further
 * transaction or by a retry.
 */
export class Outgoing {
  /** The raw message, or the composed message's fields checked. */
  readonly #message: RawMessage | CheckedMessage;
  readonly #envelope: Envelope | undefined;
  readonly #openFile: FileOpener;
  readonly #signers: readonly ResolvedSigner[];
  /** The caller gave a stream: the body cannot be produced again once read. */
  #oneShot: boolean;
  /** The `DKIM-Signature` fields, once the message was signed: they go before every body. */
  #signature: Uint8Array | undefined;
  /** A body prepared for an attempt that did not touch it: the next attempt sends it. */
  #unread: PreparedMessage | undefined;
  /** A body handed to an attempt that has not reported back. */
  #inUse: PreparedMessage | undefined;
  #touched = false;
  #released = false;
  /** The Message-ID, Date and 8-bit choice of the first composition, kept for every later one. */
  #fixed: { messageId: string; date: Date; allow8bit: boolean } | undefined;
  /** The MIME boundaries of the first composition, given out again to every later one. */
  readonly #boundaries: string[] = [];
  /** Who still waits for the message, who accepted it and who refused it. */
  readonly #recipients = new SendRecipients();
  /** The envelope and Message-ID of the last prepared body. */
  #sent: { envelope: Envelope; messageId: string | undefined } | undefined;

  /**
   * The message of one `send()`: the send options checked, its signers chosen (the send's
   * `dkim`, else `defaults`), then the message checked as {@linkcode Outgoing}'s constructor does.
   *
   * @param message The message as given to `send()`.
   * @param options The send options.
   * @param defaults The client's or pool's own DKIM signers.
   * @param openFile Opens `{ path }` attachments.
   * @returns The outgoing message.
   */
  static of(
    message: Message | RawMessage,
    options: SendOptions,
    defaults: readonly ResolvedSigner[],
    openFile: FileOpener,
  ): Outgoing {
    checkSendOptions(options);
    return new Outgoing(message, options.envelope, openFile, signersOf(options.dkim, defaults));
  }

  /**
   * Checks everything that can be checked without a server and without reading a file: every
   * field of a composed message (addresses, header values, attachment shapes) and that it has a
   * recipient; a raw message's envelope. Files are checked by {@linkcode Outgoing.checkFiles}.
   *
   * @param message The message as given to `send()`.
   * @param envelope An envelope that replaces the message's own.
   * @param openFile Opens `{ path }` attachments.
   * @param signers Who signs the message with DKIM (none: not signed).
   * @throws {TypeError} When the message cannot be sent, whatever the server.
   * @throws {RangeError} When a header value cannot fit its line, or a date is invalid.
   */
  constructor(
    message: Message | RawMessage,
    envelope: Envelope | undefined,
    openFile: FileOpener,
    signers: readonly ResolvedSigner[] = [],
  ) {
    if (envelope) checkEnvelope(envelope);
    if (message === null || typeof message !== "object") {
      throw new TypeError("Cannot send message: the message is not an object");
    }
    if ("raw" in message) {
      checkRawMessage(message, envelope);
      this.#message = message;
      this.#oneShot = message.raw instanceof ReadableStream;
    } else {
      const checked = checkMessage(message);
      if (!envelope) {
        checkEnvelope(
          checked.envelope,
          message.envelope === undefined
            ? "Cannot send message: no recipient: to, cc and bcc are all empty"
            : "Cannot send message: the message's envelope has no recipient",
        );
      }
      this.#message = checked;
      this.#oneShot = checked.oneShot;
    }
    this.#envelope = envelope;
    this.#openFile = openFile;
    this.#signers = signers;
  }

  /**
   * Checks that every file attachment exists and can be read (each is opened and closed
   * again), so that a missing file fails before a connection is made.
   */
  async checkFiles(): Promise<void> {
    const message = this.#message;
    if (!("raw" in message)) await checkFiles(message.attachments, this.#openFile);
  }

  /** Whether the message has file attachments, which {@linkcode checkFiles} would open. */
  get hasFiles(): boolean {
    const message = this.#message;
    return !("raw" in message) && message.attachments.some((a) => "path" in a.content);
  }

  /** Whether another attempt can send exactly the message that the first one would have. */
  get replayable(): boolean {
    return !this.#oneShot || !this.#touched;
  }

  /**
   * The body for the next attempt.
   *
   * @param capabilities What the server offers (8BITMIME decides how text is encoded).
   * @returns The prepared message.
   */
  async prepare(capabilities: Capabilities): Promise<PreparedMessage> {
    if (!this.replayable) throw new Error("Outgoing.prepare() called after its body was read");
    const prepared = this.#unread ?? await this.#prepareFresh(capabilities);
    this.#unread = undefined;
    this.#inUse = prepared;
    this.#sent = {
      envelope: { from: prepared.from, to: prepared.to },
      messageId: prepared.messageId,
    };
    return prepared;
  }

  /**
   * The recipients of the next transaction: positions in `prepared.to` of those still waiting,
   * in order, at most `limits.rcptMax` of them, of at most `limits.rcptDomainMax` domains. A
   * stream the caller gave can be sent only once: its transaction takes every recipient, and the
   * server's replies say which it could not take.
   *
   * @param prepared The body prepared for the transaction.
   * @param limits What the server announced with `LIMITS`.
   * @returns Positions in `prepared.to`; never empty while recipients are waiting.
   */
  batch(prepared: PreparedMessage, limits: ServerLimits): readonly number[] {
    return this.#recipients.batch(prepared.to, limits, this.#oneShot);
  }

  /**
   * Settles the recipients of `batch` with the outcome of its transaction (called after
   * {@linkcode attempted}). Accepted and refused recipients are done; those refused only because
   * the transaction had too many wait for the next, unless the body cannot be sent again (then
   * they are refused, with the server's reply). A transaction that every recipient refused
   * after an earlier one delivered the message refuses those recipients, no more: the send has
   * succeeded for the others.
   *
   * @param batch The positions the transaction was given ({@linkcode batch}).
   * @param outcome How the transaction ended.
   * @returns The failure that ends the send, or `undefined` when the transaction counts.
   */
  settle(batch: readonly number[], outcome: TransactionOutcome): Failure | undefined {
    return this.#recipients.settle(batch, outcome, this.replayable);
  }

  /** Whether every recipient is settled (accepted or refused). */
  get done(): boolean {
    return this.#recipients.done;
  }

  /** The recipients that accepted the message so far, over every transaction (a copy). */
  get accepted(): readonly RecipientResult[] {
    return this.#recipients.accepted;
  }

  /**
   * What the send came to, over all its transactions: every accepted and every refused
   * recipient, and the reply to the data of the last transaction that delivered the message.
   * Call it once {@linkcode done} after at least one transaction delivered the message.
   */
  result(): SendResult {
    const sent = this.#sent!;
    const result = {
      envelope: sent.envelope,
      accepted: this.#recipients.accepted,
      rejected: this.#recipients.rejected,
      reply: this.#recipients.reply!,
    };
    return sent.messageId === undefined ? result : { ...result, messageId: sent.messageId };
  }

  /**
   * Records how far the attempt that was given the last prepared body got with it.
   *
   * @param stage The stage the attempt reached.
   */
  async attempted(stage: Stage): Promise<void> {
    const prepared = this.#inUse;
    this.#inUse = undefined;
    if (!prepared) return;
    if (prepared.body instanceof Uint8Array) {
      // Bytes are not used up: every attempt sends the very same ones.
      this.#unread = prepared;
      return;
    }
    if (bodyTouched(stage)) {
      this.#touched = true;
      return;
    }
    this.#unread = prepared;
    if (this.#released) await this.release();
  }

  /**
   * Releases a body prepared and never read: the library's own streams are cancelled (which
   * closes attachment files); a caller's stream is left as it is, unread and unlocked.
   */
  async release(): Promise<void> {
    this.#released = true;
    const unread = this.#unread;
    this.#unread = undefined;
    if (unread?.ownsBody && unread.body instanceof ReadableStream) {
      await unread.body.cancel().catch(() => {});
    }
  }

  async #prepareFresh(capabilities: Capabilities): Promise<PreparedMessage> {
    const message = this.#message;
    if ("raw" in message) {
      const envelope = this.#envelope ?? message.envelope;
      const raw = message.raw;
      let body = typeof raw === "string" ? new TextEncoder().encode(raw) : raw;
      const binary = message.binary ?? false;
      if (this.#signers.length > 0) body = await this.#signRaw(body, binary);
      return {
        from: envelope.from,
        to: envelope.to,
        body,
        ownsBody: false,
        // A stream is not read ahead to find out; bytes are (text, unsigned, before encoding:
        // a regular expression rather than a loop over every byte).
        eightBit: typeof raw === "string" && this.#signers.length === 0
          ? !isAscii(raw)
          : body instanceof Uint8Array && hasEightBitBytes(body),
        smtpUtf8: false,
        crlfLineEnds: false,
        binary,
      };
    }
    const fixed = this.#fixed;
    const date = fixed?.date ?? message.date ?? new Date();
    const allow8bit = fixed?.allow8bit ?? capabilities.has("8BITMIME");
    const composed = await composeForSending(
      message,
      { allow8bit, openFile: this.#openFile },
      { date, messageId: fixed?.messageId, nextBoundary: recordedBoundaries(this.#boundaries) },
    );
    this.#fixed ??= { messageId: composed.messageId, date, allow8bit };
    if (this.#signers.length > 0 && await this.#hashedOnly(composed.body)) {
      // That composition was read for the DKIM body hash: compose again to send.
      return await this.#prepareFresh(capabilities);
    }
    const { body, size } = this.#signers.length > 0
      ? await this.#signComposed(composed.body, composed.size)
      : composed;
    const envelope = this.#envelope ?? composed.envelope;
    return {
      from: envelope.from,
      to: envelope.to,
      body,
      ownsBody: body instanceof ReadableStream,
      eightBit: composed.eightBit,
      smtpUtf8: composed.smtpUtf8,
      messageId: composed.messageId,
      crlfLineEnds: true,
      binary: false,
      size,
    };
  }

  /**
   * A raw message, signed: its line ends made CRLF as SMTP delivers them (binary MIME goes as
   * it is), a stream read into memory first.
   */
  async #signRaw(
    raw: Uint8Array | ReadableStream<Uint8Array>,
    binary: boolean,
  ): Promise<Uint8Array> {
    // Reading the caller's stream uses it up, whatever comes of it.
    if (raw instanceof ReadableStream) this.#touched = true;
    let bytes = raw instanceof ReadableStream
      ? await readWhole(raw, HOLD_LIMIT, false, "the raw message stream")
      : raw;
    // Held in memory, the message can be sent again: it is bytes now.
    this.#oneShot = false;
    if (!binary) bytes = withCrlfLineEnds(bytes);
    this.#signature ??= new TextEncoder().encode(await signBytes(bytes, this.#signers));
    return concat([this.#signature, bytes]);
  }

  /**
   * Signs the first streamed composition of a message, reading it for the body hash; the
   * next composition is sent. False when the body is to be signed as it is: bytes, a stream
   * to hold in memory (it reads a caller's stream), or a message signed already.
   */
  async #hashedOnly(body: Uint8Array | ReadableStream<Uint8Array>): Promise<boolean> {
    if (!(body instanceof ReadableStream) || this.#oneShot || this.#signature) return false;
    this.#signature = new TextEncoder().encode(await signStream(body, this.#signers));
    return true;
  }

  /**
   * A composed message with its signature before it: bytes are signed as they are (once), a
   * composition that reads a caller's stream is held in memory first, and a later composition
   * of a streamed message gets the signature made from the first.
   */
  async #signComposed(
    body: Uint8Array | ReadableStream<Uint8Array>,
    size: number | undefined,
  ): Promise<{ body: Uint8Array | ReadableStream<Uint8Array>; size: number | undefined }> {
    if (body instanceof ReadableStream && this.#oneShot) {
      this.#touched = true;
      body = await readWhole(body, HOLD_LIMIT, true, "an attachment stream");
      // Held in memory, the message can be sent again: it is bytes now.
      this.#oneShot = false;
    }
    if (body instanceof Uint8Array) {
      this.#signature ??= new TextEncoder().encode(await signBytes(body, this.#signers));
      const bytes = concat([this.#signature, body]);
      return { body: bytes, size: bytes.length };
    }
    const signature = this.#signature!;
    return {
      body: prependStream(signature, body),
      size: size === undefined ? undefined : size + signature.length,
    };
  }
}
