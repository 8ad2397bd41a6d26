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

/**
 * `head` then `body`, as one pull-based stream; cancelling it cancels `body`.
 */
export function prependStream(
  head: Uint8Array,
  body: ReadableStream<Uint8Array>,
): ReadableStream<Uint8Array> {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      if (!reader) {
        reader = body.getReader();
        controller.enqueue(head);
        return;
      }
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: async (reason) => {
      if (reader) await reader.cancel(reason);
      else await body.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
