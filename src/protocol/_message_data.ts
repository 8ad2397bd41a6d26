/**
 * Writing message data: the body's chunks, batched writes, command lines joined with the data
 * they precede, and the terminator write that marks how far a transaction got.
 *
 * @module
 */

import type { Stage } from "../delivery.ts";
import { SmtpConnectionError } from "../errors.ts";
import type { Session, Wait } from "./_session.ts";
import type { TransactionInput, TransactionSettings } from "./_transaction.ts";
import type { Replies } from "./_turn.ts";

/** Messages are written in pieces of about this size. */
export const WRITE_BATCH = 64 * 1024;
/** BDAT chunks are at least this large (except the last). */
export const BDAT_CHUNK = 256 * 1024;
/** BDAT replies left unread before the client waits for one. */
export const MAX_UNREAD_BDAT = 8;

const encoder = new TextEncoder();

/** Collects byte arrays to write together. */
export class Batch {
  #parts: Uint8Array[] = [];
  length = 0;

  add(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#parts.push(bytes);
    this.length += bytes.length;
  }

  /** The arrays collected, uncopied (the session writes them with one vectored write). */
  take(): Uint8Array[] {
    const parts = this.#parts;
    this.#parts = [];
    this.length = 0;
    return parts;
  }
}

/**
 * The body's chunks. A stream that is not read to its end is cancelled when it is the library's
 * own (a composed message: its files are closed) and only released when it is the caller's.
 *
 * A byte stream (a composed message) is read into one buffer of `size` bytes, reused for every
 * chunk: each chunk but the last fills it, so a consumer that writes (and awaits) what it holds
 * once it has `size` bytes is done with a chunk before it asks for the next, and a message of
 * any size is sent without garbage per chunk. Other streams give their chunks as they come.
 */
export async function* chunksOf(
  body: Uint8Array | ReadableStream<Uint8Array>,
  owned: boolean,
  size: number,
): AsyncGenerator<Uint8Array, void, undefined> {
  if (body instanceof Uint8Array) {
    yield body;
    return;
  }
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = body.getReader({ mode: "byob" });
  } catch {
    // Not a byte stream.
  }
  const reader = byob ?? body.getReader();
  let finished = false;
  try {
    if (byob) {
      yield* filledChunks(byob, size);
      finished = true;
      return;
    }
    const chunks = reader as ReadableStreamDefaultReader<Uint8Array>;
    while (true) {
      const { done, value } = await chunks.read();
      if (done) {
        // Nothing to release: a finished stream holds nothing (and releasing the lock costs a
        // TypeError with a stack trace per message).
        finished = true;
        return;
      }
      yield value;
    }
  } finally {
    if (!finished) {
      if (owned) await reader.cancel().catch(() => {});
      reader.releaseLock();
    }
  }
}

/** Reads a byte stream into one reused buffer, yielding it each time it is full (and at the end). */
async function* filledChunks(
  reader: ReadableStreamBYOBReader,
  size: number,
): AsyncGenerator<Uint8Array, void, undefined> {
  let buffer = new ArrayBuffer(size);
  while (true) {
    let filled = 0;
    let done = false;
    while (filled < size) {
      const result = await reader.read(new Uint8Array(buffer, filled, size - filled));
      // The read transfers the buffer: its bytes come back in a new ArrayBuffer object.
      if (result.value) buffer = result.value.buffer as ArrayBuffer;
      if (result.done) {
        done = true;
        break;
      }
      filled += result.value.byteLength;
    }
    if (filled > 0) yield new Uint8Array(buffer, 0, filled);
    if (done) return;
  }
}

/**
 * Writes the bytes that end the message (DATA's final `.` line, or the last BDAT chunk). From
 * the moment they are handed to the connection the server may hold the message: a timeout or
 * an abort while they are being written leaves it so. Only a write the connection refused (it
 * broke: the last bytes were not taken) means the terminator cannot have arrived.
 */
export async function writeTerminator(
  session: Session,
  bytes: Uint8Array | readonly Uint8Array[],
  wait: Wait,
  progress: Progress,
  before: TransactionSettings["beforeTerminator"],
): Promise<void> {
  if (before) {
    try {
      await before();
    } catch (error) {
      // Half a message is on the wire: only closing the connection keeps the server from it.
      session.close();
      throw error;
    }
  }
  progress.stage = "terminated";
  try {
    await session.writeBytes(bytes, wait);
  } catch (error) {
    if (error instanceof SmtpConnectionError) progress.stage = "data";
    throw error;
  }
  session.info("message data sent");
}

/** How far the transaction got; only the transaction's own steps move it forward. */
export class Progress {
  stage: Stage = "unsent";
}

/** Below this size, command lines and data are joined into one array for the write. */
const JOIN_BELOW = 16 * 1024;

/**
 * `text` (command lines) and then `parts` (data), ready to write: small, in one array with the
 * text encoded straight into it; large, the encoded text and the parts as they are (written
 * with one vectored write, without copying the data).
 */
export function withCommands(text: string, parts: Uint8Array[], size: number): Uint8Array[] {
  if (size >= JOIN_BELOW) return [encoder.encode(text), ...parts];
  // UTF-8 takes at most 3 bytes per UTF-16 code unit.
  const out = new Uint8Array(text.length * 3 + size);
  let offset = encoder.encodeInto(text, out).written;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return [out.subarray(0, offset)];
}

/** The waits of one transaction: for its commands, its message data, and the data's end. */
export interface Waits {
  readonly mail: Wait;
  readonly data: Wait;
  readonly end: Wait;
}

/** What a send path (DATA, whole BDAT, chunked BDAT) is given. */
export interface SendRun {
  readonly replies: Replies;
  readonly input: TransactionInput;
  readonly settings: TransactionSettings;
  readonly progress: Progress;
  readonly waits: Waits;
}

/** The waits of a transaction with these settings. */
export function waitsOf(settings: TransactionSettings): Waits {
  const { timeouts, signal, total } = settings;
  return {
    mail: { phase: "mail", timeoutMs: timeouts.commandMs, signal, total },
    data: { phase: "data", timeoutMs: timeouts.commandMs, signal, total },
    end: { phase: "data", timeoutMs: timeouts.dataEndMs, signal, total },
  };
}
