/**
 * {@linkcode SmtpClient}: connect, secure, greet, authenticate, send, quit. The pieces it is
 * made of each live in a file of their own: option checks (`client_options.ts`), opening a
 * session (`session_opening.ts`), TLS explanations (`tls_problems.ts`), MAIL and RCPT
 * parameters (`mail_parameters.ts`), the order of work on the connection (`scheduler.ts`), the
 * loops of one send (`send_loop.ts`), and the delivery rules every retry asks (`delivery.ts`,
 * `outgoing.ts`).
 *
 * @module
 */

import { fileOpener, type ResolvedOptions, resolveOptions } from "./client_options.ts";
import type { Failure } from "./delivery.ts";
import { SmtpConnectionError, SmtpReplyError } from "./errors.ts";
import { mailCommands, transactionInput } from "./mail_parameters.ts";
import type { Message } from "./mime/mod.ts";
import type { ClientOptions, SendOptions } from "./options.ts";
import { Outgoing, type PreparedMessage } from "./outgoing.ts";
import type { Capabilities } from "./protocol/capabilities.ts";
import { type Session, type TotalDeadline, totalDeadline, type Wait } from "./protocol/_session.ts";
import {
  runTransaction,
  type TransactionOutcome,
  type Turn,
  type Written,
} from "./protocol/_transaction.ts";
import { abortable, TurnScheduler } from "./scheduler.ts";
import { type AttemptOutcome, deliver, finishSend, sendToAll, transact } from "./send_loop.ts";
import { isPositive, open, quitSession } from "./session_opening.ts";
import type { Connection } from "./transport/types.ts";
import type { RawMessage, SendResult, SmtpReply } from "./types.ts";

export { Capabilities, type ServerLimits } from "./protocol/capabilities.ts";

/**
 * One attempt to send `outgoing` over `client` (one transaction per batch of recipients, until
 * every recipient is settled or one fails), without the client's own retry: for
 * {@linkcode SmtpPool}, which retries by the same rules on another connection. A result that
 * `rejectOnPartialFailure` refuses rejects with its {@linkcode SmtpRecipientsError}.
 */
export let attemptSend: (
  client: SmtpClient,
  outgoing: Outgoing,
  options: SendOptions,
) => Promise<AttemptOutcome>;

/**
 * {@linkcode SmtpClient.send} of a message checked already (for {@linkcode sendMail}, which
 * checks it before it connects): every attempt, the client's retry included.
 */
export let deliverSend: (
  client: SmtpClient,
  outgoing: Outgoing,
  options: SendOptions,
) => Promise<SendResult>;

/**
 * An SMTP client connection. Connect with {@linkcode SmtpClient.connect}, send any number of
 * messages, then {@linkcode SmtpClient.quit} (or `await using`).
 *
 * @example Send over STARTTLS with a password
 * ```ts
 * import { SmtpClient } from "@postie/smtp";
 * import { MockSmtpServer } from "@postie/smtp/testing";
 * import assert from "node:assert/strict";
 *
 * // A mail server in memory for this example (see @postie/smtp/testing).
 * await using server = new MockSmtpServer({ users: { "me@example.com": "secret" } });
 *
 * await using client = await SmtpClient.connect({
 *   hostname: "smtp.example.com",
 *   port: 587,
 *   auth: { username: "me@example.com", password: "secret" },
 *   transport: server.transport, // leave out to connect for real
 * });
 * const result = await client.send({
 *   raw: "From: me@example.com\r\nTo: you@example.com\r\nSubject: Hi\r\n\r\nHello\r\n",
 *   envelope: { from: "me@example.com", to: ["you@example.com"] },
 * });
 * assert.equal(result.accepted.length, 1);
 * assert.ok(client.tls); // STARTTLS (simulated in memory)
 * ```
 */
export class SmtpClient implements AsyncDisposable {
  #session: Session;
  #capabilities: Capabilities;
  #options: ResolvedOptions;
  #scheduler = new TurnScheduler();
  #quitting: Promise<void> | undefined;
  /** Transactions started on the current connection (MAIL commands written), for MAILMAX. */
  #transactions = 0;

