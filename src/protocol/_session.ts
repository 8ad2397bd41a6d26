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
import { concat, totalLength } from "../_bytes.ts";
import { ReplyReader, type ReplyReaderLimits } from "./_reply_reader.ts";
import {
  arm,
  Deadline,
  disarm,
  holdTimer,
  releaseTimer,
  stopTimerIfIdle,
  type Wait,
} from "./_deadlines.ts";

export { type TotalDeadline, totalDeadline, type Wait } from "./_deadlines.ts";

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

/** Below this many bytes, parts are joined for one write rather than written vectored. */
const JOIN_BELOW = 16 * 1024;

/** One SMTP conversation over one connection. */
export class Session {
  #connection: Connection;
  #reader: ReplyReader;
  #limits: ReplyReaderLimits;
  #onTranscript: ((event: TranscriptEvent) => void) | undefined;
  #started = performance.now();
  /** Set when a caller's abort closed the connection. */
  #aborted = false;
  /**
   * The one signal every read and write of the session carries: it aborts when a wait runs out
   * of time or a caller aborts, and the connection closes with it. One per session, not one
   * per wait: after it aborted the session is over.
   */
  #stop = new AbortController();
  #readDeadline: Deadline;
  #writeDeadline: Deadline;
  #writes = 0;

  constructor(connection: Connection, options: SessionOptions) {
    this.#connection = connection;
    this.#limits = options.limits;
    this.#reader = new ReplyReader(options.limits);
    this.#onTranscript = options.onTranscript;
    const expire = (deadline: Deadline) =>
      this.#end(new DOMException(`Timed out after ${deadline.timeoutMs} ms`, "TimeoutError"));
    this.#readDeadline = new Deadline(expire);
    this.#writeDeadline = new Deadline(expire);
  }

  /** Aborts every wait of the session with `reason` and closes the connection. */
  #end(reason: unknown): void {
    if (!this.#stop.signal.aborted) this.#stop.abort(reason);
    this.#connection.close();
    stopTimerIfIdle();
  }

