/**
 * Attachments: each one checked and its part headers formatted without touching its content
 * ({@linkcode prepareAttachment}), files checked before any connection is made
 * ({@linkcode checkFiles}), then opened for a composition ({@linkcode openAll}).
 *
 * @module
 */

import type { FileOpener } from "../file_opener.ts";
import { checkFields } from "../_fields.ts";
import { decodeBase64 } from "./base64.ts";
import { contentTypeFor } from "./_content_types.ts";
import { formatCustomHeaders } from "./_custom_headers.ts";
import { MAX_LINE_OCTETS } from "./_fold.ts";
import {
  checkHeaderValue,
  checkText,
  formatWithParameters,
  normalizeMessageId,
  type Parameter,
} from "./_headers.ts";
import type { Part, PartBody } from "./_multipart.ts";
import type { Attachment } from "./message.ts";

/** An attachment's content as checked: nothing is opened or read yet. */
export type PreparedContent =
  | Uint8Array
  | ReadableStream<Uint8Array>
  | { readonly path: string }
  /** A whole part's body, already in its transfer encoding (from `raw`). */
  | { readonly encoded: Uint8Array };

/** An attachment with its headers formatted and its content not yet opened. */
export interface PreparedAttachment {
  readonly headers: string;
  readonly content: PreparedContent;
  /** True when it goes with the HTML into `multipart/related` (it has a Content-ID). */
  readonly related: boolean;
  /** True when its part carries 8-bit bytes as they are (a `raw` part). */
  readonly eightBit: boolean;
}

/** The fields of an attachment. */
const ATTACHMENT_FIELDS: readonly string[] = [
  "filename",
  "content",
  "path",
  "raw",
  "contentType",
  "contentId",
  "cid",
  "contentDisposition",
  "encoding",
  "headers",
];

/** nodemailer's attachment fields that postie does not take, and what to do instead. */
const NODEMAILER_ATTACHMENT: Readonly<Record<string, string>> = {
  href: 'postie does not download: fetch the content and give it as "content"',
  httpHeaders: 'postie does not download: fetch the content and give it as "content"',
  contentTransferEncoding: "postie sends attachments as base64: leave it out",
};

const encoder = new TextEncoder();
const MEDIA_TYPE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function fail(reason: string): TypeError {
  return new TypeError(`Cannot compose message: ${reason}`);
}

function basename(path: string): string {
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1] ?? path;
}

/** A string content as bytes, decoded the way Node.js `Buffer.from(content, encoding)` does. */
function stringContent(content: string, encoding: unknown, label: string): Uint8Array {
  switch (encoding) {
    case "utf-8":
    case "utf8":
      return encoder.encode(content);
    case "base64":
      try {
        return decodeBase64(content);
      } catch (error) {
        throw new TypeError(`Cannot compose message: ${label} is not valid base64`, {
          cause: error,
        });
      }
    case "hex": {
      const hex = content.replace(/\s+/g, "");
      if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
        throw fail(`${label} is not valid hex`);
      }
      const bytes = new Uint8Array(hex.length / 2);
      for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
      return bytes;
    }
    case "latin1":
    case "binary": {
      const bytes = new Uint8Array(content.length);
      for (let i = 0; i < content.length; i++) {
        const c = content.charCodeAt(i);
        if (c > 0xff) throw fail(`${label} has a character over U+00FF, which latin1 cannot carry`);
        bytes[i] = c;
      }
      return bytes;
    }
  }
  throw fail(
    `${label} has an unknown encoding ${JSON.stringify(encoding)} ` +
      `(expected "utf-8", "base64", "hex" or "latin1")`,
  );
}

/** A stream over any async iterable of bytes (a Node.js `Readable`); never cancels it. */
function iterableStream(iterable: AsyncIterable<unknown>): ReadableStream<Uint8Array> {
  const iterator = iterable[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await iterator.next();
      if (done) controller.close();
      else controller.enqueue(value as Uint8Array);
    },
  }, { highWaterMark: 0 });
}

/** What a `content` comes to; a stream is checked, not read. */
function preparedContent(attachment: Attachment, label: string): PreparedContent {
  const content: unknown = attachment.content;
  if (typeof content === "string") {
    return stringContent(content, attachment.encoding ?? "utf-8", label);
  }
  if (content instanceof Uint8Array) return content;
  if (content instanceof ReadableStream) {
    if (content.locked) throw fail(`${label} stream is locked (already being read)`);
    return content;
  }
  if (content !== null && typeof content === "object") {
    if (Symbol.asyncIterator in content) {
      return iterableStream(content as AsyncIterable<unknown>);
    }
    const path = (content as { path?: unknown }).path;
    if (typeof path === "string") return filePath(path, label);
  }
  throw fail(
    `${label} content must be a Uint8Array, a string, a ReadableStream or { path }`,
  );
}

