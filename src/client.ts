/**
 * {@linkcode SmtpClient}: connect, secure, greet, authenticate, send, quit.
 *
 * @module
 */

import { authenticate } from "./auth/mod.ts";
import type { AuthConversation, AuthOptions } from "./auth/types.ts";
import {
  SmtpConnectionError,
  SmtpProtocolError,
  SmtpRecipientsError,
  SmtpReplyError,
  SmtpTimeoutError,
  SmtpTlsError,
  SmtpUnsupportedError,
} from "./errors.ts";
import type { ClientOptions, SendOptions, TlsMode } from "./options.ts";
import { Capabilities } from "./protocol/_capabilities.ts";
import * as commands from "./protocol/_commands.ts";
import { DEFAULT_REPLY_LIMITS } from "./protocol/_reply_reader.ts";
import { Session, type TotalDeadline, totalDeadline, type Wait } from "./protocol/_session.ts";
import { type ResolvedTimeouts, runTransaction, type Turn } from "./protocol/_transaction.ts";
import { envelopeAddress, type Message, needsSmtpUtf8 } from "./mime/mod.ts";
import { type Failure, mayRetry, reportedError } from "./delivery.ts";
import { Outgoing, type PreparedMessage } from "./outgoing.ts";
import { defaultTransport, openFile } from "./transport/default.ts";
import type { Connection, Transport } from "./transport/types.ts";
import type { RawMessage, SendResult, SmtpReply } from "./types.ts";

export { Capabilities } from "./protocol/_capabilities.ts";

/** How many times the client itself sends a message again after it was not sent. */
const CLIENT_RETRIES = 1;

/** How one attempt ended: what the server accepted, or how far it got and why it stopped. */
export type AttemptOutcome =
  | { readonly ok: true; readonly result: SendResult }
  | { readonly ok: false; readonly failure: Failure };

/**
 * The result of a sent message, or the error that `rejectOnPartialFailure` asks for when some
 * recipients refused it (the message was delivered to the others all the same).
 */
export function finishSend(result: SendResult, options: SendOptions): SendResult {
  if (options.rejectOnPartialFailure && result.rejected.length > 0) {
    throw new SmtpRecipientsError(
      `Message sent, but ${result.rejected.length} of ` +
        `${result.accepted.length + result.rejected.length} recipients were refused`,
      result.accepted,
      result.rejected,
    );
  }
  return result;
}

/**
 * One attempt to send `outgoing` over `client`, without the client's own retry: for
 * {@linkcode SmtpPool}, which retries by the same rules on another connection.
 */
export let attemptSend: (
  client: SmtpClient,
  outgoing: Outgoing,
  options: SendOptions,
) => Promise<AttemptOutcome>;

/** Transactions that may have written everything and still await replies on one connection. */
const MAX_TRANSACTIONS_IN_FLIGHT = 32;

const DEFAULT_TIMEOUTS: ResolvedTimeouts = {
  connectMs: 15_000,
  greetingMs: 30_000,
  commandMs: 60_000,
  dataEndMs: 300_000,
  quitMs: 5_000,
  totalMs: 900_000,
};

/** Options after defaults were applied and input was checked. */
interface ResolvedOptions {
  readonly hostname: string;
  readonly port: number;
  readonly tls: TlsMode;
  readonly serverName: string;
  readonly caCerts: readonly string[] | undefined;
  readonly clientCertificate: { readonly cert: string; readonly key: string } | undefined;
  readonly clientName: string | undefined;
  readonly auth: AuthOptions | undefined;
  readonly timeouts: ResolvedTimeouts;
  readonly pipelining: boolean;
  readonly chunking: boolean;
  readonly transport: Transport;
  readonly options: ClientOptions;
}

function defaultPort(tls: TlsMode | undefined): number {
  return tls === "implicit" ? 465 : tls === "none" ? 25 : 587;
}

function checkTimeout(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
    throw new RangeError(`Invalid timeouts.${name}: must be a positive number, got ${value}`);
  }
}