  static {
    attemptSend = async (client, outgoing, options) => {
      const total = totalDeadline(client.#options.timeouts.totalMs);
      const outcome = await client.#sendAll(outgoing, options, total);
      return outcome.ok ? { ok: true, result: finishSend(outcome.result, options) } : outcome;
    };
    deliverSend = (client, outgoing, options) => client.#deliver(outgoing, options);
  }

  private constructor(session: Session, capabilities: Capabilities, options: ResolvedOptions) {
    this.#session = session;
    this.#capabilities = capabilities;
    this.#options = options;
  }

  /**
   * Connects, secures the connection as `options.tls` says, greets the server and logs in.
   *
   * @param options Where and how to connect.
   * @param init `signal` aborts the whole setup; the socket is closed.
   * @returns A ready client.
   */
  static async connect(
    options: ClientOptions,
    init: { signal?: AbortSignal } = {},
  ): Promise<SmtpClient> {
    const resolved = resolveOptions(options);
    const { session, capabilities } = await open(resolved, init.signal);
    return new SmtpClient(session, capabilities, resolved);
  }

  /** What the server offered in its last EHLO reply (after STARTTLS when used). */
  get capabilities(): Capabilities {
    return this.#capabilities;
  }

  /** Whether the connection is still open. */
  get connected(): boolean {
    return !this.#session.closed;
  }

  /** TLS details of the connection, when it is encrypted. */
  get tls(): Connection["tls"] {
    return this.#session.connection.tls;
  }

  /**
   * Sends one message. Concurrent calls are queued and run one after another.
   *
   * Resolves with the accepted and rejected recipients when at least one was accepted;
   * rejects with {@linkcode SmtpRecipientsError} when none was (nothing is sent then).
   *
   * Recipient limits: when the server takes fewer recipients per transaction than the message
   * has (it announces `LIMITS RCPTMAX=n`, or answers "452 4.5.3 too many recipients"), the
   * message goes to the rest in further transactions on the same connection, in turn after
   * sends already queued, with the same bytes (one Message-ID), each recipient once; the
   * result merges them. When a later transaction fails, the error's `accepted` lists the
   * recipients that have the message already. With `LIMITS MAILMAX=m`, the client ends the
   * connection with QUIT before the (m+1)-th transaction and connects again.
   *
   * @param message A raw RFC 5322 message and its envelope.
   * @param options Abort signal and partial-failure policy.
   * @returns What the server accepted.
   */
  send(message: Message | RawMessage, options: SendOptions = {}): Promise<SendResult> {
    const openFile = fileOpener(this.#options.options);
    return this.#deliver(Outgoing.of(message, options, this.#options.dkim, openFile), options);
  }

  /** Every attempt of a send, the client's own retry included (`send_loop.ts`). */
  #deliver(outgoing: Outgoing, options: SendOptions): Promise<SendResult> {
    const total = totalDeadline(this.#options.timeouts.totalMs);
    return deliver(
      outgoing,
      options,
      () => this.#sendAll(outgoing, options, total),
      (line) => this.#session.info(line),
    );
  }

  /** One attempt: transaction after transaction, each in its turn, until all are settled. */
  #sendAll(
    outgoing: Outgoing,
    options: SendOptions,
    total: TotalDeadline,
  ): Promise<AttemptOutcome> {
    return sendToAll(outgoing, () => this.#sendOnce(outgoing, options, total));
  }

  /** One transaction in its turn; rejects at once when `options.signal` aborts. */
  #sendOnce(
    outgoing: Outgoing,
    options: SendOptions,
    total: TotalDeadline,
  ): Promise<Failure | undefined> {
    if (this.#quitting) throw new SmtpConnectionError("The client has quit", "command");
    options.signal?.throwIfAborted();
    const scheduled = this.#scheduler.pipelined((turn) =>
      this.#attempt(outgoing, options, turn, total)
    );
    return abortable(scheduled, options.signal);
  }

  /**
   * One transaction, handed back once it has written everything: the rest of it settles the
   * recipients it was given, or ends the send.
   */
  async #attempt(
    outgoing: Outgoing,
    options: SendOptions,
    turn: Turn,
    total: TotalDeadline,
  ): Promise<Written<Failure | undefined>> {
    try {
      options.signal?.throwIfAborted();
      const mailMax = this.#capabilities.limits.mailMax;
      if (this.#session.closed || (mailMax !== undefined && this.#transactions >= mailMax)) {
        turn = await this.#renew(turn, total);
        options.signal?.throwIfAborted();
      }
      return await transact(
        outgoing,
        this.#capabilities,
        (message, batch) => this.#transaction(this.#session, message, batch, options, turn, total),
      );
    } catch (error) {
      return { rest: Promise.resolve({ stage: "unsent", error }) };
    }
  }