function filePath(path: string, label: string): { path: string } {
  if (path === "") throw fail(`${label} has an empty path`);
  if (/^(https?|data):/i.test(path)) {
    throw fail(
      `${label} path ${JSON.stringify(path.slice(0, 40))} is a URL: postie does not download, ` +
        `fetch it and give it as "content"`,
    );
  }
  return { path };
}

/** Turns every line end (CRLF, bare CR, bare LF) of bytes into CRLF. */
function crlfBytes(bytes: Uint8Array): Uint8Array {
  let bare = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x0d && bytes[i + 1] === 0x0a) i++;
    else if (b === 0x0d || b === 0x0a) bare++;
  }
  if (bare === 0) return bytes;
  const out = new Uint8Array(bytes.length + bare);
  let o = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x0d || b === 0x0a) {
      if (b === 0x0d && bytes[i + 1] === 0x0a) i++;
      out[o++] = 0x0d;
      out[o++] = 0x0a;
    } else {
      out[o++] = b;
    }
  }
  return out;
}

/** A part given whole: its header section and its body, line ends made CRLF. */
function rawPart(attachment: Attachment, label: string): PreparedAttachment {
  const others = Object.keys(attachment).filter((key) => key !== "raw");
  if (others.length > 0) {
    throw fail(`${label} has raw (the whole part) and ${others.join(", ")}: give raw alone`);
  }
  const raw: unknown = attachment.raw;
  if (typeof raw !== "string" && !(raw instanceof Uint8Array)) {
    throw fail(`${label} raw must be a string or a Uint8Array`);
  }
  const bytes = crlfBytes(typeof raw === "string" ? encoder.encode(raw) : raw);
  let lineStart = 0;
  let eightBit = false;
  let split = -1;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b >= 0x80) eightBit = true;
    else if (b === 0) throw fail(`${label} raw contains a NUL byte`);
    else if (b === 0x0a) {
      if (i - 1 - lineStart > MAX_LINE_OCTETS) {
        throw new RangeError(
          `Cannot compose message: ${label} raw has a line over ${MAX_LINE_OCTETS} octets`,
        );
      }
      if (split === -1 && i - 1 === lineStart) split = lineStart;
      lineStart = i + 1;
    }
  }
  if (bytes.length - lineStart > MAX_LINE_OCTETS) {
    throw new RangeError(
      `Cannot compose message: ${label} raw has a line over ${MAX_LINE_OCTETS} octets`,
    );
  }
  // The header section ends at the first empty line; without one, the part is all header.
  const headEnd = split === -1 ? bytes.length : split;
  let headers: string;
  try {
    headers = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, headEnd));
  } catch {
    throw fail(`${label} raw has a header section that is not UTF-8`);
  }
  if (headers !== "" && !headers.endsWith("\r\n")) headers += "\r\n";
  const body = split === -1 ? new Uint8Array(0) : bytes.subarray(split + 2);
  return { headers, content: { encoded: body }, related: false, eightBit };
}

/**
 * Checks one attachment and formats its part headers; its content is not opened.
 *
 * @param attachment The attachment, as given.
 * @param index Its position, for errors.
 * @param hasHtml Whether the message has HTML (an inline image then goes with it).
 * @param label How errors name it.
 * @returns The attachment, prepared.
 */
export function prepareAttachment(
  attachment: Attachment,
  index: number,
  hasHtml: boolean,
  label = `attachment ${index}`,
): PreparedAttachment {
  if (attachment === null || typeof attachment !== "object") {
    throw fail(`${label} is not an object`);
  }
  checkFields(attachment, ATTACHMENT_FIELDS, label, NODEMAILER_ATTACHMENT);
  const given = ["content", "path", "raw"].filter((key) =>
    (attachment as Record<string, unknown>)[key] !== undefined
  );
  if (given.length !== 1) {
    throw fail(
      given.length === 0
        ? `${label} needs content, path or raw`
        : `${label} has ${given.join(" and ")}: give one of content, path and raw`,
    );
  }
  if (given[0] === "raw") return rawPart(attachment, label);
  let content: PreparedContent;
  let filename: string | false | undefined = attachment.filename;
  if (filename !== undefined && filename !== false) checkText(`${label} filename`, filename);
  if (attachment.path !== undefined) {
    if (typeof attachment.path !== "string") throw fail(`${label} path must be a string`);
    content = filePath(attachment.path, label);
  } else {
    content = preparedContent(attachment, label);
  }
  if ("path" in content) filename ??= basename(content.path);
  if (filename === false) filename = undefined;
  const contentType = attachment.contentType ?? contentTypeFor(filename ?? "");
  checkHeaderValue("Content-Type", contentType);
  const mediaType = contentType.split(";", 1)[0]!.trim();
  if (!/^[\x20-\x7e]*$/.test(contentType)) {
    throw fail(`${label} content type ${JSON.stringify(contentType)} is not ASCII`);
  }
  if (!MEDIA_TYPE.test(mediaType)) {
    throw fail(`${label} content type ${JSON.stringify(contentType)} is not type/subtype`);
  }
  if (attachment.contentId !== undefined && attachment.cid !== undefined) {
    throw fail(`${label} has contentId and cid: give one (cid is nodemailer's name)`);
  }
  const id = attachment.contentId ?? attachment.cid;
  let cid: string | undefined;
  if (id !== undefined) {
    checkHeaderValue("Content-ID", id);
    cid = normalizeMessageId("Content-ID", id);
  }
  const disposition = attachment.contentDisposition ?? (cid ? "inline" : "attachment");
  if (disposition !== "inline" && disposition !== "attachment") {
    throw fail(`${label} content disposition must be "inline" or "attachment"`);
  }
  const name: Parameter[] = filename === undefined
    ? []
    : [{ key: "name", value: filename, style: "rfc2047" }];
  const fileParam: Parameter[] = filename === undefined
    ? []
    : [{ key: "filename", value: filename }];
  let headers = formatWithParameters("Content-Type", contentType.trim(), name) +
    "Content-Transfer-Encoding: base64\r\n" +
    formatWithParameters("Content-Disposition", disposition, fileParam);
  if (cid) headers += `Content-ID: ${cid}\r\n`;
  headers += formatCustomHeaders(attachment.headers, `${label} headers`, true);
  return { headers, content, related: cid !== undefined && hasHtml, eightBit: false };
}

