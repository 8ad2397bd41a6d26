/**
 * The header block of a message, as DKIM sees it: found in a stream (it ends at the first empty
 * line), split into fields, and the fields that `h=` names picked from the bottom up (RFC 6376
 * section 5.4.2). Text here has one character per byte ("binary strings"), so that any byte,
 * UTF-8 or not, is hashed exactly as it was received.
 *
 * @module
 */

/** One header field as it appears in the message. */
export interface HeaderField {
  /** The name in lower case (ASCII letters only). */
  readonly key: string;
  /** The whole field, folding and final CRLF included, one character per byte. */
  readonly text: string;
}

const CR = 0x0d;
const LF = 0x0a;

/** Bytes as a string of one character per byte. */
export function binaryString(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return out;
}

/** A string of one character per byte (each below 256) as bytes. */
export function binaryBytes(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** Lower-cases the ASCII letters of a field name, and nothing else. */
export function lowerAscii(name: string): string {
  return name.replace(/[A-Z]+/g, (upper) => upper.toLowerCase());
}

/**
 * Splits a header block (every field with its CRLF, without the empty line that ends it) into
 * fields: a line that starts with a space or a tab continues the field before it.
 */
export function splitFields(header: string): HeaderField[] {
  const fields: HeaderField[] = [];
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf("\r\n", start);
    while (end !== -1 && (header[end + 2] === " " || header[end + 2] === "\t")) {
      end = header.indexOf("\r\n", end + 2);
    }
    end = end === -1 ? header.length : end + 2;
    const text = header.slice(start, end);
    const colon = text.indexOf(":");
    const name = colon === -1 ? "" : text.slice(0, colon).replace(/[ \t]+$/, "");
    fields.push({ key: lowerAscii(name), text });
    start = end;
  }
  return fields;
}

/**
 * The fields named by `names` (lower case, in `h=` order), each name taking the next copy of
 * its field from the bottom of the header up; a name with no copy left stands for none.
 */
export function selectFields(fields: readonly HeaderField[], names: readonly string[]): string[] {
  const used = new Map<string, number>();
  const selected: string[] = [];
  for (const name of names) {
    const skip = used.get(name) ?? 0;
    used.set(name, skip + 1);
    let seen = 0;
    for (let i = fields.length - 1; i >= 0; i--) {
      if (fields[i]!.key !== name) continue;
      if (seen++ === skip) {
        selected.push(fields[i]!.text);
        break;
      }
    }
  }
  return selected;
}

/**
 * Finds where the header block of a message ends, chunk by chunk: at the first empty line
 * (CRLF CRLF, or a CRLF at the very start), across chunk boundaries.
 */
export class HeaderReader {
  readonly #chunks: Uint8Array[] = [];
  #size = 0;
  /** 0: inside a line; 1: after CR; 2: at the start of a line; 3: after CR at a line start. */
  #state = 2;
  #header: string | undefined;

  /** The header block (each field with its CRLF), once its end was found. */
  get header(): string | undefined {
    return this.#header;
  }

  /**
   * Reads the next chunk of the message.
   *
   * @returns Where the body starts in `chunk` once the header ended in it; -1 while the
   *   header goes on.
   */
  push(chunk: Uint8Array): number {
    let state = this.#state;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      if (byte === CR) {
        state = state === 2 ? 3 : 1;
      } else if (byte === LF && state === 3) {
        this.#end(chunk, i - 1);
        return i + 1;
      } else {
        state = byte === LF && state === 1 ? 2 : 0;
      }
    }
    this.#state = state;
    this.#keep(chunk);
    return -1;
  }

  /** Ends a message that has no empty line: it is all header (without a final CRLF, as is). */
  finish(): string {
    if (this.#header === undefined) this.#header = binaryString(this.#joined());
    return this.#header;
  }

  #keep(chunk: Uint8Array): void {
    this.#chunks.push(chunk.slice());
    this.#size += chunk.length;
  }

  #joined(): Uint8Array {
    const out = new Uint8Array(this.#size);
    let offset = 0;
    for (const chunk of this.#chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }

  /** The empty line's CR is at `cr` in `chunk` (-1: it was the last byte of the chunk before). */
  #end(chunk: Uint8Array, cr: number): void {
    if (cr >= 0) this.#keep(chunk.subarray(0, cr));
    const joined = this.#joined();
    this.#header = binaryString(cr >= 0 ? joined : joined.subarray(0, joined.length - 1));
    this.#chunks.length = 0;
  }
}
