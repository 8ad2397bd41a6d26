/**
 * A small reader of a message's header section, for tests: {@linkcode parseHeaders}. It unfolds
 * lines, splits name from value and decodes RFC 2047 encoded words; it does not parse
 * addresses, parameters or MIME parts.
 *
 * @module
 */

const decoder = new TextDecoder();

/** One header field of a message. */
export interface MessageHeader {
  /** The field name as written, e.g. `Subject`. */
  readonly name: string;
  /** The value: unfolded, trimmed, RFC 2047 encoded words decoded. */
  readonly value: string;
  /** The field as it was in the message (name, colon, value and folding), without the last line end. */
  readonly raw: string;
}

/**
 * The header fields of a message, in order; names compare without regard to case.
 *
 * @example Read a decoded subject
 * ```ts
 * import { parseHeaders } from "@postie/smtp/testing";
 * import assert from "node:assert/strict";
 *
 * const headers = parseHeaders("Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nTo: a@example.com\r\n\r\nBody");
 * assert.equal(headers.get("subject"), "Grüße");
 * assert.deepEqual(headers.fields.map((field) => field.name), ["Subject", "To"]);
 * ```
 */
export class MessageHeaders implements Iterable<MessageHeader> {
  readonly #fields: readonly MessageHeader[];

  /**
   * Wraps a list of fields.
   *
   * @param fields The fields, in message order.
   */
  constructor(fields: readonly MessageHeader[]) {
    this.#fields = fields;
  }

  /** Every field, in message order. */
  get fields(): readonly MessageHeader[] {
    return this.#fields;
  }

  /**
   * The decoded value of the first field with this name.
   *
   * @param name A field name, in any case.
   * @returns The value, or `undefined` when there is no such field.
   */
  get(name: string): string | undefined {
    const lower = name.toLowerCase();
    return this.#fields.find((field) => field.name.toLowerCase() === lower)?.value;
  }

  /**
   * The decoded values of every field with this name, in order.
   *
   * @param name A field name, in any case.
   * @returns The values (empty when there is none).
   */
  getAll(name: string): string[] {
    const lower = name.toLowerCase();
    return this.#fields.filter((field) => field.name.toLowerCase() === lower).map((field) =>
      field.value
    );
  }

  /**
   * Whether a field with this name is present.
   *
   * @param name A field name, in any case.
   * @returns True when there is at least one.
   */
  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /**
   * The fields, in message order.
   *
   * @returns An iterator over {@linkcode MessageHeaders.fields}.
   */
  [Symbol.iterator](): Iterator<MessageHeader> {
    return this.#fields[Symbol.iterator]();
  }
}

/**
 * Reads the header section of a message: everything up to the first empty line (CRLF or bare
 * LF line ends). Lines that are neither a field nor a continuation are skipped. Bytes are read
 * as UTF-8 (as with SMTPUTF8); encoded words in a charset the runtime's `TextDecoder` does not
 * know are left as they are.
 *
 * @param message The whole message, or just its header section.
 * @returns The fields.
 *
 * @example
 * ```ts
 * import { parseHeaders } from "@postie/smtp/testing";
 * import assert from "node:assert/strict";
 *
 * const headers = parseHeaders("From: a@example.com\r\nSubject: a long\r\n  subject\r\n\r\n");
 * assert.equal(headers.get("Subject"), "a long  subject");
 * ```
 */
export function parseHeaders(message: Uint8Array | string): MessageHeaders {
  const text = typeof message === "string" ? message : decoder.decode(headerBytes(message));
  const end = text.search(/\r?\n\r?\n/);
  const section = end === -1 ? text : text.slice(0, end);
  const lines = section.split(/\r?\n/);
  const fields: MessageHeader[] = [];
  let current: string[] | undefined;
  const flush = () => {
    if (!current) return;
    const raw = current.join("\r\n");
    const colon = raw.indexOf(":");
    const name = raw.slice(0, colon);
    const value = current.join("").slice(colon + 1).trim();
    fields.push({ name, value: decodeEncodedWords(value), raw });
    current = undefined;
  };
  for (const line of lines) {
    if (/^[ \t]/.test(line)) {
      current?.push(line);
      continue;
    }
    flush();
    if (/^[!-9;-~]+:/.test(line)) current = [line];
  }
  flush();
  return new MessageHeaders(fields);
}

/** The bytes up to the end of the header section, so that a large body is not decoded. */
function headerBytes(message: Uint8Array): Uint8Array {
  for (let i = 0; i < message.length - 1; i++) {
    if (message[i] !== 0x0a) continue;
    const next = message[i + 1] === 0x0d ? message[i + 2] : message[i + 1];
    if (next === 0x0a) return message.subarray(0, i + 1);
  }
  return message;
}

const ENCODED_WORD = /=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/g;

/**
 * Decodes the RFC 2047 encoded words in a value. Adjacent words in the same charset are
 * decoded together (a character may be split between them), and the white space between
 * encoded words is dropped, as RFC 2047 section 6.2 says.
 *
 * @param value An unfolded header value.
 * @returns The value with its encoded words decoded.
 */
export function decodeEncodedWords(value: string): string {
  let result = "";
  let last = 0;
  let run: { charset: string; bytes: number[]; source: string } | undefined;
  const flushRun = () => {
    if (!run) return;
    result += decodeCharset(run.charset, run.bytes) ?? run.source;
    run = undefined;
  };
  for (const match of value.matchAll(ENCODED_WORD)) {
    const between = value.slice(last, match.index);
    const charset = match[1]!.split("*")[0]!.toLowerCase();
    const bytes = wordBytes(match[2]!, match[3]!);
    if (run && /^[ \t]*$/.test(between) && bytes && run.charset === charset) {
      run.bytes.push(...bytes);
      run.source += between + match[0];
    } else {
      flushRun();
      // White space between two encoded words goes; other text stays.
      if (!(last > 0 && /^[ \t]*$/.test(between))) result += between;
      if (bytes) run = { charset, bytes: [...bytes], source: match[0] };
      else result += match[0];
    }
    last = match.index + match[0].length;
  }
  flushRun();
  return result + value.slice(last);
}

function wordBytes(encoding: string, text: string): Uint8Array | undefined {
  if (encoding === "B" || encoding === "b") {
    try {
      const binary = atob(text);
      return Uint8Array.from(binary, (c) => c.charCodeAt(0));
    } catch {
      return undefined;
    }
  }
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "_") bytes.push(0x20);
    else if (c === "=" && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(c.charCodeAt(0) & 0xff);
  }
  return new Uint8Array(bytes);
}

function decodeCharset(charset: string, bytes: readonly number[]): string | undefined {
  try {
    return new TextDecoder(charset).decode(new Uint8Array(bytes));
  } catch {
    return undefined;
  }
}
