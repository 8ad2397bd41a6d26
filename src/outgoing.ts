/**
 * A message on its way to the server: prepares the body of each attempt and knows whether the
 * message can still be produced again byte for byte (the replay rule of `delivery.ts`).
 *
 * @module
 */

import { bodyTouched, type Stage } from "./delivery.ts";
import type { Capabilities } from "./protocol/_capabilities.ts";
import * as commands from "./protocol/_commands.ts";
import { composeForSending } from "./mime/compose.ts";
import type { Message } from "./mime/mod.ts";
import type { FileOpener } from "./transport/types.ts";
import type { Envelope, RawMessage } from "./types.ts";

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

/** Throws a `TypeError` for an envelope that cannot be sent. */
export function checkEnvelope(envelope: Envelope): void {
  commands.assertEnvelopeAddress(envelope.from, "sender address");
  if (envelope.to.length === 0) {
    throw new TypeError("Cannot send message: the envelope has no recipient");
  }
  for (const address of envelope.to) commands.assertEnvelopeAddress(address, "recipient address");
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
 * with the same Message-ID and Date.
 */
export class Outgoing {
  readonly #message: Message | RawMessage;
  readonly #envelope: Envelope | undefined;
  readonly #openFile: FileOpener;
  /** The caller gave a stream: the body cannot be produced again once read. */
  readonly #oneShot: boolean;
  /** A body prepared for an attempt that did not touch it: the next attempt sends it. */
  #unread: PreparedMessage | undefined;
  /** A body handed to an attempt that has not reported back. */
  #inUse: PreparedMessage | undefined;
  #touched = false;
  #released = false;
  /** The Message-ID and Date of the first composition, kept for every later one. */
  #fixed: { messageId: string; date: Date } | undefined;

  /**
   * Checks what can be checked without composing: a raw message's envelope and line ends.
   *
   * @param message The message as given to `send()`.
   * @param envelope An envelope that replaces the message's own.
   * @param openFile Opens `{ path }` attachments.
   */
  constructor(message: Message | RawMessage, envelope: Envelope | undefined, openFile: FileOpener) {
    if (envelope) checkEnvelope(envelope);
    if ("raw" in message) {
      checkEnvelope(envelope ?? message.envelope);
      this.#oneShot = message.raw instanceof ReadableStream;
    } else {
      this.#oneShot = (message.attachments ?? []).some((a) => a?.content instanceof ReadableStream);
    }
    this.#message = message;
    this.#envelope = envelope;
    this.#openFile = openFile;
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
    return prepared;
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
      const body = typeof raw === "string" ? new TextEncoder().encode(raw) : raw;
      return {
        from: envelope.from,
        to: envelope.to,
        body,
        ownsBody: false,
        // A stream is not read ahead to find out; bytes are.
        eightBit: body instanceof Uint8Array && hasEightBitBytes(body),
        smtpUtf8: false,
        crlfLineEnds: false,
        binary: message.binary ?? false,
      };
    }
    const fixed = this.#fixed;
    const date = fixed?.date ?? message.date ?? new Date();
    const composed = await composeForSending(
      fixed ? { ...message, ...fixed } : { ...message, date },
      { allow8bit: capabilities.has("8BITMIME"), openFile: this.#openFile },
    );
    this.#fixed ??= { messageId: composed.messageId, date };
    const envelope = this.#envelope ?? composed.envelope;
    return {
      from: envelope.from,
      to: envelope.to,
      body: composed.body,
      ownsBody: composed.body instanceof ReadableStream,
      eightBit: composed.eightBit,
      smtpUtf8: composed.smtpUtf8,
      messageId: composed.messageId,
      crlfLineEnds: true,
      binary: false,
      size: composed.size,
    };
  }
}