  /**
   * A new connection for this turn, once every earlier reply was read: the old one is closed
   * already, or has carried as many transactions as the server allows (`LIMITS MAILMAX`) and
   * ends with QUIT. It serves every queued send, so one send's abort does not stop it (the
   * aborted send has left already): the connect timeouts bound it.
   */
  async #renew(turn: Turn, total: TotalDeadline): Promise<Turn> {
    await turn.ready.catch(() => {});
    if (!this.#session.closed) {
      const max = this.#capabilities.limits.mailMax;
      this.#session.info(`LIMITS MAILMAX=${max} reached: reconnecting for the next transaction`);
      await quitSession(this.#session, this.#options);
    }
    await this.#reconnect(total);
    // Nothing is outstanding on the new connection.
    return { ...turn, resetFirst: false };
  }

  async #reconnect(total: TotalDeadline): Promise<void> {
    const { session, capabilities } = await open(this.#options, undefined, total);
    this.#session = session;
    this.#capabilities = capabilities;
    this.#transactions = 0;
  }

  /**
   * Sends `message` to the recipients at `batch` (positions in `message.to`); throws when the
   * server lacks what the message needs (nothing was written then).
   */
  #transaction(
    session: Session,
    message: PreparedMessage,
    batch: readonly number[],
    options: SendOptions,
    turn: Turn,
    total: TotalDeadline,
  ): Promise<Written<TransactionOutcome>> {
    const caps = this.#capabilities;
    const plan = mailCommands(message, caps, {
      chunking: this.#options.chunking,
      tls: session.connection.tls !== undefined,
    }, options);
    this.#transactions++;
    return runTransaction(session, transactionInput(plan, message, batch), {
      turn,
      pipelining: this.#options.pipelining && caps.has("PIPELINING"),
      chunking: plan.chunking,
      lmtp: this.#options.protocol === "lmtp",
      timeouts: this.#options.timeouts,
      signal: options.signal,
      total,
      beforeTerminator: options.beforeTerminator,
    });
  }

  /**
   * Sends NOOP: checks that the connection is alive.
   *
   * @returns The server's reply.
   */
  noop(): Promise<SmtpReply> {
    return this.#scheduler.exclusive(() => this.#simple("NOOP"));
  }

  /**
   * Sends RSET: abandons any transaction in progress.
   */
  async reset(): Promise<void> {
    await this.#scheduler.exclusive(() => this.#simple("RSET"));
  }

  async #simple(command: string): Promise<SmtpReply> {
    this.#assertUsable();
    const wait: Wait = { phase: "command", timeoutMs: this.#options.timeouts.commandMs };
    const reply = await this.#session.command({ line: command }, wait);
    if (!isPositive(reply)) {
      throw new SmtpReplyError(`${command} failed`, "command", command, reply);
    }
    return reply;
  }

  #assertUsable(): void {
    if (this.#quitting || this.#session.closed) {
      throw new SmtpConnectionError("The connection is closed", "command");
    }
  }

  /**
   * Sends QUIT and closes the connection. Waits at most `timeouts.quitMs` for the server and
   * never throws: whatever the server does, the socket is closed afterwards.
   */
  quit(): Promise<void> {
    this.#quitting ??= this.#scheduler.exclusive(() => quitSession(this.#session, this.#options));
    return this.#quitting;
  }

  /** Closes the connection now, without QUIT. Idempotent. */
  close(): void {
    this.#session.close();
  }

  /** `await using` support: QUIT and close. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.quit();
  }
}