  /** Starts a wait's deadline: the session's own one, or a fresh one when that is taken. */
  #begin(wait: Wait, own: Deadline): Deadline {
    const deadline = own.active ? new Deadline(own.onExpire) : own;
    arm(deadline, wait);
    return deadline;
  }

  /**
   * With a caller's signal, the listener that ends the session when it aborts (at once when it
   * has aborted already); to be removed when the wait is over.
   */
  #watch(signal: AbortSignal | undefined): (() => void) | undefined {
    if (!signal) return undefined;
    const onAbort = () => {
      this.#aborted = true;
      this.#end(signal.reason);
    };
    if (signal.aborted) {
      onAbort();
      return undefined;
    }
    signal.addEventListener("abort", onAbort, { once: true });
    return onAbort;
  }

  /** Ends a wait started by {@linkcode #begin} and {@linkcode #watch}. */
  #finish(wait: Wait, deadline: Deadline, onAbort: (() => void) | undefined): void {
    disarm(deadline);
    if (onAbort) wait.signal!.removeEventListener("abort", onAbort);
    // A wait that failed closed the connection: no timer stays behind for it.
    if (this.#connection.closed) stopTimerIfIdle();
  }

  /** The current connection. */
  get connection(): Connection {
    return this.#connection;
  }

  /** Whether the connection is closed. */
  get closed(): boolean {
    return this.#connection.closed;
  }

  /**
   * How many writes the session has begun. A transaction that handed over its turn compares it
   * with the count it left to know whether a later transaction has written since.
   */
  get writes(): number {
    return this.#writes;
  }

  /** Bytes received beyond the replies returned so far. */
  get buffered(): number {
    return this.#reader.buffered;
  }

  /**
   * Keeps the deadline timer running between the waits of one operation (a transaction writes,
   * then reads), instead of stopping and starting it after each; {@linkcode release} ends it.
   */
  hold(): void {
    holdTimer();
  }

  /** Ends a {@linkcode hold}. */
  release(): void {
    releaseTimer();
    if (this.#connection.closed) stopTimerIfIdle();
  }

  /** Writes a note to the transcript. */
  info(line: string, tls?: TlsInfo): void {
    this.#emit("info", line, tls);
  }

  /** Whether a transcript is kept (so that callers build its lines only then). */
  get transcribing(): boolean {
    return this.#onTranscript !== undefined;
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

  /** Closes the connection now (and the deadline timer, when no other session needs it). */
  close(): void {
    this.#connection.close();
    stopTimerIfIdle();
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

  /**
   * Writes raw bytes (message data): one array, or several that go out one after another
   * (with one vectored write when the connection has it, else joined).
   */
  async writeBytes(bytes: Uint8Array | readonly Uint8Array[], wait: Wait): Promise<void> {
    this.#writes++;
    const deadline = this.#begin(wait, this.#writeDeadline);
    const onAbort = this.#watch(wait.signal);
    try {
      const connection = this.#connection;
      const signal = this.#stop.signal;
      if (bytes instanceof Uint8Array) await connection.write(bytes, signal);
      else if (connection.writev && bytes.length > 1 && totalLength(bytes) >= JOIN_BELOW) {
        await connection.writev(bytes, signal);
      } else await connection.write(concat(bytes), signal);
    } catch (error) {
      throw this.#fail(error, wait, deadline, "writing to the server");
    } finally {
      this.#finish(wait, deadline, onAbort);
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
    let reply: SmtpReply | undefined;
    try {
      reply = this.#reader.next();
    } catch (error) {
      throw this.#fail(error, wait);
    }
    reply ??= await this.#receive(wait);
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
  }

  /** Reads from the connection until a whole reply has arrived. */
  async #receive(wait: Wait): Promise<SmtpReply> {
    const deadline = this.#begin(wait, this.#readDeadline);
    const onAbort = this.#watch(wait.signal);
    const signal = this.#stop.signal;
    try {
      while (true) {
        const chunk = await this.#connection.read(signal);
        if (chunk === null) {
          // A connection that ends its reads when closed, rather than failing them with the
          // signal's reason: the session's own end closed it, not the server.
          if (signal.aborted) throw signal.reason;
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
    } catch (error) {
      throw this.#fail(error, wait, deadline, "waiting for the server's reply");
    } finally {
      this.#finish(wait, deadline, onAbort);
    }
  }

  /**
   * Closes the connection and turns `error` into the right error for this wait: the caller's
   * abort reason, a timeout when its own deadline passed, or a connection error (when the session
   * ended for another wait: another send's abort, or a timeout of the other direction).
   */
  #fail(error: unknown, wait: Wait, deadline?: Deadline, what?: string): unknown {
    this.#connection.close();
    if (wait.signal?.aborted) {
      this.#aborted = true;
      return wait.signal.reason;
    }
    const stop = this.#stop.signal;
    const endedElsewhere = stop.aborted && error === stop.reason;
    if (deadline && (deadline.expired || (isTimeout(error) && !endedElsewhere))) {
      if (deadline.byTotal) {
        return new SmtpTimeoutError(
          `Timed out ${what}: the ${
            CONNECT_PHASES.has(wait.phase) ? "connection setup" : "send"
          } took longer than timeouts.totalMs (${wait.total!.ms} ms)`,
          wait.phase,
          wait.total!.ms,
        );
      }
      return new SmtpTimeoutError(
        `Timed out after ${wait.timeoutMs} ms ${what}`,
        wait.phase,
        wait.timeoutMs,
      );
    }
    if (endedElsewhere) {
      return new SmtpConnectionError(
        this.#aborted
          ? "Connection closed because another send on it was aborted"
          : `Connection closed after another wait on it ended: ${
            error instanceof Error ? error.message : String(error)
          }`,
        wait.phase,
      );
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