/** Applies defaults and rejects bad input before any network I/O. */
function resolveOptions(options: ClientOptions): ResolvedOptions {
  const { hostname } = options;
  if (typeof hostname !== "string" || hostname.trim() === "") {
    throw new TypeError("Invalid hostname: must be a non-empty string");
  }
  commands.assertNoLineBreak(hostname, "hostname");
  const port = options.port ?? defaultPort(options.tls);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`Invalid port: ${port}`);
  }
  const tls: TlsMode = options.tls ?? (port === 465 ? "implicit" : "starttls");
  if (tls !== "implicit" && tls !== "starttls" && tls !== "none") {
    throw new TypeError(`Invalid tls mode: ${JSON.stringify(tls)}`);
  }
  if (options.clientName !== undefined) checkClientName(options.clientName);
  const auth = options.auth || undefined;
  if (auth && tls === "none" && !(options.allowPlaintextAuth ?? []).includes(hostname)) {
    throw new TypeError(
      `Refusing to authenticate to ${hostname} without TLS: credentials would travel in clear ` +
        `text. Use tls: "starttls" or "implicit", or list the host in allowPlaintextAuth for ` +
        `local testing`,
    );
  }
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  for (const [name, value] of Object.entries(timeouts)) checkTimeout(name, value);
  const serverName = options.tlsOptions?.serverName ?? hostname;
  commands.assertNoLineBreak(serverName, "tlsOptions.serverName");
  return {
    hostname,
    port,
    tls,
    serverName,
    caCerts: options.tlsOptions?.caCerts,
    clientCertificate: options.tlsOptions?.clientCertificate,
    clientName: options.clientName,
    auth,
    timeouts,
    pipelining: options.pipelining ?? true,
    chunking: options.chunking ?? true,
    transport: options.transport ?? defaultTransport,
    options,
  };
}

const DOMAIN =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
const ADDRESS_LITERAL = /^\[(?:\d{1,3}(?:\.\d{1,3}){3}|IPv6:[0-9A-Fa-f:.]+)\]$/;

function checkClientName(name: string): void {
  commands.assertNoLineBreak(name, "clientName");
  if (!DOMAIN.test(name) && !ADDRESS_LITERAL.test(name)) {
    throw new TypeError(
      `Invalid clientName ${JSON.stringify(name)}: must be a domain name or an address literal ` +
        `such as [192.0.2.1]`,
    );
  }
}

/** The EHLO name: the host name when it is a valid domain, else the local address literal. */
function defaultClientName(transport: Transport, connection: Connection): string {
  const host = transport.hostname?.();
  if (host && DOMAIN.test(host)) return host;
  const address = connection.localAddress;
  if (address && address.includes(":")) return `[IPv6:${address}]`;
  if (address && /^\d{1,3}(?:\.\d{1,3}){3}$/.test(address)) return `[${address}]`;
  return "[127.0.0.1]";
}

/**
 * Rejects as soon as `signal` aborts, without waiting for `promise` (a queued send that is
 * aborted leaves the queue at once; when its turn comes it does nothing).
 */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  promise.catch(() => {});
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

const NOTIFY = new Set(["SUCCESS", "FAILURE", "DELAY"]);

/** Throws a `TypeError` or `RangeError` for send options that cannot be used. */
export function checkSendOptions(options: SendOptions): void {
  const dsn = options.dsn;
  if (!dsn) return;
  if (dsn.ret !== undefined && dsn.ret !== "FULL" && dsn.ret !== "HDRS") {
    throw new TypeError(`Invalid dsn.ret: ${JSON.stringify(dsn.ret)}`);
  }
  if (dsn.envid !== undefined) {
    commands.assertNoLineBreak(dsn.envid, "dsn.envid");
    if (commands.encodeXtext(dsn.envid).length > 100) {
      throw new RangeError("Invalid dsn.envid: longer than 100 characters once encoded as xtext");
    }
  }
  if (dsn.notify) {
    const notify: readonly string[] = dsn.notify;
    const valid = notify.length > 0 &&
      (notify.length === 1 && notify[0] === "NEVER" || notify.every((n) => NOTIFY.has(n)));
    if (!valid) throw new TypeError(`Invalid dsn.notify: ${JSON.stringify(notify)}`);
  }
}

function isPositive(reply: SmtpReply): boolean {
  return reply.code >= 200 && reply.code < 300;
}

function isCertificateProblem(error: unknown): boolean {
  const text = String(error instanceof Error ? `${error.message} ${error.cause ?? ""}` : error);
  return /certif|issuer|expired|self.signed|not valid for|UnknownIssuer|NotValidForName|CaUsedAsEndEntity/i
    .test(text);
}

