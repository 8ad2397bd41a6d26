/**
 * The session: one {@linkcode Connection}, a {@linkcode ReplyReader} and the deadlines around
 * every wait. Commands go out as lines, replies come back in order (pipelining is a matter of
 * writing several lines before reading their replies).
 *
 * @module
 */

import {
  SmtpConnectionError,
  SmtpError,
  type SmtpPhase,
  SmtpProtocolError,
  SmtpTimeoutError,
} from "../errors.ts";
import type { TranscriptEvent } from "../options.ts";
import type { Connection, TlsInfo } from "../transport/types.ts";
import type { SmtpReply } from "../types.ts";
import { ReplyReader, type ReplyReaderLimits } from "./_reply_reader.ts";

const encoder = new TextEncoder();

/** A command line to write, and how it appears in the transcript. */
export interface CommandLine {
  /** The line without CRLF. */
  readonly line: string;
  /** What the transcript shows instead of `line` (for secrets). */
  readonly display?: string;
}

/** Settings of a session. */
export interface SessionOptions {
  /** Bounds on replies. */
  readonly limits: ReplyReaderLimits;
  /** Receives the dialogue. */
  readonly onTranscript?: ((event: TranscriptEvent) => void) | undefined;
}

/** What a wait is for: the phase (for errors) and its time limit. */
export interface Wait {
  readonly phase: SmtpPhase;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
  /** True when the message was completely sent and only its reply is awaited. */
  readonly outcomeUnknownOnLoss?: boolean;
}

/**
 * The first word of a command as errors show it, taken from its redacted form: the first word
 * of a secret line (an AUTH response) is the secret itself.
 */
function shownName(command: CommandLine): string {
  return (command.display ?? command.line).split(" ", 1)[0]!;
}

function isTimeout(error: unknown): boolean {
  return error instanceof DOMException && error.name === "TimeoutError";
}

/** A wait in progress: aborted by the shared ticker once `at` has passed. */
interface Deadline {
  readonly at: number;
  readonly timeoutMs: number;
  readonly controller: AbortController;
}

/**
 * The deadlines of every wait in progress, checked by one shared timer that runs only while
 * there are any. A timer per wait (`AbortSignal.timeout()`) would live on after its wait until
 * it fired, minutes later: thousands of messages would keep thousands of them in memory.
 */
const deadlines = new Set<Deadline>();
let ticker: ReturnType<typeof setInterval> | undefined;
/** How often deadlines are checked: a wait times out at most this much late. */
const TICK_MS = 20;

function tick(): void {
  const now = performance.now();
  for (const deadline of deadlines) {
    if (now < deadline.at) continue;
    deadlines.delete(deadline);
    deadline.controller.abort(
      new DOMException(`Timed out after ${deadline.timeoutMs} ms`, "TimeoutError"),
    );
  }
  stopTickerIfIdle();
}

function stopTickerIfIdle(): void {
  if (deadlines.size > 0 || ticker === undefined) return;
  clearInterval(ticker);
  ticker = undefined;
}

/** Runs `fn` with a signal that aborts on the caller's signal or after `timeoutMs`. */
export async function withDeadline<T>(
  wait: Wait,
  what: string,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const deadline: Deadline = {
    at: performance.now() + wait.timeoutMs,
    timeoutMs: wait.timeoutMs,
    controller: new AbortController(),
  };
  deadlines.add(deadline);
  ticker ??= setInterval(tick, Math.min(TICK_MS, wait.timeoutMs));
  const timeout = deadline.controller.signal;
  const signal = wait.signal ? AbortSignal.any([wait.signal, timeout]) : timeout;
  try {
    return await fn(signal);
  } catch (error) {
    if (wait.signal?.aborted) throw wait.signal.reason;
    if (isTimeout(error) || (timeout.aborted && error === timeout.reason)) {
      throw new SmtpTimeoutError(
        `Timed out after ${wait.timeoutMs} ms ${what}`,
        wait.phase,
        wait.timeoutMs,
      );
    }
    throw error;
  } finally {
    deadlines.delete(deadline);
    stopTickerIfIdle();
  }
}

/**
 * Connection errors caused by the abort of another send pipelined on the same connection: the
 * message they belong to was not completely sent, so sending it again cannot duplicate it.
 */
const collateral = new WeakSet<object>();

/** True when `error` comes from another send's abort and the message may be sent again. */
export function isCollateral(error: unknown): boolean {
  return typeof error === "object" && error !== null && collateral.has(error);
}

/** One SMTP conversation over one connection. */
export class Session {
  #connection: Connection;
  #reader: ReplyReader;
  #limits: ReplyReaderLimits;
  #onTranscript: ((event: TranscriptEvent) => void) | undefined;
  #started = performance.now();
  /** Set when a caller's abort closed the connection. */
  #aborted = false;

  constructor(connection: Connection, options: SessionOptions) {
    this.#connection = connection;
    this.#limits = options.limits;
    this.#reader = new ReplyReader(options.limits);
    this.#onTranscript = options.onTranscript;
  }

  /** The current connection. */
  get connection(): Connection {
    return this.#connection;
  }

  /** Whether the connection is closed. */
  get closed(): boolean {
    return this.#connection.closed;
  }

