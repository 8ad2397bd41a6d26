/**
 * A bounded, incremental SMTP reply parser: bytes in, {@linkcode SmtpReply} values out.
 * It never reads from a socket; the session feeds it what the connection delivers.
 *
 * @module
 */

import { SmtpProtocolError } from "../errors.ts";
import type { EnhancedStatus, SmtpReply } from "../types.ts";

/** Limits that keep a hostile server from exhausting memory. */
export interface ReplyReaderLimits {
  /** Longest line in bytes, line end included. */
  readonly maxLineLength: number;
  /** Most lines in one reply. */
  readonly maxLines: number;
}

/** The defaults: far above what real servers send, far below what hurts. */
export const DEFAULT_REPLY_LIMITS: ReplyReaderLimits = { maxLineLength: 16 * 1024, maxLines: 1000 };

const LF = 0x0a;
const CR = 0x0d;
const decoder = new TextDecoder();

function digit(byte: number | undefined): number {
  return byte !== undefined && byte >= 0x30 && byte <= 0x39 ? byte - 0x30 : -1;
}

/**
 * Reads 1 to 3 digits of `text` from `from`, then expects `end` (or, when `end` is a space,
 * the end of the text): returns the number and where it stopped, or -1.
 */
function number(text: string, from: number, end: number): [value: number, next: number] | -1 {
  let value = 0;
  let i = from;
  for (; i < text.length && i - from < 4; i++) {
    const d = text.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) break;
    value = value * 10 + d;
  }
  const digits = i - from;
  if (digits < 1 || digits > 3) return -1;
  if (i < text.length ? text.charCodeAt(i) !== end : end !== 0x20) return -1;
  return [value, i + 1];
}

/**
 * Parses `X.Y.Z ` (or `X.Y.Z` alone) at the start of `text`, X being 2, 4 or 5 and Y and Z
 * 1 to 3 digits; the class must match the reply code's first digit.
 */
export function parseEnhancedStatus(
  text: string,
  code: number,
): { status: EnhancedStatus; rest: string } | undefined {
  const cls = text.charCodeAt(0) - 0x30;
  if ((cls !== 2 && cls !== 4 && cls !== 5) || text.charCodeAt(1) !== 0x2e) return undefined;
  if (cls !== Math.floor(code / 100)) return undefined;
  const subject = number(text, 2, 0x2e);
  if (subject === -1) return undefined;
  const detail = number(text, subject[1], 0x20);
  if (detail === -1) return undefined;
  return {
    status: { class: cls, subject: subject[0], detail: detail[0] },
    rest: text.slice(detail[1]),
  };
}

/**
 * Collects bytes and yields complete replies. Lines end in CRLF (a bare LF is tolerated);
 * every line of a reply must carry the same code; limits are enforced while data arrives, so
 * an endless line or reply fails as soon as it passes the limit.
 */
export class ReplyReader {
  #limits: ReplyReaderLimits;
  #buffer = new Uint8Array(4096);
  #start = 0;
  #end = 0;
  /** Where the scan for the next line end resumes. */
  #scan = 0;
  #code = 0;
  #lines: string[] = [];

  constructor(limits: ReplyReaderLimits = DEFAULT_REPLY_LIMITS) {
    this.#limits = limits;
  }

  /** Bytes received but not yet part of a returned reply. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Appends received bytes. */
  push(chunk: Uint8Array): void {
    const needed = this.#end + chunk.length;
    if (needed > this.#buffer.length) {
      const live = this.#end - this.#start;
      if (live + chunk.length <= this.#buffer.length && this.#start > 0) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
      } else {
        const grown = new Uint8Array(Math.max(this.#buffer.length * 2, live + chunk.length));
        grown.set(this.#buffer.subarray(this.#start, this.#end));
        this.#buffer = grown;
      }
      this.#scan -= this.#start;
      this.#end = live;
      this.#start = 0;
    }
    this.#buffer.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  /**
   * Returns the next complete reply, or `undefined` when more bytes are needed.
   * Throws {@linkcode SmtpProtocolError} on malformed or oversized input.
   */
  next(): SmtpReply | undefined {
    const buffer = this.#buffer;
    while (true) {
      const end = this.#end;
      let lf = this.#scan;
      while (lf < end && buffer[lf] !== LF) lf++;
      if (lf === end) {
        this.#scan = this.#end;
        if (this.#end - this.#start > this.#limits.maxLineLength) {
          throw new SmtpProtocolError(
            `Server reply line is longer than ${this.#limits.maxLineLength} bytes`,
            "command",
          );
        }
        if (this.#start === this.#end) this.#start = this.#end = this.#scan = 0;
        return undefined;
      }
      if (lf + 1 - this.#start > this.#limits.maxLineLength) {
        throw new SmtpProtocolError(
          `Server reply line is longer than ${this.#limits.maxLineLength} bytes`,
          "command",
        );
      }
      const stop = lf > this.#start && buffer[lf - 1] === CR ? lf - 1 : lf;
      const reply = this.#line(this.#start, stop);
      this.#start = this.#scan = lf + 1;
      if (this.#start === this.#end) this.#start = this.#end = this.#scan = 0;
      if (reply) return reply;
    }
  }

  #line(from: number, to: number): SmtpReply | undefined {
    const b = this.#buffer;
    const d0 = digit(b[from]), d1 = digit(b[from + 1]), d2 = digit(b[from + 2]);
    const separator = to - from > 3 ? b[from + 3] : 0x20;
    if (d0 < 2 || d0 > 5 || d1 < 0 || d2 < 0 || (separator !== 0x20 && separator !== 0x2d)) {
      const text = decoder.decode(b.subarray(from, Math.min(to, from + 80)));
      throw new SmtpProtocolError(
        `Malformed server reply line: ${JSON.stringify(text)}`,
        "command",
      );
    }
    const code = d0 * 100 + d1 * 10 + d2;
    if (this.#lines.length > 0 && code !== this.#code) {
      throw new SmtpProtocolError(
        `Server reply mixes codes ${this.#code} and ${code} in one multi-line reply`,
        "command",
      );
    }
    if (this.#lines.length >= this.#limits.maxLines) {
      throw new SmtpProtocolError(
        `Server reply has more than ${this.#limits.maxLines} lines`,
        "command",
      );
    }
    this.#code = code;
    this.#lines.push(to - from > 4 ? decoder.decode(b.subarray(from + 4, to)) : "");
    if (separator === 0x2d) return undefined;
    const lines = this.#lines;
    this.#lines = [];
    return buildReply(code, lines);
  }
}

/** Splits the enhanced status code off the lines that carry it. */
function buildReply(code: number, lines: string[]): SmtpReply {
  const first = parseEnhancedStatus(lines[0]!, code);
  if (!first) return { code, lines };
  const { status } = first;
  const prefix = `${status.class}.${status.subject}.${status.detail}`;
  const stripped = lines.map((line) =>
    line === prefix ? "" : line.startsWith(prefix + " ") ? line.slice(prefix.length + 1) : line
  );
  return { code, enhancedStatus: status, lines: stripped };
}
