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

/**
 * A limit on a whole operation (one send, or opening a connection) that all of its waits
 * share, so that a server answering every wait just in time cannot stretch it without end.
 */
export interface TotalDeadline {
  /** When it runs out, on the `performance.now()` clock. */
  readonly at: number;
  /** Its length in milliseconds (`timeouts.totalMs`). */
  readonly ms: number;
}

/** A total deadline of `ms` milliseconds from now. */
export function totalDeadline(ms: number): TotalDeadline {
  return { at: performance.now() + ms, ms };
}

/** What a wait is for: the phase (for errors) and its time limits. */
export interface Wait {
  readonly phase: SmtpPhase;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
  /** The limit of the whole operation this wait belongs to. */
  readonly total?: TotalDeadline | undefined;
}

const CONNECT_PHASES: ReadonlySet<SmtpPhase> = new Set([
  "connect",
  "tls",
  "greeting",
  "ehlo",
  "starttls",
  "auth",
]);

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
  const now = performance.now();
  const byTotal = wait.total !== undefined && wait.total.at < now + wait.timeoutMs;
  const deadline: Deadline = {
    at: byTotal ? wait.total!.at : now + wait.timeoutMs,
    timeoutMs: wait.timeoutMs,
    controller: new AbortController(),
  };
  deadlines.add(deadline);
  ticker ??= setInterval(tick, Math.max(1, Math.min(TICK_MS, deadline.at - now)));
  const timeout = deadline.controller.signal;
  const signal = wait.signal ? AbortSignal.any([wait.signal, timeout]) : timeout;
  try {
    return await fn(signal);
  } catch (error) {
    if (wait.signal?.aborted) throw wait.signal.reason;
    if (isTimeout(error) || (timeout.aborted && error === timeout.reason)) {
      if (byTotal) {
        throw new SmtpTimeoutError(
          `Timed out ${what}: the ${
            CONNECT_PHASES.has(wait.phase) ? "connection setup" : "send"
          } took longer than timeouts.totalMs (${wait.total!.ms} ms)`,
          wait.phase,
          wait.total!.ms,
        );
      }
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
              throw new SmtpConnectionError(
                this.#aborted
                  ? "Connection closed because another send on it was aborted"
                  : "Connection closed by the server",
                wait.phase,
              );
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
    return this.#classify(error, wait);
  }

  #classify(error: unknown, wait: Wait): unknown {
    if (error instanceof SmtpProtocolError && error.phase !== wait.phase) {
      return new SmtpProtocolError(error.message, wait.phase, { cause: error });
    }
    if (error instanceof SmtpConnectionError) {
      if (error.phase === wait.phase) return error;
      return new SmtpConnectionError(error.message, wait.phase, { cause: error.cause ?? error });
    }
    if (error instanceof SmtpError) return error;
    const reason = this.#aborted
      ? "Connection closed because another send on it was aborted"
      : `Connection failed: ${error instanceof Error ? error.message : String(error)}`;
    return new SmtpConnectionError(reason, wait.phase, { cause: error });
  }
}