  /** Bytes received beyond the replies returned so far. */
  get buffered(): number {
    return this.#reader.buffered;
  }

  /** Writes a note to the transcript. */
  info(line: string, tls?: TlsInfo): void {
    this.#emit("info", line, tls);
  }

  /** Writes a command line to the transcript that was sent as part of a larger write. */
  logCommand(line: string): void {
    this.#emit("client", line);
  }

  #emit(direction: TranscriptEvent["direction"], line: string, tls?: TlsInfo): void {
    if (!this.#onTranscript) return;
    const elapsedMs = Math.round((performance.now() - this.#started) * 10) / 10;
    this.#onTranscript(tls ? { direction, line, elapsedMs, tls } : { direction, line, elapsedMs });
  }

  /** Continues over a new connection (after the TLS upgrade), with a fresh reader. */
  replaceConnection(connection: Connection): void {
    this.#connection = connection;
    this.#reader = new ReplyReader(this.#limits);
  }

  /** Closes the connection now. */
  close(): void {
    this.#connection.close();
  }

  /** Writes command lines in one write. */
  async write(commands: readonly CommandLine[], wait: Wait): Promise<void> {
    let text = "";
    for (const command of commands) {
      text += command.line + "\r\n";
      if (this.#onTranscript) this.#emit("client", command.display ?? command.line);
    }
    await this.writeBytes(encoder.encode(text), wait);
  }

  /** Writes raw bytes (message data). */
  async writeBytes(bytes: Uint8Array, wait: Wait): Promise<void> {
    try {
      await withDeadline(
        wait,
        "writing to the server",
        (signal) => this.#connection.write(bytes, signal),
      );
    } catch (error) {
      throw this.#fail(error, wait);
    }
  }

  /**
   * Sends one command and reads its reply. Used only when no other reply is outstanding, so
   * bytes already waiting are a reply nobody asked for: the session would go out of step.
   */
  async command(command: CommandLine, wait: Wait): Promise<SmtpReply> {
    if (this.#reader.buffered > 0) {
      throw this.#fail(
        new SmtpProtocolError(
          `Server sent a reply before ${shownName(command)} was sent: refusing to ` +
            `continue out of step`,
          wait.phase,
        ),
        wait,
      );
    }
    await this.write([command], wait);
    return await this.read(wait);
  }

  /** Reads the next reply. */
  async read(wait: Wait): Promise<SmtpReply> {
    try {
      let reply = this.#reader.next();
      if (!reply) {
        reply = await withDeadline(wait, "waiting for the server's reply", async (signal) => {
          while (true) {
            const chunk = await this.#connection.read(signal);
            if (chunk === null) {
              const outcomeUnknown = wait.outcomeUnknownOnLoss ?? false;
              if (this.#aborted) {
                const error = new SmtpConnectionError(
                  "Connection closed because another send on it was aborted",
                  wait.phase,
                  { outcomeUnknown },
                );
                if (!outcomeUnknown) collateral.add(error);
                throw error;
              }
              throw new SmtpConnectionError("Connection closed by the server", wait.phase, {
                outcomeUnknown,
              });
            }
            this.#reader.push(chunk);
            const next = this.#reader.next();
            if (next) return next;
          }
        });
      }
      if (this.#onTranscript) {
        const { code, lines } = reply;
        const status = reply.enhancedStatus;
        const prefix = status ? ` ${status.class}.${status.subject}.${status.detail}` : "";
        lines.forEach((line, i) =>
          this.#emit(
            "server",
            `${code}${i === lines.length - 1 ? " " : "-"}${prefix.slice(1)}${
              prefix && line ? " " : ""
            }${line}`.trimEnd(),
          )
        );
      }
      return reply;
    } catch (error) {
      throw this.#fail(error, wait);
    }
  }

  /** Closes the connection and turns `error` into the right error for this wait. */
  #fail(error: unknown, wait: Wait): unknown {
    this.#connection.close();
    if (wait.signal?.aborted && error === wait.signal.reason) {
      this.#aborted = true;
      return error;
    }
    const result = this.#classify(error, wait);
    if (this.#aborted && result instanceof SmtpConnectionError && !result.outcomeUnknown) {
      collateral.add(result);
    }
    return result;
  }

  #classify(error: unknown, wait: Wait): unknown {
    if (isCollateral(error)) return error;
    if (error instanceof SmtpProtocolError && error.phase !== wait.phase) {
      return new SmtpProtocolError(error.message, wait.phase, { cause: error });
    }
    if (error instanceof SmtpConnectionError) {
      if (
        error.phase === wait.phase &&
        error.outcomeUnknown === (wait.outcomeUnknownOnLoss ?? false)
      ) {
        return error;
      }
      return new SmtpConnectionError(error.message, wait.phase, {
        cause: error.cause ?? error,
        outcomeUnknown: wait.outcomeUnknownOnLoss ?? false,
      });
    }
    if (error instanceof SmtpError) return error;
    return new SmtpConnectionError(
      `Connection failed: ${error instanceof Error ? error.message : String(error)}`,
      wait.phase,
      { cause: error, outcomeUnknown: wait.outcomeUnknownOnLoss ?? false },
    );
  }
}
