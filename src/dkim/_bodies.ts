/**
 * Message bytes around signing: line ends made what SMTP delivers (so that the signature
 * covers what the receiver gets), a one-shot stream read into memory within a limit, and the
 * signature fields put before a message held in memory or streamed.
 *
 * @module
 */

import { concat } from "../_bytes.ts";
import { DataEncoder } from "../protocol/_dot_stuff.ts";

/**
 * The most bytes of a stream that can be read only once (a raw message's, or an attachment's
 * in a composed message) that are held in memory to sign it: 32 MiB. It has to be read twice,
 * once for the body hash and once to send.
 */
export const HOLD_LIMIT = 32 * 1024 * 1024;

/**
 * Turns every line end into CRLF (bare LF and bare CR too) and ends the message with CRLF:
 * exactly what DATA and BDAT deliver of a message that is not binary MIME.
 */
export class LineEnds {
  readonly #encoder = new DataEncoder(false);

  /** The next chunk, with its line ends made CRLF (may be `chunk` itself). */
  push(chunk: Uint8Array): Uint8Array {
    return this.#encoder.push(chunk);
  }

  /** What ends the message: a CRLF if its last line had none. */
  finish(): Uint8Array {
    return this.#encoder.finish();
  }
}

/** A whole message in memory with CRLF line ends (see {@linkcode LineEnds}). */
export function withCrlfLineEnds(message: Uint8Array): Uint8Array {
  const lineEnds = new LineEnds();
  const body = lineEnds.push(message);
  const tail = lineEnds.finish();
  return tail.length === 0 ? body : concat([body, tail]);
}

/**
 * Reads a stream to its end into memory, refusing beyond `limit` bytes. On failure the stream
 * is cancelled when it is the library's own (`owned`), else only released.
 *
 * @throws {RangeError} When it gives more than `limit` bytes.
 */
export async function readWhole(
  stream: ReadableStream<Uint8Array>,
  limit: number,
  owned: boolean,
  what: string,
): Promise<Uint8Array> {
  const reader = stream.getReader();
  const pieces: Uint8Array[] = [];
  let size = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limit) {
        throw new RangeError(
          `Cannot sign message with DKIM: ${what} gives more than ${limit / 1024 / 1024} MiB, ` +
            "the most held in memory to be read twice; give the content as bytes or as a " +
            "file ({ path }), which is read twice instead",
        );
      }
      pieces.push(value.slice());
    }
  } catch (error) {
    if (owned) await reader.cancel(error).catch(() => {});
    else reader.releaseLock();
    throw error;
  }
  reader.releaseLock();
  return concat(pieces);
}

/** The chunk size of {@linkcode prependStream} for a reader that brings no buffer. */
const PREPEND_CHUNK = 64 * 1024;

/**
 * `head` then `body` (a byte stream: a composed message), as one pull-based byte stream whose
 * reader's buffer is handed through to `body`: a reader that reads into one reused buffer
 * reads the whole message into it, without a chunk of garbage per read. Cancelling it cancels
 * `body`.
 */
export function prependStream(
  head: Uint8Array,
  body: ReadableStream<Uint8Array>,
): ReadableStream<Uint8Array> {
  let reader: ReadableStreamBYOBReader | undefined;
  /** What is left of `head` to give. */
  let rest = head;
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: PREPEND_CHUNK,
    pull: async (controller) => {
      const request = controller.byobRequest!;
      const view = request.view!;
      const target = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
      if (rest.length > 0) {
        const n = Math.min(rest.length, target.length);
        target.set(rest.subarray(0, n));
        rest = rest.subarray(n);
        request.respond(n);
        return;
      }
      reader ??= body.getReader({ mode: "byob" });
      // The read transfers the request's buffer to `body`; its bytes come back in `value`.
      const { done, value } = await reader.read(target);
      if (done) controller.close();
      request.respondWithNewView(value!);
    },
    cancel: async (reason) => {
      if (reader) await reader.cancel(reason);
      else await body.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
