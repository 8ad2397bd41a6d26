/**
 * {@linkcode TranscriptRecorder}: keeps the SMTP dialogue that a client reports through
 * `onTranscript`, for assertions and for printing when a test fails.
 *
 * @module
 */

import type { TranscriptEvent } from "../options.ts";

/** Options of {@linkcode TranscriptRecorder}. */
export interface TranscriptRecorderOptions {
  /**
   * Whether to keep the client's own notes (`info` events: TLS established, retries, ...).
   * @default {true}
   */
  readonly info?: boolean;
}

const TAGS: Readonly<Record<TranscriptEvent["direction"], string>> = {
  client: "C:",
  server: "S:",
  info: "*",
};

/**
 * Records a client's transcript: pass {@linkcode TranscriptRecorder.onTranscript} as the
 * client's (or pool's) `onTranscript` option. Lines read `C: MAIL FROM:<a@example.com>`,
 * `S: 250 2.1.0 Sender OK` and `* TLS established ...`, with secrets already redacted by the
 * client; timings are left out, so that a transcript can be compared exactly.
 *
 * @example Assert on the dialogue
 * ```ts
 * import { sendMail } from "@postie/smtp";
 * import { MockSmtpServer, TranscriptRecorder } from "@postie/smtp/testing";
 * import assert from "node:assert/strict";
 *
 * await using server = new MockSmtpServer();
 * const transcript = new TranscriptRecorder({ info: false });
 * await sendMail({
 *   hostname: "mx.example.com",
 *   tls: "none",
 *   transport: server.transport,
 *   onTranscript: transcript.onTranscript,
 * }, {
 *   raw: "Subject: Hi\r\n\r\nHello\r\n",
 *   envelope: { from: "a@example.com", to: ["b@example.com"] },
 * });
 * assert.ok(transcript.lines.includes("C: RCPT TO:<b@example.com>"));
 * assert.equal(transcript.lines.at(-1), "S: 221 2.0.0 Bye");
 * ```
 */
export class TranscriptRecorder {
  readonly #info: boolean;
  #events: TranscriptEvent[] = [];

  /**
   * Makes an empty recorder.
   *
   * @param options Which events to keep.
   */
  constructor(options: TranscriptRecorderOptions = {}) {
    this.#info = options.info ?? true;
  }

  /** The callback to give the client as `onTranscript`; it is bound to this recorder. */
  readonly onTranscript = (event: TranscriptEvent): void => {
    if (event.direction === "info" && !this.#info) return;
    this.#events.push(event);
  };

  /** Every event kept so far, in order. */
  get events(): readonly TranscriptEvent[] {
    return this.#events;
  }

  /** Every event kept so far as a line: `C: ...`, `S: ...` or `* ...`. */
  get lines(): readonly string[] {
    return this.#events.map((event) => `${TAGS[event.direction]} ${event.line}`);
  }

  /**
   * The lines of one direction only, without their tag.
   *
   * @param direction `"client"`, `"server"` or `"info"`.
   * @returns The lines, in order.
   */
  linesOf(direction: TranscriptEvent["direction"]): string[] {
    return this.#events.filter((event) => event.direction === direction).map((event) => event.line);
  }

  /**
   * The transcript as text, one line per event, each ending with a line feed.
   *
   * @returns The text (empty when nothing was recorded).
   */
  text(): string {
    return this.lines.map((line) => line + "\n").join("");
  }

  /** Forgets what was recorded. */
  clear(): void {
    this.#events = [];
  }
}
