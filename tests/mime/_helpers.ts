/**
 * Test helpers for the MIME builder: an independent view of what it produced (mailparser), and
 * small reference decoders written from the RFCs for exact round-trip checks.
 */

import { Buffer } from "node:buffer";
import { simpleParser } from "mailparser";

/** Reads a stream to its end. */
export async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Parses message bytes with mailparser, keeping `cid:` links in the HTML. */
export function parse(bytes: Uint8Array): ReturnType<typeof simpleParser> {
  return simpleParser(Buffer.from(bytes), { keepCidLinks: true });
}

/** Hex SHA-256 of bytes. */
export async function sha256(bytes: Uint8Array | Buffer): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new Uint8Array(bytes));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Splits text into lines, asserting that every line ends in CRLF (and no bare CR/LF). */
export function crlfLines(text: string): string[] {
  if (!text.endsWith("\r\n")) throw new Error("text does not end with CRLF");
  const lines = text.slice(0, -2).split("\r\n");
  for (const line of lines) {
    if (line.includes("\r") || line.includes("\n")) {
      throw new Error(`bare CR or LF in line ${JSON.stringify(line)}`);
    }
  }
  return lines;
}

/** Removes folding: CRLF followed by whitespace (RFC 5322 section 2.2.3). */
export function unfold(text: string): string {
  return text.replace(/\r\n(?=[ \t])/g, "");
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Decodes quoted-printable bytes (RFC 2045 section 6.7), strictly. */
export function decodeQuotedPrintable(text: string): Uint8Array {
  const out: number[] = [];
  const lines = text.split("\r\n");
  lines.forEach((line, index) => {
    if (/[ \t]$/.test(line)) throw new Error(`trailing whitespace in ${JSON.stringify(line)}`);
    let soft = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i]!;
      if (c === "=") {
        if (i === line.length - 1) {
          soft = true;
          break;
        }
        const hex = line.slice(i + 1, i + 3);
        if (!/^[0-9A-F]{2}$/.test(hex)) throw new Error(`bad escape ${JSON.stringify(hex)}`);
        out.push(parseInt(hex, 16));
        i += 2;
      } else {
        const code = c.charCodeAt(0);
        if (code > 126 || (code < 32 && c !== "\t")) throw new Error(`raw byte ${code}`);
        out.push(code);
      }
    }
    if (!soft && index < lines.length - 1) out.push(13, 10);
  });
  return new Uint8Array(out);
}

/** Decodes one RFC 2047 encoded word on its own; throws if its bytes are not whole UTF-8. */
export function decodeWord(word: string): string {
  const match = /^=\?UTF-8\?([BQ])\?([^?]*)\?=$/.exec(word);
  if (!match) throw new Error(`not an encoded word: ${word}`);
  const [, kind, payload] = match;
  if (kind === "B") {
    return decoder.decode(Uint8Array.from(atob(payload!), (c) => c.charCodeAt(0)));
  }
  const bytes: number[] = [];
  for (let i = 0; i < payload!.length; i++) {
    const c = payload![i]!;
    if (c === "_") bytes.push(0x20);
    else if (c === "=") {
      bytes.push(parseInt(payload!.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (/[A-Za-z0-9!*+\-/]/.test(c)) bytes.push(c.charCodeAt(0));
    else throw new Error(`character ${JSON.stringify(c)} may not appear in a Q word`);
  }
  return decoder.decode(new Uint8Array(bytes));
}

/**
 * Decodes an unfolded unstructured header value: encoded words are decoded, whitespace between
 * two adjacent encoded words is dropped, everything else is kept as is (RFC 2047 section 6.2).
 */
export function decodeUnstructured(value: string): string {
  const tokens = value.split(/([ \t]+)/);
  let out = "";
  let previousEncoded = false;
  let pendingSpace = "";
  for (const token of tokens) {
    if (token === "") continue;
    if (/^[ \t]+$/.test(token)) {
      pendingSpace += token;
      continue;
    }
    const encoded = token.startsWith("=?") && token.endsWith("?=");
    if (!(encoded && previousEncoded)) out += pendingSpace;
    pendingSpace = "";
    out += encoded ? decodeWord(token) : token;
    previousEncoded = encoded;
  }
  return out + pendingSpace;
}

/** The header block of a message (up to the first empty line), unfolded, as name/value pairs. */
export function headerFields(message: string): [string, string][] {
  const end = message.indexOf("\r\n\r\n");
  const block = unfold(message.slice(0, end));
  return block.split("\r\n").map((line) => {
    const colon = line.indexOf(":");
    return [line.slice(0, colon), line.slice(colon + 1).replace(/^ /, "")];
  });
}

/** A file opener built on `Deno.open`, independent of the library's default. */
export const testOpenFile = async (path: string): Promise<ReadableStream<Uint8Array>> => {
  const file = await Deno.open(path, { read: true });
  return file.readable;
};

/** Bytes of `size` from a cheap pseudo-random sequence. */
export function pseudoRandomBytes(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A MIME part as seen by a minimal reference parser: its type and its sub-parts. */
export interface Tree {
  readonly type: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly children: readonly Tree[];
}

/**
 * Splits a message (or part) into a tree by following `multipart/*` boundaries, independently
 * of the builder. Headers are unfolded and keyed in lower case.
 */
export function mimeTree(text: string): Tree {
  const end = text.indexOf("\r\n\r\n");
  const headers: Record<string, string> = {};
  for (const [name, value] of headerFields(text)) headers[name.toLowerCase()] = value;
  const body = end < 0 ? "" : text.slice(end + 4);
  const contentType = headers["content-type"] ?? "text/plain";
  const type = contentType.split(";")[0]!.trim().toLowerCase();
  if (!type.startsWith("multipart/")) return { type, headers, body, children: [] };
  const boundary = /boundary="?([^";]+)"?/.exec(contentType)![1]!;
  const parts = body.split(new RegExp(`(?:^|\\r\\n)--${boundary}(?:--)?(?:\\r\\n|$)`));
  // parts[0] is the preamble, the last one the epilogue.
  const children = parts.slice(1, -1).map(mimeTree);
  return { type, headers, body, children };
}

/** A tree as nested type names: `["multipart/mixed", ["text/plain"], ...]`-like strings. */
export function shape(tree: Tree): string {
  if (tree.children.length === 0) return tree.type;
  return `${tree.type}(${tree.children.map(shape).join(", ")})`;
}

/** A byte stream over `content` that answers its reads with uneven amounts, as a file or a pipe. */
export class UnevenByteStream {
  /** How many reads were answered with bytes. */
  reads = 0;
  readonly stream: ReadableStream<Uint8Array>;

  /**
   * @param content The bytes to hand out.
   * @param readSize The most bytes the n-th read (from 1) may get.
   */
  constructor(content: Uint8Array, readSize: (read: number) => number) {
    let offset = 0;
    this.stream = new ReadableStream({
      type: "bytes",
      pull: (controller) => {
        const request = controller.byobRequest!;
        const view = request.view! as Uint8Array;
        if (offset === content.length) {
          controller.close();
          request.respond(0);
          return;
        }
        this.reads++;
        const n = Math.min(view.byteLength, content.length - offset, readSize(this.reads));
        view.set(content.subarray(offset, offset + n));
        offset += n;
        request.respond(n);
      },
    });
  }
}
