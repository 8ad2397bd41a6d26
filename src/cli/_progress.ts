/**
 * A progress bar for large messages: a pass-through stream that counts the bytes the client
 * pulls, and a line on standard error redrawn at most ten times a second.
 *
 * @module
 */

/** Messages smaller than this (estimated) get no progress bar. */
export const PROGRESS_THRESHOLD = 1024 * 1024;

/** Formats a byte count for people: `512 B`, `3.4 kB`, `12.0 MB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(1)} kB`;
  if (bytes < 1_000_000_000) return `${(bytes / 1_000_000).toFixed(1)} MB`;
  return `${(bytes / 1_000_000_000).toFixed(2)} GB`;
}

/**
 * The size of a composed message, estimated from its parts: base64 turns 3 bytes into 4 and
 * adds CRLF every 76 characters; text and headers add a little.
 *
 * @param attachmentBytes The sizes of the attached files.
 * @param textChars The length of the text and HTML bodies and headers, in UTF-16 units.
 * @returns The estimated size in bytes.
 */
export function estimateMessageSize(attachmentBytes: readonly number[], textChars: number): number {
  const base64 = (n: number) => Math.ceil(n / 3) * 4 * 78 / 76;
  return Math.round(
    attachmentBytes.reduce((sum, n) => sum + base64(n) + 300, 0) + textChars * 1.1 + 1000,
  );
}

/** Where the bar is drawn. */
export interface ProgressSink {
  /** Redraws the bar line (the caller adds the carriage return). */
  draw(line: string): void;
  /** Ends the bar: the line stays as is and the next output starts on a new line. */
  finish(line: string): void;
}

/**
 * Wraps `body` in a stream that reports bytes read against an estimated `total`.
 *
 * @param body The message stream.
 * @param total The estimated size in bytes.
 * @param sink Where to draw.
 * @param width The bar's width in characters.
 * @returns The counted stream, and `done()` to draw the final line.
 */
export function withProgress(
  body: ReadableStream<Uint8Array>,
  total: number,
  sink: ProgressSink,
  width = 30,
): { stream: ReadableStream<Uint8Array>; done(ok: boolean): void } {
  let sent = 0;
  let lastDraw = 0;
  let finished = false;
  const line = (final: boolean) => {
    const fraction = final ? 1 : Math.min(sent / Math.max(total, 1), 0.99);
    const filled = Math.round(fraction * width);
    const percent = String(Math.floor(fraction * 100)).padStart(3);
    const size = final ? formatBytes(sent) : `${formatBytes(sent)} of ~${formatBytes(total)}`;
    return `Sending [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${percent}% ${size}`;
  };
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      sent += chunk.byteLength;
      const now = Date.now();
      if (now - lastDraw >= 100) {
        lastDraw = now;
        sink.draw(line(false));
      }
      controller.enqueue(chunk);
    },
  });
  return {
    stream: body.pipeThrough(counter),
    done(ok: boolean) {
      if (finished) return;
      finished = true;
      if (sent === 0) return;
      sink.finish(ok ? line(true) : `${line(false)} (stopped)`);
    },
  };
}