/** An attachment's content, ready to encode: bytes, or a stream and its size when known. */
type OpenedContent = Uint8Array | { readonly encoded: Uint8Array } | {
  readonly stream: ReadableStream<Uint8Array>;
  readonly size?: number;
  /** False for the caller's own stream, which the library never cancels. */
  readonly owned: boolean;
};

/** Opens a file through `openFile`, with an error that names it. */
async function open(
  path: string,
  openFile: FileOpener | undefined,
): Promise<{ stream: ReadableStream<Uint8Array>; size?: number }> {
  if (!openFile) {
    throw new TypeError(
      `Cannot read attachment ${JSON.stringify(path)}: no file opener was given ` +
        "(pass options.openFile, such as openFile from @postie/smtp)",
    );
  }
  try {
    const opened = await openFile(path);
    return opened instanceof ReadableStream ? { stream: opened } : opened;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new TypeError(`Cannot read attachment ${JSON.stringify(path)}: ${reason}`, {
      cause: error,
    });
  }
}

/**
 * Checks that every file attachment exists and can be read, by opening it and closing it
 * again, all at once; rejects with the first failure.
 *
 * @param attachments The attachments.
 * @param openFile Opens files.
 */
export async function checkFiles(
  attachments: readonly PreparedAttachment[],
  openFile: FileOpener,
): Promise<void> {
  const results = await Promise.allSettled(attachments.map(async ({ content }) => {
    if (!("path" in content)) return;
    const { stream } = await open(content.path, openFile);
    await stream.cancel();
  }));
  const failure = results.find((r) => r.status === "rejected");
  if (failure) throw (failure as PromiseRejectedResult).reason;
}

/**
 * Opens every file attachment; on any failure closes what was opened and rejects.
 *
 * @param prepared The attachments.
 * @param openFile Opens files (none: a file attachment fails).
 * @returns Each one's content, ready to encode.
 */
export async function openAll(
  prepared: readonly PreparedAttachment[],
  openFile: FileOpener | undefined,
): Promise<OpenedContent[]> {
  if (prepared.length === 0) return [];
  const results = await Promise.allSettled(
    prepared.map(async ({ content }): Promise<OpenedContent> => {
      if (content instanceof Uint8Array || "encoded" in content) return content;
      if (content instanceof ReadableStream) return { stream: content, owned: false };
      return { ...await open(content.path, openFile), owned: true };
    }),
  );
  const failure = results.find((r) => r.status === "rejected");
  if (failure === undefined) {
    return results.map((r) => (r as PromiseFulfilledResult<OpenedContent>).value);
  }
  await Promise.allSettled(results.map((r) => {
    if (r.status !== "fulfilled" || !("stream" in r.value) || !r.value.owned) return undefined;
    return r.value.stream.cancel(); // a file of ours; the caller's stream is left alone
  }));
  throw (failure as PromiseRejectedResult).reason;
}

/**
 * The MIME part of an attachment.
 *
 * @param prepared The attachment.
 * @param content Its content, opened.
 * @returns Its part.
 */
export function attachmentPart(prepared: PreparedAttachment, content: OpenedContent): Part {
  const body: PartBody = content instanceof Uint8Array
    ? { kind: "base64", bytes: content }
    : "encoded" in content
    ? { kind: "encoded", bytes: content.encoded }
    : { kind: "base64-stream", stream: content.stream, size: content.size, owned: content.owned };
  return { headers: prepared.headers, body };
}