/** Says in words what a certificate failure means and what to do about it. */
function explainCertificateProblem(error: SmtpTlsError, options: ResolvedOptions): string {
  const text = `${error.message} ${String(error.cause ?? "")}`;
  const server = `The certificate of ${options.hostname}:${options.port}`;
  if (/expired|NotValidYet|not yet valid/i.test(text)) {
    return `${server} has expired or is not yet valid`;
  }
  if (/NotValidForName|not valid for|hostname|altnames/i.test(text)) {
    return `${server} is not valid for "${options.serverName}" (set tlsOptions.serverName when ` +
      `connecting by IP address)`;
  }
  if (/CaUsedAsEndEntity/.test(text)) {
    // rustls checks this before trust: adding the certificate to caCerts cannot help.
    return `${server} is a CA certificate (basicConstraints CA:TRUE, what \`openssl req -x509\` ` +
      `makes of a self-signed one by default) presented as the server's own, which Deno's TLS ` +
      `(rustls) refuses even when it is in tlsOptions.caCerts (Node accepts it there); give the ` +
      `server a leaf certificate signed by that CA, or a certificate with basicConstraints CA:FALSE`;
  }
  if (/self.signed/i.test(text)) {
    return `${server} is self-signed (trust it with tlsOptions.caCerts)`;
  }
  return `${server} is not signed by a trusted CA (add the CA with tlsOptions.caCerts)`;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7e) return false;
  return true;
}

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
  #writeTail: Promise<void> = Promise.resolve();
  #readTail: Promise<void> = Promise.resolve();
  #inFlight = new Set<Promise<void>>();
  #quitting: Promise<void> | undefined;

  static {
    attemptSend = (client, outgoing, options) =>
      client.#sendOnce(outgoing, options, totalDeadline(client.#options.timeouts.totalMs));
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
   * @param message A raw RFC 5322 message and its envelope.
   * @param options Abort signal and partial-failure policy.
   * @returns What the server accepted.
   */
  send(message: Message | RawMessage, options: SendOptions = {}): Promise<SendResult> {
    checkSendOptions(options);
    const outgoing = new Outgoing(message, options.envelope, openFile);
    return this.#deliver(outgoing, options);
  }

  /** Attempts until the message is sent or the delivery rules say stop; at most one retry. */
  async #deliver(outgoing: Outgoing, options: SendOptions): Promise<SendResult> {
    const total = totalDeadline(this.#options.timeouts.totalMs);
    try {
      for (let attempt = 0;; attempt++) {
        const outcome = await this.#sendOnce(outgoing, options, total);
        if (outcome.ok) return finishSend(outcome.result, options);
        const { failure } = outcome;
        const retry = attempt < CLIENT_RETRIES && !options.signal?.aborted &&
          mayRetry(failure, outgoing.replayable, "client");
        if (!retry) throw reportedError(failure);
        // The failed attempt's connection is closed already (a 421 or a broken connection).
        this.#session.info(
          `retrying on a new connection after: ${(failure.error as Error).message}`,
        );
      }
    } finally {
      await outgoing.release();
    }
  }

  /** One attempt in its turn; rejects at once when `options.signal` aborts. */
  #sendOnce(
    outgoing: Outgoing,
    options: SendOptions,
    total: TotalDeadline,
  ): Promise<AttemptOutcome> {
    if (this.#quitting) throw new SmtpConnectionError("The client has quit", "command");
    options.signal?.throwIfAborted();
    const scheduled = this.#schedule((turn) => this.#attempt(outgoing, options, turn, total));
    return abortable(scheduled, options.signal);
  }

  async #attempt(
    outgoing: Outgoing,
    options: SendOptions,
    turn: Turn,
    total: TotalDeadline,
  ): Promise<AttemptOutcome> {
    let outcome: AttemptOutcome;
    try {
      options.signal?.throwIfAborted();
      if (this.#session.closed) {
        await turn.ready.catch(() => {});
        // The new connection serves every queued send, so one send's abort does not stop it
        // (the aborted send has left already): the connect timeouts bound it.
        await this.#reconnect(total);
        options.signal?.throwIfAborted();
      }
      const message = await outgoing.prepare(this.#capabilities);
      outcome = await this.#transaction(this.#session, message, options, turn, total).catch(
        (error) => ({ ok: false, failure: { stage: "unsent", error } } as const),
      );
      await outgoing.attempted(outcome.ok ? "terminated" : outcome.failure.stage);
    } catch (error) {
      outcome = { ok: false, failure: { stage: "unsent", error } };
    }
    return outcome;
  }

  async #reconnect(total: TotalDeadline): Promise<void> {
    const { session, capabilities } = await open(this.#options, undefined, total);
    this.#session = session;
    this.#capabilities = capabilities;
  }

  async #transaction(
    session: Session,
    message: PreparedMessage,
    options: SendOptions,
    turn: Turn,
    total: TotalDeadline,
  ): Promise<AttemptOutcome> {
    const caps = this.#capabilities;
    const { body } = message;
    const utf8 = message.smtpUtf8 || needsSmtpUtf8(message.from) ||
      message.to.some(needsSmtpUtf8);
    if (utf8 && !caps.has("SMTPUTF8")) {
      throw new SmtpUnsupportedError(
        "Cannot send to or from an internationalised address: the server does not offer SMTPUTF8",
        "mail",
        "SMTPUTF8",
      );
    }
    const smtpUtf8 = caps.has("SMTPUTF8");
    const from = envelopeAddress(message.from, smtpUtf8);
    const to = message.to.map((address) => envelopeAddress(address, smtpUtf8));
    const anyNonAscii = !isAscii(from) || to.some((address) => !isAscii(address));
    const mailParams: [string, string | undefined][] = [];
    const size = message.size ?? (body instanceof Uint8Array ? body.length : undefined);
    if (size !== undefined && caps.has("SIZE")) {
      const maxSize = caps.maxSize;
      if (maxSize !== undefined && size > maxSize) {
        throw new SmtpUnsupportedError(
          `Message is larger than the server accepts: ${size} bytes, limit ${maxSize}`,
          "mail",
          "SIZE",
        );
      }
      mailParams.push(["SIZE", String(size)]);
    }
    const chunking = this.#options.chunking && caps.has("CHUNKING");
    if (message.binary) {
      if (!chunking || !caps.has("BINARYMIME")) {
        throw new SmtpUnsupportedError(
          "Cannot send a binary MIME message: the server does not offer CHUNKING and BINARYMIME" +
            (caps.has("BINARYMIME") && !this.#options.chunking ? " (chunking is off)" : ""),
          "mail",
          "BINARYMIME",
        );
      }
      mailParams.push(["BODY", "BINARYMIME"]);
    } else if (message.eightBit) {
      if (!caps.has("8BITMIME")) {
        throw new SmtpUnsupportedError(
          "Cannot send a raw message with 8-bit bytes: the server does not offer 8BITMIME " +
            "(encode the message as 7-bit, or compose it and let postie choose the encoding)",
          "mail",
          "8BITMIME",
        );
      }
      mailParams.push(["BODY", "8BITMIME"]);
    }
    if (utf8 || anyNonAscii) mailParams.push(["SMTPUTF8", undefined]);
    if (options.requireTls) {
      if (!caps.has("REQUIRETLS") || !session.connection.tls) {
        throw new SmtpUnsupportedError(
          "Cannot require TLS for this message: the server does not offer REQUIRETLS over TLS",
          "mail",
          "REQUIRETLS",
        );
      }
      mailParams.push(["REQUIRETLS", undefined]);
    }
    const dsn = options.dsn;
    if (dsn && !caps.has("DSN")) {
      throw new SmtpUnsupportedError(
        "Cannot request delivery status notifications: the server does not offer DSN",
        "mail",
        "DSN",
      );
    }
    if (dsn?.ret) mailParams.push(["RET", dsn.ret]);
    if (dsn?.envid) mailParams.push(["ENVID", commands.encodeXtext(dsn.envid)]);
    const rcptParams = (address: string): commands.Parameters => {
      if (!dsn) return [];
      const params: [string, string][] = [];
      if (dsn.notify) params.push(["NOTIFY", dsn.notify.join(",")]);
      if (dsn.orcpt) {
        params.push(["ORCPT", commands.encodeOrcpt(address)]);
      }
      return params;
    };
    const outcome = await runTransaction(session, {
      from,
      to,
      mailParams,
      rcptParams,
      body,
      ownsBody: message.ownsBody,
      keepLineEnds: message.crlfLineEnds,
      binary: message.binary,
    }, {
      turn,
      pipelining: this.#options.pipelining && caps.has("PIPELINING"),
      chunking,
      timeouts: this.#options.timeouts,
      signal: options.signal,
      total,
    });
    if (!outcome.ok) return outcome;
    const envelope = { from: message.from, to: message.to };
    const result = message.messageId
      ? { envelope, messageId: message.messageId, ...outcome.result }
      : { envelope, ...outcome.result };
    return { ok: true, result };
  }

  /**
   * Sends NOOP: checks that the connection is alive.
   *
   * @returns The server's reply.
   */
  noop(): Promise<SmtpReply> {
    return this.#schedule(() => this.#simple("NOOP"), true);
  }

  /**
   * Sends RSET: abandons any transaction in progress.
   */
  async reset(): Promise<void> {
    await this.#schedule(() => this.#simple("RSET"), true);
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
   * Runs `task` in its turn. Tasks write one after another; a pipelined transaction lets the
   * next one write as soon as it has written everything, while its replies are still on the
   * way. `exclusive` tasks wait until every earlier reply was read.
   */
  #schedule<T>(task: (turn: Turn) => Promise<T>, exclusive = false): Promise<T> {
    const previousWrites = this.#writeTail;
    const previousReads = this.#readTail;
    let writesDone!: () => void;
    let readsDone!: () => void;
    this.#writeTail = new Promise<void>((resolve) => writesDone = resolve);
    const finished = new Promise<void>((resolve) => readsDone = resolve);
    this.#readTail = finished;
    return (async () => {
      await previousWrites;
      try {
        if (exclusive) await previousReads;
        while (this.#inFlight.size >= MAX_TRANSACTIONS_IN_FLIGHT) {
          await Promise.race(this.#inFlight);
        }
        const turn: Turn = {
          ready: previousReads,
          resetFirst: this.#inFlight.size > 0,
          writesDone,
        };
        this.#inFlight.add(finished);
        void finished.then(() => this.#inFlight.delete(finished));
        return await task(turn);
      } finally {
        writesDone();
        // Replies are read in order: this turn is over once the earlier ones are too.
        void previousReads.then(readsDone);
      }
    })();
  }

  /**
   * Sends QUIT and closes the connection. Waits at most `timeouts.quitMs` for the server and
   * never throws: whatever the server does, the socket is closed afterwards.
   */
  quit(): Promise<void> {
    this.#quitting ??= this.#schedule(() => quitSession(this.#session, this.#options), true);
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

async function quitSession(session: Session, options: ResolvedOptions): Promise<void> {
  if (session.closed) return;
  try {
    await session.command({ line: "QUIT" }, { phase: "quit", timeoutMs: options.timeouts.quitMs });
  } catch {
    // The server misbehaved or vanished: nothing left to do but close.
  } finally {
    session.close();
  }
}

/** Opens and prepares a session; closes the socket on every failure. */
async function open(
  options: ResolvedOptions,
  signal: AbortSignal | undefined,
  sendTotal?: TotalDeadline,
): Promise<{ session: Session; capabilities: Capabilities }> {
  const { transport, timeouts } = options;
  const ownTotal = totalDeadline(timeouts.totalMs);
  const total = sendTotal && sendTotal.at < ownTotal.at ? sendTotal : ownTotal;
  const connection = await connectTransport(options, signal, total);
  const session = new Session(connection, {
    limits: { ...DEFAULT_REPLY_LIMITS, ...options.options.limits },
    onTranscript: options.options.onTranscript,
  });
  try {
    if (connection.tls) session.info(tlsLine(options, connection), connection.tls);
    const greeting = await readGreeting(session, options, signal, total);
    if (greeting.code !== 220) {
      throw new SmtpReplyError("Server refused the session", "greeting", "(greeting)", greeting);
    }
    const clientName = options.clientName ?? defaultClientName(transport, connection);
    let capabilities = await hello(session, clientName, options, signal, total);

    if (options.tls === "starttls") {
      if (!capabilities.has("STARTTLS")) {
        throw new SmtpUnsupportedError(
          `Server ${options.hostname}:${options.port} does not offer STARTTLS, and tls is ` +
            `"starttls": refusing to continue in clear text (use tls: "implicit" if the port ` +
            `expects TLS from the start)`,
          "starttls",
          "STARTTLS",
        );
      }
      const wait: Wait = { phase: "starttls", timeoutMs: timeouts.commandMs, signal, total };
      const reply = await session.command({ line: "STARTTLS" }, wait);
      if (reply.code !== 220) {
        throw new SmtpReplyError("STARTTLS refused", "starttls", "STARTTLS", reply);
      }
      if (session.buffered > 0) {
        throw new SmtpProtocolError(
          "Server sent data after its STARTTLS reply and before the TLS handshake (possible " +
            "response injection): refusing to continue",
          "starttls",
        );
      }
      const secured = await transport.startTls(session.connection, {
        serverName: options.serverName,
        ...(options.caCerts ? { caCerts: options.caCerts } : {}),
        ...(options.clientCertificate ? { clientCertificate: options.clientCertificate } : {}),
        signal: AbortSignal.any([
          AbortSignal.timeout(remainingMs(timeouts.connectMs, total)),
          ...(signal ? [signal] : []),
        ]),
      }).catch((error) => {
        throw tlsError(error, options, remainingMs(timeouts.connectMs, total), signal);
      });
      session.replaceConnection(secured);
      session.info(tlsLine(options, secured), secured.tls);
      capabilities = await hello(session, clientName, options, signal, total);
    }

    if (options.auth) {
      await authenticateSession(session, capabilities, options, signal, total);
    }
    return { session, capabilities };
  } catch (error) {
    if (!signal?.aborted && endsCleanly(error, session)) {
      // Said, not awaited: the error is reported at once, whatever the server does next.
      await session.write([{ line: "QUIT" }], { phase: "quit", timeoutMs: timeouts.quitMs })
        .catch(() => {});
    }
    session.close();
    if (signal?.aborted) throw signal.reason;
    throw error;
  }
}

/**
 * Whether the session is in step after `error`, so that it can end with QUIT (RFC 5321 asks
 * for it after a refused greeting; servers log a login failure without QUIT as a dropped
 * connection): the server's last word was a final reply other than 421, or the client refused
 * to go on before sending anything more.
 */
function endsCleanly(error: unknown, session: Session): boolean {
  if (session.closed || session.buffered > 0) return false;
  if (error instanceof SmtpReplyError) {
    const { code } = error.reply;
    return code !== 421 && Math.floor(code / 100) !== 3;
  }
  return error instanceof SmtpUnsupportedError;
}

function tlsLine(options: ResolvedOptions, connection: Connection): string {
  const tls = connection.tls ?? {};
  const details = [tls.protocol, tls.cipher, tls.peerSubject].filter(Boolean).join(", ");
  return `TLS established with ${options.serverName}, certificate verified` +
    (details ? ` (${details})` : "");
}

/** `ms`, or less when the operation's total deadline comes sooner. */
function remainingMs(ms: number, total: TotalDeadline): number {
  return Math.max(1, Math.min(ms, Math.round(total.at - performance.now())));
}

async function connectTransport(
  options: ResolvedOptions,
  signal: AbortSignal | undefined,
  total: TotalDeadline,
): Promise<Connection> {
  const { transport } = options;
  const timeoutMs = remainingMs(options.timeouts.connectMs, total);
  const deadline = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([signal, deadline]) : deadline;
  try {
    if (options.tls === "implicit") {
      return await transport.connectTls({
        hostname: options.hostname,
        port: options.port,
        serverName: options.serverName,
        ...(options.caCerts ? { caCerts: options.caCerts } : {}),
        ...(options.clientCertificate ? { clientCertificate: options.clientCertificate } : {}),
        signal: combined,
      });
    }
    return await transport.connect({
      hostname: options.hostname,
      port: options.port,
      signal: combined,
    });
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw tlsError(error, options, timeoutMs, signal);
  }
}

/** Classifies a connect or handshake failure and adds the hint for the usual mistakes. */
function tlsError(
  error: unknown,
  options: ResolvedOptions,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): unknown {
  if (signal?.aborted) return signal.reason;
  if (error instanceof DOMException && error.name === "TimeoutError") {
    return new SmtpTimeoutError(
      `Timed out after ${timeoutMs} ms connecting to ${options.hostname}:${options.port}`,
      "connect",
      timeoutMs,
    );
  }
  if (error instanceof SmtpTlsError && isCertificateProblem(error)) {
    return new SmtpTlsError(`${explainCertificateProblem(error, options)}: ${error.message}`, {
      cause: error,
    });
  }
  if (error instanceof SmtpTlsError && options.tls === "implicit") {
    return new SmtpTlsError(
      `${error.message}. The server may not speak TLS on port ${options.port} before its ` +
        `greeting: port 587 (and 25) usually needs tls: "starttls"`,
      { cause: error },
    );
  }
  return error;
}

async function readGreeting(
  session: Session,
  options: ResolvedOptions,
  signal: AbortSignal | undefined,
  total: TotalDeadline,
): Promise<SmtpReply> {
  try {
    return await session.read({
      phase: "greeting",
      timeoutMs: options.timeouts.greetingMs,
      signal,
      total,
    });
  } catch (error) {
    if (error instanceof SmtpTimeoutError && options.tls !== "implicit") {
      throw new SmtpTimeoutError(
        `${error.message} for the greeting. If port ${options.port} expects TLS from the ` +
          `start (usually port 465), use tls: "implicit"`,
        "greeting",
        error.timeoutMs,
        { cause: error },
      );
    }
    if (error instanceof SmtpProtocolError && options.tls !== "implicit") {
      throw new SmtpProtocolError(
        `${error.message}. If port ${options.port} expects TLS from the start (usually port ` +
          `465), use tls: "implicit"`,
        "greeting",
        { cause: error },
      );
    }
    throw error;
  }
}

/** EHLO, falling back to HELO when the server does not know EHLO. */
async function hello(
  session: Session,
  clientName: string,
  options: ResolvedOptions,
  signal: AbortSignal | undefined,
  total: TotalDeadline,
): Promise<Capabilities> {
  const wait: Wait = { phase: "ehlo", timeoutMs: options.timeouts.commandMs, signal, total };
  const ehlo = commands.ehlo(clientName);
  const reply = await session.command({ line: ehlo }, wait);
  if (isPositive(reply)) return Capabilities.fromEhlo(reply);
  if (reply.code === 500 || reply.code === 502) {
    const helo = commands.helo(clientName);
    const heloReply = await session.command({ line: helo }, wait);
    if (isPositive(heloReply)) {
      return Capabilities.none(heloReply.lines[0]?.split(/\s+/, 1)[0] ?? "");
    }
    throw new SmtpReplyError("Server refused HELO", "ehlo", helo, heloReply);
  }
  throw new SmtpReplyError("Server refused EHLO", "ehlo", ehlo, reply);
}

/** Logs in: picks a mechanism and runs the SASL exchange over the session. */
async function authenticateSession(
  session: Session,
  capabilities: Capabilities,
  options: ResolvedOptions,
  signal: AbortSignal | undefined,
  total: TotalDeadline,
): Promise<void> {
  const auth = options.auth!;
  if (
    !session.connection.tls &&
    !(options.options.allowPlaintextAuth ?? []).includes(options.hostname)
  ) {
    throw new TypeError(
      `Refusing to authenticate to ${options.hostname} without TLS: credentials would travel in ` +
        `clear text`,
    );
  }
  if (capabilities.authMechanisms.length === 0) {
    throw new SmtpUnsupportedError(
      `Server ${options.hostname} does not offer AUTH${
        session.connection.tls ? "" : " (many servers offer it only after STARTTLS)"
      }: remove the credentials or use another port`,
      "auth",
      "AUTH",
    );
  }
  const wait: Wait = { phase: "auth", timeoutMs: options.timeouts.commandMs, signal, total };
  const conversation: AuthConversation = {
    async exchange(line, { secret = false } = {}) {
      const display = secret ? redactAuthLine(line) : line;
      return await session.command({ line, display }, wait);
    },
  };
  await authenticate(conversation, auth, {
    offered: capabilities.authMechanisms,
    initialResponse: true,
    hostname: options.serverName,
    port: options.port,
    ...(signal ? { signal } : {}),
  });
}

/** `AUTH PLAIN dGVzdA==` becomes `AUTH PLAIN [redacted]`; any other secret line `[redacted]`. */
function redactAuthLine(line: string): string {
  const match = /^AUTH\s+(\S+)/i.exec(line);
  return match ? `AUTH ${match[1]} [redacted]` : "[redacted]";
}
