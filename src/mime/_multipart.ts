/**
 * The MIME part tree and its serialisation as a pull-based byte stream: nothing is read or
 * encoded before the consumer asks for it. The stream is a byte stream: a reader that brings
 * its own buffer gets the message written into it (base64 is encoded into one reused buffer
 * of the composer's and copied from there, so a message of any size makes no garbage per
 * chunk); other readers get chunks of 64 KiB.
 *
 * @module
 */

import { Base64LineEncoder, LINE_BYTES, wrappedLength, writeBase64Lines } from "./base64.ts";
import { utf8Length } from "./_text.ts";

/** The body of a leaf part. */
export type PartBody =
  /** Bytes that are already in their transfer encoding (7bit, 8bit, quoted-printable). */
  | { readonly kind: "encoded"; readonly bytes: Uint8Array }
  /** Raw bytes to send as base64. */
  | { readonly kind: "base64"; readonly bytes: Uint8Array }
  /**
   * A stream of raw bytes to send as base64; read only when the message is streamed. `size`,
   * when known, is how many bytes it will give. `owned` is false for a caller's stream, which
   * is never cancelled: when the message stops early it is only released.
   */
  | {
    readonly kind: "base64-stream";
    readonly stream: ReadableStream<Uint8Array>;
    readonly size?: number | undefined;
    readonly owned: boolean;
  };

/** A part with a body. */
export interface LeafPart {
  /** The part's header fields, formatted, each line ending in CRLF. */
  readonly headers: string;
  readonly body: PartBody;
}

/** A `multipart/*` part. */
export interface MultipartPart {
  /** The part's header fields (including its Content-Type with the boundary). */
  readonly headers: string;
  readonly boundary: string;
  readonly children: readonly Part[];
}

/** A node of the MIME tree. */
export type Part = LeafPart | MultipartPart;

/** The size of the chunks a reader without its own buffer gets (the last one may be smaller). */
const CHUNK_SIZE = 64 * 1024;
/** Raw bytes encoded at a time: a whole number of base64 lines, about 64 KiB. */
const SLICE_SIZE = LINE_BYTES * 1150;

const encoder = new TextEncoder();
const CRLF = new Uint8Array([0x0d, 0x0a]);

/**
 * Creates a random boundary (96 bits from `crypto.getRandomValues`, as hex), so that it does
 * not occur in any part by chance; base64 output can never contain it (no `_`). It is short
 * enough for `Content-Type: multipart/alternative; boundary=...` to fit on one line.
 */
export function randomBoundary(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  let hex = "";
  for (const b of bytes) hex += b.toString(16).padStart(2, "0");
  return `postie_${hex}`;
}

/**
 * The boundaries of one message, the same on every composition: the first composition draws
 * random ones ({@linkcode randomBoundary}) and records them in `recorded`; a later one given the
 * same array gets the same boundaries in the same order, so that the message comes out byte for
 * byte the same (a message sent in several transactions, or sent again).
 *
 * @param recorded The boundaries drawn so far for the message; filled on first use.
 * @returns A source of boundaries for one composition.
 */
export function recordedBoundaries(recorded: string[]): () => string {
  let next = 0;
  return () => recorded[next++] ??= randomBoundary();
}

/** Bytes read at a time from a byte stream (such as a file), into one reused buffer. */
const READ_SIZE = 512 * 1024;

/**
 * Reads a source stream. A byte stream (a file) is read into one buffer that is reused for
 * every chunk, since each chunk is encoded before the next is read: however large the file,
 * reading it makes no garbage. Other streams are read chunk by chunk as they come.
 */
class SourceReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array> | ReadableStreamBYOBReader;
  #buffer: ArrayBuffer | undefined;
  /** False for a caller's stream: stopping early releases it instead of cancelling it. */
  readonly owned: boolean;

  constructor(stream: ReadableStream<Uint8Array>, owned: boolean) {
    this.owned = owned;
    let byob: ReadableStreamBYOBReader | undefined;
    try {
      byob = stream.getReader({ mode: "byob" });
    } catch {
      // Not a byte stream.
    }
    this.#reader = byob ?? stream.getReader();
  }

  /** The next chunk, valid until the next call; `undefined` at the end. */
  async read(): Promise<unknown> {
    if (!(this.#reader instanceof ReadableStreamBYOBReader)) {
      return (await this.#reader.read()).value;
    }
    const buffer = this.#buffer ?? new ArrayBuffer(READ_SIZE);
    this.#buffer = undefined;
    const { done, value } = await this.#reader.read(new Uint8Array(buffer));
    if (value) this.#buffer = value.buffer as ArrayBuffer;
    return done ? undefined : value;
  }

  cancel(reason: unknown): Promise<void> {
    return this.#reader.cancel(reason);
  }

  releaseLock(): void {
    this.#reader.releaseLock();
  }
}

/**
 * The streams a message reads from, so that all of them can be released on every path: the
 * library's own (files) are cancelled, a caller's stream is released and left to its owner.
 */
class Sources {
  readonly #pending = new Set<ReadableStream<Uint8Array>>();
  #active: SourceReader | undefined;
  #cancelled = false;

  constructor(streams: Iterable<{ stream: ReadableStream<Uint8Array>; owned: boolean }>) {
    for (const { stream, owned } of streams) if (owned) this.#pending.add(stream);
  }

  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** Starts reading `stream`. */
  open(stream: ReadableStream<Uint8Array>, owned: boolean): SourceReader {
    this.#pending.delete(stream);
    this.#active = new SourceReader(stream, owned);
    return this.#active;
  }

  /** Marks the active stream as fully read. */
  finish(reader: SourceReader): void {
    if (this.#active === reader) this.#active = undefined;
    reader.releaseLock();
  }

  /** Cancels every stream that has not been read to its end. */
  async cancelAll(reason: unknown): Promise<void> {
    this.#cancelled = true;
    const waits: Promise<void>[] = [];
    const active = this.#active;
    this.#active = undefined;
    if (active?.owned) waits.push(active.cancel(reason));
    else if (active) {
      try {
        active.releaseLock();
      } catch {
        // A read is still pending: the lock goes with the reader.
      }
    }
    for (const stream of this.#pending) waits.push(stream.cancel(reason));
    this.#pending.clear();
    await Promise.allSettled(waits);
  }
}

/**
 * Yields the encoded pieces of a body held in memory; a base64 piece is valid only until the
 * next one is asked for.
 */
function* memoryBody(body: Exclude<PartBody, { kind: "base64-stream" }>): Generator<Uint8Array> {
  if (body.kind === "encoded") {
    yield body.bytes;
    return;
  }
  const base64 = new Base64LineEncoder(true);
  for (let i = 0; i < body.bytes.length; i += SLICE_SIZE) {
    yield base64.push(body.bytes.subarray(i, i + SLICE_SIZE));
  }
  yield base64.end();
}

/** What serialising a part comes to. */
interface Measure {
  /** Its length in bytes. */
  readonly size: number;
  /** Whether its last non-empty piece ends with CRLF (else the message gets one more). */
  readonly endsWithCrlf: boolean;
  /** Whether every body is in memory (no stream to read). */
  readonly inMemory: boolean;
}

/** Measures a part tree; `undefined` when a stream's size is not known. */
function measure(part: Part): Measure | undefined {
  const head = utf8Length(part.headers) + 2;
  if ("children" in part) {
    const boundary = part.boundary.length;
    let size = head;
    let inMemory = true;
    for (let i = 0; i < part.children.length; i++) {
      const child = measure(part.children[i]!);
      if (child === undefined) return undefined;
      size += (i === 0 ? boundary + 4 : boundary + 6) + child.size;
      inMemory &&= child.inMemory;
    }
    return { size: size + boundary + 6, endsWithCrlf: false, inMemory };
  }
  const body = part.body;
  if (body.kind === "encoded") {
    const n = body.bytes.length;
    const crlf = n >= 2 && body.bytes[n - 2] === 0x0d && body.bytes[n - 1] === 0x0a;
    return { size: head + n, endsWithCrlf: n === 0 || crlf, inMemory: true };
  }
  const n = body.kind === "base64" ? body.bytes.length : body.size;
  if (n === undefined) return undefined;
  // Base64 lines are joined by CRLF, with none after the last.
  return {
    size: head + wrappedLength(n, false),
    endsWithCrlf: n === 0,
    inMemory: !("stream" in body),
  };
}

/** The whole message's length: the tree's, and the CRLF that ends the message if needed. */
function totalSize(measured: Measure): number {
  return measured.size + (measured.endsWithCrlf ? 0 : 2);
}

/**
 * The exact number of bytes {@linkcode streamMessage} will produce for `root`, or `undefined`
 * when a stream's size is not known.
 */
export function messageSize(root: Part): number | undefined {
  const measured = measure(root);
  return measured && totalSize(measured);
}

/** Writes a part tree held in memory into `out` at `offset`; returns the end offset. */
function writePart(part: Part, out: Uint8Array, offset: number): number {
  let o = offset + encoder.encodeInto(part.headers, out.subarray(offset)).written;
  out.set(CRLF, o);
  o += 2;
  if ("children" in part) {
    part.children.forEach((child, i) => {
      const delimiter = `${i === 0 ? "" : "\r\n"}--${part.boundary}\r\n`;
      o += encoder.encodeInto(delimiter, out.subarray(o)).written;
      o = writePart(child, out, o);
    });
    return o + encoder.encodeInto(`\r\n--${part.boundary}--`, out.subarray(o)).written;
  }
  const body = part.body;
  if (body.kind === "base64-stream") throw new TypeError("A streamed part is not in memory");
  if (body.kind === "base64") return writeBase64Lines(body.bytes, out, o);
  out.set(body.bytes, o);
  return o + body.bytes.length;
}

/**
 * Serialises a part tree into one array, without a stream, when it reads no stream and comes
 * to at most `limit` bytes; otherwise returns `undefined` (stream it with
 * {@linkcode streamMessage}). The bytes are those the stream would give.
 */
export function messageBytes(root: Part, limit: number): Uint8Array | undefined {
  const measured = measure(root);
  return measured && bytesOf(root, measured, limit);
}

function bytesOf(root: Part, measured: Measure, limit: number): Uint8Array | undefined {
  if (!measured.inMemory || totalSize(measured) > limit) return undefined;
  const out = new Uint8Array(totalSize(measured));
  const end = writePart(root, out, 0);
  if (!measured.endsWithCrlf) out.set(CRLF, end);
  return out;
}

/**
 * The message as one array when it is in memory and at most `limit` bytes, else as a stream;
 * with its size when known. The tree is measured once for both.
 */
export function messageBody(
  root: Part,
  limit: number,
): { body: Uint8Array | ReadableStream<Uint8Array>; size: number | undefined } {
  const measured = measure(root);
  const bytes = measured && bytesOf(root, measured, limit);
  if (bytes) return { body: bytes, size: bytes.length };
  return { body: streamMessage(root), size: measured && totalSize(measured) };
}

/**
 * Yields the encoded pieces of one part, depth first. A piece is valid only until the next one
 * is asked for (base64 is encoded into one reused buffer).
 */
async function* emitPart(part: Part, sources: Sources): AsyncGenerator<Uint8Array> {
  yield encoder.encode(part.headers);
  yield CRLF;
  if ("children" in part) {
    const delimiter = encoder.encode(`--${part.boundary}\r\n`);
    const between = encoder.encode(`\r\n--${part.boundary}\r\n`);
    for (let i = 0; i < part.children.length; i++) {
      yield i === 0 ? delimiter : between;
      yield* emitPart(part.children[i]!, sources);
    }
    yield encoder.encode(`\r\n--${part.boundary}--`);
    return;
  }
  const body = part.body;
  if (body.kind !== "base64-stream") {
    yield* memoryBody(body);
    return;
  }
  const base64 = new Base64LineEncoder(true);
  const reader = sources.open(body.stream, body.owned);
  while (true) {
    const value = await reader.read();
    if (sources.cancelled) return;
    if (value === undefined) break;
    if (!(value instanceof Uint8Array)) {
      throw new TypeError(
        "Cannot compose message: an attachment stream produced a non-Uint8Array chunk",
      );
    }
    for (let i = 0; i < value.length; i += SLICE_SIZE) {
      yield base64.push(value.subarray(i, i + SLICE_SIZE));
    }
  }
  sources.finish(reader);
  yield base64.end();
}

/** Yields the whole message: the root part, ending with CRLF. */
async function* emitMessage(root: Part, sources: Sources): AsyncGenerator<Uint8Array> {
  let endsWithCrlf = false;
  for await (const piece of emitPart(root, sources)) {
    const n = piece.length;
    if (n === 0) continue;
    endsWithCrlf = n >= 2 && piece[n - 2] === 0x0d && piece[n - 1] === 0x0a;
    yield piece;
  }
  if (!endsWithCrlf) yield CRLF;
}

/** The streams inside a part tree, in order. */
function streamsOf(part: Part): { stream: ReadableStream<Uint8Array>; owned: boolean }[] {
  if ("children" in part) return part.children.flatMap(streamsOf);
  return part.body.kind === "base64-stream" ? [part.body] : [];
}

/**
 * Serialises a part tree as a pull-based byte stream: each read is filled from the pieces the
 * tree yields, copied into the reader's buffer (or a 64 KiB chunk for a default reader).
 * Cancelling the stream, or an error while reading a source, cancels every source stream of the
 * library's that is still open and releases a caller's.
 */
export function streamMessage(root: Part): ReadableStream<Uint8Array> {
  const sources = new Sources(streamsOf(root));
  const pieces = emitMessage(root, sources);
  /** What is left of the current piece (valid until the next piece is asked for). */
  let piece: Uint8Array | undefined;
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: CHUNK_SIZE,
    async pull(controller) {
      const request = controller.byobRequest!;
      const view = request.view!;
      const target = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
      let filled = 0;
      try {
        while (filled < target.length) {
          if (piece === undefined || piece.length === 0) {
            const next = await pieces.next();
            if (next.done) break;
            piece = next.value;
            continue;
          }
          const n = Math.min(piece.length, target.length - filled);
          target.set(n === piece.length ? piece : piece.subarray(0, n), filled);
          filled += n;
          piece = piece.subarray(n);
        }
      } catch (error) {
        await sources.cancelAll(error);
        throw error;
      }
      if (filled === 0) {
        controller.close();
        request.respond(0);
        return;
      }
      request.respond(filled);
    },
    async cancel(reason) {
      piece = undefined;
      await sources.cancelAll(reason);
      await pieces.return(undefined);
    },
  }, { highWaterMark: 0 });
}
