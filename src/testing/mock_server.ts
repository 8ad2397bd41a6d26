/**
 * {@linkcode MockSmtpServer}: an SMTP server for tests that runs in process, in memory (through
 * its {@linkcode MockSmtpServer.transport}) or on a loopback port, records every message it
 * accepts, and can be told to misbehave.
 *
 * @module
 */

import type { ClientOptions } from "../options.ts";
import type { AcceptedConnection, Listener, ServerCertificate } from "../transport/listen.ts";
import type { TlsInfo, Transport } from "../transport/types.ts";
import { type MessageHeaders, parseHeaders } from "./headers.ts";
import { LINE_TOO_LONG, LineReader } from "./_line_reader.ts";
import { type MemoryPeer, MemoryTransport, SIMULATED_TLS } from "./memory_transport.ts";

export type { ServerCertificate } from "../transport/listen.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The longest command line accepted, in bytes (RFC 5321 allows 512, extensions more). */
const MAX_COMMAND_LENGTH = 4096;

/** Extensions the mock server announces in its EHLO reply, each on unless turned off. */
export type MockExtension =
  | "PIPELINING"
  | "SIZE"
  | "8BITMIME"
  | "SMTPUTF8"
  | "CHUNKING"
  | "DSN"
  | "ENHANCEDSTATUSCODES"
  | "STARTTLS";

/** A command (or step) that a {@linkcode FaultRule} applies to. */
export type MockCommand =
  | "CONNECT"
  | "EHLO"
  | "HELO"
  | "STARTTLS"
  | "AUTH"
  | "MAIL"
  | "RCPT"
  | "DATA"
  | "BDAT"
  | "MESSAGE"
  | "RSET"
  | "NOOP"
  | "QUIT";

/**
 * Something to do instead of (or before) the normal answer to a command. Rules are tried in
 * order; the first that matches applies.
 *
 * The `command` is a verb, or one of two steps: `CONNECT` (the greeting) and `MESSAGE` (the
 * reply after the message's content: DATA's final dot, or `BDAT ... LAST`). A `BDAT` rule
 * applies to each chunk's reply, after the chunk was read.
 *
 * @example Refuse one recipient, fail the first delivery with a 421
 * ```ts
 * import type { FaultRule } from "@postie/smtp/testing";
 *
 * const faults: FaultRule[] = [
 *   { command: "RCPT", match: "nobody@example.com", reply: "550 5.1.1 No such user" },
 *   { command: "MESSAGE", reply: "421 4.3.0 Try again later", times: 1 },
 * ];
 * ```
 */
export interface FaultRule {
  /** Which command or step. */
  readonly command: MockCommand;
  /**
   * Only when this matches: for `MAIL` and `RCPT` the address (a string compares without
   * regard to case), for `MESSAGE` the message as text, for other commands the text after the
   * verb. Absent: always.
   */
  readonly match?: string | RegExp;
  /**
   * The reply to send instead of the normal one, e.g. `"550 5.1.1 No such user"`; several
   * lines separated by `\n`. The command is not carried out (a BDAT chunk is still read). After
   * a 421 the server closes the connection.
   */
  readonly reply?: string;
  /** Wait this long first (then reply, drop, or go on as usual). */
  readonly delayMs?: number;
  /** Close the connection without a reply (after the delay, if any). */
  readonly drop?: boolean;
  /**
   * How many times the rule applies, over all connections; then it is spent.
   * @default {Infinity}
   */
  readonly times?: number;
}

/** Options of {@linkcode MockSmtpServer}. */
export interface MockSmtpServerOptions {
  /**
   * The name in the greeting and EHLO reply.
   * @default {"mock.postie.test"}
   */
  readonly hostname?: string;
  /**
   * Accounts for AUTH PLAIN and LOGIN: user name to password. AUTH is announced only when
   * there is at least one.
   * @default {{}}
   */
  readonly users?: Readonly<Record<string, string>>;
  /**
   * Whether MAIL needs a login first (530 otherwise).
   * @default {true when `users` has an account}
   */
  readonly requireAuth?: boolean;
  /**
   * Whether MAIL and AUTH need TLS first (530 otherwise).
   * @default {false}
   */
  readonly requireTls?: boolean;
  /**
   * Extensions to leave out of the EHLO reply (`false`). STARTTLS is announced in memory
   * (simulated) and on a port when a `certificate` is given, until TLS is on.
   * @default {every extension on}
   */
  readonly extensions?: Readonly<Partial<Record<MockExtension, boolean>>>;
  /**
   * The SIZE limit in bytes; a larger message is refused with 552.
   * @default {10485760}
   */
  readonly maxSize?: number;
  /** Replies to change, delays, dropped connections. @default {[]} */
  readonly faults?: readonly FaultRule[];
  /**
   * The certificate for STARTTLS and implicit TLS on a port ({@linkcode MockSmtpServer.listen}).
   * In memory, TLS is simulated and needs none.
   */
  readonly certificate?: ServerCertificate;
}

/** The envelope of a received message, with the parameters of MAIL and RCPT. */
export interface ReceivedEnvelope {
  /** The MAIL FROM address (empty for `<>`). */
  readonly from: string;
  /** The accepted RCPT TO addresses, in order. */
  readonly to: readonly string[];
  /** MAIL FROM parameters by upper-case name, e.g. `{ SIZE: "123", BODY: "8BITMIME" }`; a flag is `true`. */
  readonly mailParameters: Readonly<Record<string, string | true>>;
  /** Each accepted recipient's RCPT TO parameters (e.g. `NOTIFY`, `ORCPT`), in order. */
  readonly recipientParameters: readonly Readonly<Record<string, string | true>>[];
}

/** A message that {@linkcode MockSmtpServer} accepted. */
export interface ReceivedMessage {
  /** Envelope and parameters. */
  readonly envelope: ReceivedEnvelope;
  /** The message as received: dot-stuffing removed, line ends as sent, no final dot. */
  readonly raw: Uint8Array;
  /** `raw` decoded as UTF-8. */
  readonly text: string;
  /** The header section, parsed. */
  readonly headers: MessageHeaders;
  /** How the content came: DATA or BDAT. */
  readonly method: "DATA" | "BDAT";
  /** The TLS session it came over (simulated in memory), or `undefined` in clear text. */
  readonly tls: TlsInfo | undefined;
  /** The login it came under, or `undefined` without AUTH. */
  readonly auth: { readonly mechanism: string; readonly username: string } | undefined;
  /** The name the client gave in EHLO or HELO. */
  readonly clientName: string;
  /** Which connection it came on: 1 for the first the server accepted. */
  readonly connection: number;
}

/** Where {@linkcode MockSmtpServer.listen} listens. */
export interface MockListenOptions {
  /**
   * The address to bind.
   * @default {"127.0.0.1"}
   */
  readonly hostname?: string;
  /**
   * The port; 0 picks a free one.
   * @default {0}
   */
  readonly port?: number;
  /**
   * TLS from the first byte (needs `certificate`); otherwise STARTTLS is offered when there
   * is a certificate.
   * @default {false}
   */
  readonly implicitTls?: boolean;
}

/** The address a listening {@linkcode MockSmtpServer} is bound to. */
export interface MockServerAddress {
  /** The bound address, e.g. `127.0.0.1`. */
  readonly hostname: string;
  /** The bound port. */
  readonly port: number;
}

/** The server's end of a connection, in memory or on a socket. */
interface ServerStream {
  read(): Promise<Uint8Array | null>;
  write(data: Uint8Array): Promise<void>;
  close(): void;
  readonly tls: TlsInfo | undefined;
  /** Writes the 220 reply, then secures the stream; `undefined` where TLS is not available. */
  readonly startTls: ((reply: Uint8Array) => Promise<ServerStream>) | undefined;
}

function memoryStream(peer: MemoryPeer): ServerStream {
  let upgraded = false;
  const stream: ServerStream = {
    read: () => peer.read(),
    write: (data) => peer.write(data),
    close: () => peer.close(),
    get tls() {
      return peer.tls ?? (upgraded ? SIMULATED_TLS : undefined);
    },
    startTls: async (reply) => {
      await peer.write(reply);
      upgraded = true;
      return stream;
    },
  };
  return stream;
}

function socketStream(connection: AcceptedConnection, canStartTls: boolean): ServerStream {
  return {
    read: () => connection.read(),
    write: (data) => connection.write(data),
    close: () => connection.close(),
    tls: connection.tls,
    startTls: canStartTls && !connection.tls
      ? async (reply) => socketStream(await connection.startTls(reply), false)
      : undefined,
  };
}

interface Transaction {
  from: string;
  mailParameters: Record<string, string | true>;
  to: string[];
  recipientParameters: Record<string, string | true>[];
  chunks: Uint8Array[] | undefined;
  chunkBytes: number;
}

/** What a fault rule made of a command. */
type FaultOutcome = "none" | "replied" | "closed";

/**
 * An SMTP server for tests. By default it runs in memory: give its
 * {@linkcode MockSmtpServer.transport} to the client as `transport`, and every connection is
 * served in process with no socket. {@linkcode MockSmtpServer.listen} serves the same on a
 * loopback port (Deno and Node.js), with real STARTTLS or implicit TLS given a certificate.
 *
 * It speaks ESMTP with PIPELINING, SIZE, 8BITMIME, SMTPUTF8, CHUNKING (BDAT), DSN,
 * ENHANCEDSTATUSCODES, STARTTLS, and AUTH PLAIN and LOGIN for the configured users; records
 * every accepted message in {@linkcode MockSmtpServer.messages} (envelope, bytes, headers, TLS,
 * login) before it says 250; and follows {@linkcode FaultRule}s to refuse, fail, delay or drop.
 *
 * In memory, STARTTLS and implicit TLS are simulated: the connection reports TLS, but nothing
 * is encrypted and no certificate is checked.
 *
 * @example Send in memory and look at what arrived
 * ```ts
 * import { sendMail } from "@postie/smtp";
 * import { MockSmtpServer } from "@postie/smtp/testing";
 * import assert from "node:assert/strict";
 *
 * await using server = new MockSmtpServer({
 *   users: { "me@example.com": "secret" },
 *   faults: [{ command: "RCPT", match: "nobody@example.com", reply: "550 5.1.1 No such user" }],
 * });
 * const result = await sendMail({
 *   hostname: "smtp.example.com",
 *   port: 587,
 *   auth: { username: "me@example.com", password: "secret" },
 *   transport: server.transport, // leave out to send for real
 * }, {
 *   from: "me@example.com",
 *   to: ["you@example.com", "nobody@example.com"],
 *   subject: "Hello",
 *   text: "Hi!",
 * });
 * assert.deepEqual(result.rejected.map((r) => r.reply.code), [550]);
 * const [message] = server.messages;
 * assert.deepEqual(message!.envelope.to, ["you@example.com"]);
 * assert.equal(message!.headers.get("Subject"), "Hello");
 * assert.equal(message!.auth?.username, "me@example.com");
 * assert.ok(message!.tls); // simulated STARTTLS
 * ```
 */
export class MockSmtpServer implements AsyncDisposable {
  readonly #closing = new AbortController();
  readonly #config: SessionConfig;
  readonly #faults: { rule: FaultRule; left: number }[];
  readonly #certificate: ServerCertificate | undefined;
  readonly #transport: MemoryTransport;
  readonly #messages: ReceivedMessage[] = [];
  readonly #sessions = new Set<Promise<void>>();
  readonly #streams = new Set<ServerStream>();
  readonly #listeners: Listener[] = [];
  readonly #host: SessionHost;
  #connections = 0;
  #closed: Promise<void> | undefined;

  /**
   * Makes a server; it serves in memory at once, and on a port after
   * {@linkcode MockSmtpServer.listen}.
   *
   * @param options Accounts, extensions, limits, faults and the certificate for a port.
   */
  constructor(options: MockSmtpServerOptions = {}) {
    const users = options.users ?? {};
    const maxSize = options.maxSize ?? 10 * 1024 * 1024;
    if (!Number.isSafeInteger(maxSize) || maxSize < 0) {
      throw new RangeError(`Cannot use maxSize ${options.maxSize}: not a non-negative integer`);
    }
    this.#config = {
      hostname: options.hostname ?? "mock.postie.test",
      users,
      requireAuth: options.requireAuth ?? Object.keys(users).length > 0,
      requireTls: options.requireTls ?? false,
      extensions: options.extensions ?? {},
      maxSize,
      closing: this.#closing.signal,
    };
    this.#faults = (options.faults ?? []).map((rule) => {
      if (rule.reply !== undefined) checkReply(rule.reply);
      return { rule, left: rule.times ?? Infinity };
    });
    this.#certificate = options.certificate;
    const faults = this.#faults;
    const messages = this.#messages;
    const streams = this.#streams;
    this.#host = {
      config: this.#config,
      fault: (command, subject) => findFault(faults, command, subject),
      record(message) {
        messages.push(message);
        return messages.length;
      },
      track(old, stream) {
        streams.delete(old);
        if (stream) streams.add(stream);
      },
    };
    this.#transport = new MemoryTransport({
      onConnection: (peer) => this.#accept(memoryStream(peer)),
    });
  }

  /**
   * The in-memory transport: pass it as the client's `transport` option. Host name and port
   * are then only names; every connection comes here.
   */
  get transport(): Transport {
    return this.#transport;
  }

  /** Every message accepted so far, in order. */
  get messages(): readonly ReceivedMessage[] {
    return this.#messages;
  }

  /** How many connections were accepted so far (in memory and on ports). */
  get connections(): number {
    return this.#connections;
  }

  /** Forgets the messages received so far. */
  clearMessages(): void {
    this.#messages.length = 0;
  }

  /**
   * Starts listening on a loopback port as well. With a `certificate` in the options, STARTTLS
   * is offered (or TLS starts at once with `implicitTls`).
   *
   * @param options Address, port and TLS mode.
   * @returns The address to connect to.
   *
   * @example Listen on a free port
   * ```ts
   * import { sendMail } from "@postie/smtp";
   * import { MockSmtpServer } from "@postie/smtp/testing";
   * import assert from "node:assert/strict";
   *
   * await using server = new MockSmtpServer();
   * const { hostname, port } = await server.listen();
   * await sendMail({ hostname, port, tls: "none" }, {
   *   from: "a@example.com",
   *   to: "b@example.com",
   *   subject: "Over TCP",
   * });
   * assert.equal(server.messages[0]!.headers.get("subject"), "Over TCP");
   * ```
   */
  async listen(options: MockListenOptions = {}): Promise<MockServerAddress> {
    if (this.#closed) throw new TypeError("Cannot listen: the server is closed");
    const implicitTls = options.implicitTls ?? false;
    // Loaded only here: the in-memory server needs no socket.
    const { listen } = await import("../transport/listen.ts");
    const listener = await listen(
      {
        ...(options.hostname !== undefined ? { hostname: options.hostname } : {}),
        ...(options.port !== undefined ? { port: options.port } : {}),
        ...(this.#certificate ? { certificate: this.#certificate } : {}),
        implicitTls,
      },
      (connection) => this.#accept(socketStream(connection, this.#certificate !== undefined)),
    );
    this.#listeners.push(listener);
    return { hostname: listener.hostname, port: listener.port };
  }

  /**
   * Client options that reach this server in memory: `hostname`, `transport` and, unless the
   * `STARTTLS` extension is off, `tls: "starttls"`.
   *
   * @returns Options to spread into the client's.
   */
  clientOptions(): Pick<ClientOptions, "hostname" | "tls" | "transport"> {
    return {
      hostname: this.#config.hostname,
      tls: this.#config.extensions.STARTTLS === false ? "none" : "starttls",
      transport: this.#transport,
    };
  }

  /**
   * Stops listening, closes every connection and waits until every session ended.
   *
   * @returns When all is closed.
   */
  close(): Promise<void> {
    return this.#closed ??= (async () => {
      this.#closing.abort();
      for (const stream of this.#streams) stream.close();
      await Promise.all(this.#listeners.map((listener) => listener.close()));
      await Promise.all(this.#sessions);
    })();
  }

  /** Same as {@linkcode MockSmtpServer.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #accept(stream: ServerStream): void {
    if (this.#closing.signal.aborted) {
      stream.close();
      return;
    }
    const number = ++this.#connections;
    this.#streams.add(stream);
    const session = new Session(this.#host, stream, number).run()
      .catch(() => {})
      .finally(() => {
        this.#sessions.delete(session);
      });
    this.#sessions.add(session);
  }
}

/** What a session needs from its server. */
interface SessionHost {
  readonly config: SessionConfig;
  /** The first fault rule for this command, used up by one. */
  fault(command: MockCommand, subject: string): FaultRule | undefined;
  /** Keeps an accepted message; returns its number. */
  record(message: ReceivedMessage): number;
  /** The stream changed (TLS) or ended. */
  track(old: ServerStream, stream: ServerStream | undefined): void;
}

interface SessionConfig {
  readonly hostname: string;
  readonly users: Readonly<Record<string, string>>;
  readonly requireAuth: boolean;
  readonly requireTls: boolean;
  readonly extensions: Readonly<Partial<Record<MockExtension, boolean>>>;
  readonly maxSize: number;
  readonly closing: AbortSignal;
}

function findFault(
  faults: { rule: FaultRule; left: number }[],
  command: MockCommand,
  subject: string,
): FaultRule | undefined {
  for (const entry of faults) {
    if (entry.rule.command !== command || entry.left <= 0) continue;
    const match = entry.rule.match;
    if (match !== undefined) {
      const matches = typeof match === "string"
        ? match.toLowerCase() === subject.toLowerCase()
        : (match.lastIndex = 0, match.test(subject)); // a /g or /y pattern keeps state
      if (!matches) continue;
    }
    entry.left--;
    return entry.rule;
  }
  return undefined;
}

function checkReply(reply: string): void {
  for (const line of reply.split(/\r?\n/)) {
    if (!/^[2-5]\d\d([ -]|$)/.test(line)) {
      throw new TypeError(`Cannot use fault reply "${reply}": each line must start with a code`);
    }
  }
}

/** `250 2.1.0 Ok` lines with CRLF; several lines get `-` continuations. */
function format(reply: string): Uint8Array {
  const lines = reply.split(/\r?\n/);
  return encoder.encode(
    lines.map((line, i) => {
      const code = line.slice(0, 3);
      const text = line.slice(4);
      return `${code}${i === lines.length - 1 ? " " : "-"}${text}`.trimEnd() + "\r\n";
    }).join(""),
  );
}

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (value: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      resolve(value);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

const PATH = /^(FROM|TO):\s*<([^<>]*)>(.*)$/i;

function parseParameters(text: string): Record<string, string | true> | undefined {
  const parameters: Record<string, string | true> = {};
  for (const part of text.trim().split(/ +/)) {
    if (part === "") continue;
    const match = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:=([!-<>-~\u0080-\u{10ffff}]+))?$/u.exec(part);
    if (!match) return undefined;
    parameters[match[1]!.toUpperCase()] = match[2] ?? true;
  }
  return parameters;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function base64Text(text: string): string | undefined {
  try {
    const binary = atob(text);
    return new TextDecoder("utf-8", { fatal: true }).decode(
      Uint8Array.from(binary, (c) => c.charCodeAt(0)),
    );
  } catch {
    return undefined;
  }
}

/** One connection's dialogue. */
class Session {
  readonly #server: SessionHost;
  readonly #config: SessionConfig;
  readonly #number: number;
  #stream: ServerStream;
  readonly #reader: LineReader;
  #enhanced: boolean;
  #clientName: string | undefined;
  #auth: { mechanism: string; username: string } | undefined;
  #transaction: Transaction | undefined;
  #open = true;

  constructor(server: SessionHost, stream: ServerStream, number: number) {
    this.#server = server;
    this.#config = server.config;
    this.#number = number;
    this.#stream = stream;
    this.#reader = new LineReader(stream);
    this.#enhanced = this.#config.extensions.ENHANCEDSTATUSCODES !== false;
  }

  #has(extension: MockExtension): boolean {
    return this.#config.extensions[extension] !== false;
  }

  /** Sends a built-in reply; the enhanced code goes when ENHANCEDSTATUSCODES is off. */
  async #reply(code: number, enhanced: string, text: string): Promise<void> {
    const status = this.#enhanced && enhanced ? `${enhanced} ` : "";
    await this.#stream.write(encoder.encode(`${code} ${status}${text}\r\n`));
  }

  #close(): void {
    this.#open = false;
    this.#stream.close();
    this.#server.track(this.#stream, undefined);
  }

  /** Applies the first matching fault rule, if any. */
  async #fault(command: MockCommand, subject: string): Promise<FaultOutcome> {
    const rule = this.#server.fault(command, subject);
    if (!rule) return "none";
    if (rule.delayMs !== undefined && rule.delayMs > 0) {
      if (!await sleep(rule.delayMs, this.#config.closing)) {
        this.#close();
        return "closed";
      }
    }
    if (rule.drop) {
      this.#close();
      return "closed";
    }
    if (rule.reply === undefined) return "none";
    await this.#stream.write(format(rule.reply));
    if (rule.reply.startsWith("421")) {
      this.#close();
      return "closed";
    }
    return "replied";
  }

  async run(): Promise<void> {
    try {
      const greeting = await this.#fault("CONNECT", "");
      if (greeting === "closed") return;
      if (greeting === "none") {
        await this.#stream.write(
          encoder.encode(`220 ${this.#config.hostname} ESMTP postie mock\r\n`),
        );
      }
      const refused = greeting === "replied";
      while (this.#open) {
        const line = await this.#reader.line(MAX_COMMAND_LENGTH);
        if (line === null) break;
        if (line === LINE_TOO_LONG) {
          await this.#reply(500, "5.5.2", "Line too long");
          continue;
        }
        const space = line.indexOf(" ");
        const verb = (space === -1 ? line : line.slice(0, space)).toUpperCase();
        const argument = space === -1 ? "" : line.slice(space + 1);
        if (refused && verb !== "QUIT") {
          await this.#reply(503, "5.5.1", "No service");
          continue;
        }
        await this.#command(verb, argument);
      }
    } finally {
      this.#close();
    }
  }

  async #command(verb: string, argument: string): Promise<void> {
    switch (verb) {
      case "EHLO":
      case "HELO":
        return await this.#hello(verb, argument);
      case "STARTTLS":
        return await this.#startTls(argument);
      case "AUTH":
        return await this.#authenticate(argument);
      case "MAIL":
        return await this.#mail(argument);
      case "RCPT":
        return await this.#rcpt(argument);
      case "DATA":
        return await this.#data(argument);
      case "BDAT":
        return await this.#bdat(argument);
      case "RSET":
        if (await this.#fault("RSET", argument) !== "none") return;
        this.#transaction = undefined;
        return await this.#reply(250, "2.0.0", "Ok");
      case "NOOP":
        if (await this.#fault("NOOP", argument) !== "none") return;
        return await this.#reply(250, "2.0.0", "Ok");
      case "QUIT":
        if (await this.#fault("QUIT", argument) !== "none") return;
        await this.#reply(221, "2.0.0", "Bye");
        return this.#close();
      case "VRFY":
        return await this.#reply(252, "2.5.0", "Cannot verify, but will accept the message");
      default:
        return await this.#reply(500, "5.5.2", "Command not recognized");
    }
  }

  async #hello(verb: "EHLO" | "HELO", argument: string): Promise<void> {
    if (argument.trim() === "") return await this.#reply(501, "5.5.4", `Syntax: ${verb} hostname`);
    if (await this.#fault(verb, argument) !== "none") return;
    this.#clientName = argument.trim();
    this.#transaction = undefined;
    const name = this.#config.hostname;
    if (verb === "HELO") {
      this.#enhanced = false;
      return await this.#reply(250, "", `${name} greets ${this.#clientName}`);
    }
    this.#enhanced = this.#has("ENHANCEDSTATUSCODES");
    const lines = [`${name} greets ${this.#clientName}`];
    if (this.#has("PIPELINING")) lines.push("PIPELINING");
    if (this.#has("SIZE")) lines.push(`SIZE ${this.#config.maxSize}`);
    if (this.#has("8BITMIME")) lines.push("8BITMIME");
    if (this.#has("SMTPUTF8")) lines.push("SMTPUTF8");
    if (this.#has("CHUNKING")) lines.push("CHUNKING");
    if (this.#has("DSN")) lines.push("DSN");
    if (this.#enhanced) lines.push("ENHANCEDSTATUSCODES");
    if (this.#canStartTls()) lines.push("STARTTLS");
    if (Object.keys(this.#config.users).length > 0) lines.push("AUTH PLAIN LOGIN");
    await this.#stream.write(format(lines.map((line) => `250 ${line}`).join("\n")));
  }

  #canStartTls(): boolean {
    return this.#has("STARTTLS") && !this.#stream.tls && this.#stream.startTls !== undefined;
  }

  async #startTls(argument: string): Promise<void> {
    if (argument !== "") return await this.#reply(501, "5.5.4", "Syntax: STARTTLS");
    if (!this.#canStartTls()) return await this.#reply(502, "5.5.1", "STARTTLS not available");
    if (await this.#fault("STARTTLS", argument) !== "none") return;
    if (this.#reader.buffered > 0) {
      // A client must wait for the 220 before its handshake (RFC 3207 section 5).
      await this.#reply(501, "5.5.1", "Nothing may follow STARTTLS before the handshake");
      return this.#close();
    }
    const reply = encoder.encode(`220 ${this.#enhanced ? "2.0.0 " : ""}Ready to start TLS\r\n`);
    const old = this.#stream;
    try {
      this.#stream = await old.startTls!(reply);
    } catch {
      return this.#close();
    }
    this.#server.track(old, this.#stream);
    this.#reader.source = this.#stream;
    // RFC 3207: forget everything learnt before the upgrade.
    this.#clientName = undefined;
    this.#auth = undefined;
    this.#transaction = undefined;
  }

  async #authenticate(argument: string): Promise<void> {
    const users = this.#config.users;
    if (Object.keys(users).length === 0) {
      return await this.#reply(502, "5.5.1", "AUTH not available");
    }
    if (!this.#clientName) return await this.#reply(503, "5.5.1", "Say EHLO first");
    if (this.#auth) return await this.#reply(503, "5.5.1", "Already authenticated");
    if (this.#transaction) return await this.#reply(503, "5.5.1", "Not during a transaction");
    if (this.#config.requireTls && !this.#stream.tls) {
      return await this.#reply(530, "5.7.0", "Must issue a STARTTLS command first");
    }
    const [rawMechanism = "", initial] = argument.split(" ");
    const mechanism = rawMechanism.toUpperCase();
    if (await this.#fault("AUTH", argument) !== "none") return;
    let username: string | undefined;
    let password: string | undefined;
    if (mechanism === "PLAIN") {
      const response = initial !== undefined && initial !== "="
        ? initial
        : initial === "="
        ? ""
        : await this.#challenge("");
      if (response === undefined) return;
      const decoded = base64Text(response);
      const parts = decoded?.split("\0");
      if (!parts || parts.length !== 3) {
        return await this.#reply(501, "5.5.2", "Cannot decode the AUTH PLAIN response");
      }
      [, username, password] = parts;
    } else if (mechanism === "LOGIN") {
      const first = initial ?? await this.#challenge("VXNlcm5hbWU6");
      if (first === undefined) return;
      username = base64Text(first);
      const second = await this.#challenge("UGFzc3dvcmQ6");
      if (second === undefined) return;
      password = base64Text(second);
      if (username === undefined || password === undefined) {
        return await this.#reply(501, "5.5.2", "Cannot decode the AUTH LOGIN response");
      }
    } else {
      return await this.#reply(504, "5.5.4", "Unrecognized authentication type");
    }
    if (username !== undefined && Object.hasOwn(users, username) && users[username] === password) {
      this.#auth = { mechanism, username };
      return await this.#reply(235, "2.7.0", "Authentication successful");
    }
    await this.#reply(535, "5.7.8", "Authentication credentials invalid");
  }

  /** Sends a 334 challenge; returns the response, or `undefined` when cancelled or closed. */
  async #challenge(challenge: string): Promise<string | undefined> {
    await this.#stream.write(encoder.encode(`334 ${challenge}\r\n`));
    const line = await this.#reader.line(MAX_COMMAND_LENGTH);
    if (line === null) {
      this.#close();
      return undefined;
    }
    if (line === LINE_TOO_LONG) {
      await this.#reply(500, "5.5.2", "Line too long");
      return undefined;
    }
    if (line === "*") {
      await this.#reply(501, "5.7.0", "Authentication cancelled");
      return undefined;
    }
    return line;
  }

  async #mail(argument: string): Promise<void> {
    const match = PATH.exec(argument);
    const parameters = match ? parseParameters(match[3]!) : undefined;
    if (!match || match[1]!.toUpperCase() !== "FROM" || !parameters) {
      return await this.#reply(501, "5.5.4", "Syntax: MAIL FROM:<address>");
    }
    const address = match[2]!;
    if (await this.#fault("MAIL", address) !== "none") return;
    if (!this.#clientName) return await this.#reply(503, "5.5.1", "Say EHLO first");
    if (this.#transaction) return await this.#reply(503, "5.5.1", "Nested MAIL command");
    if (this.#config.requireTls && !this.#stream.tls) {
      return await this.#reply(530, "5.7.0", "Must issue a STARTTLS command first");
    }
    if (this.#config.requireAuth && !this.#auth) {
      return await this.#reply(530, "5.7.0", "Authentication required");
    }
    const size = parameters.SIZE;
    if (typeof size === "string" && Number(size) > this.#config.maxSize) {
      return await this.#reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
    }
    if (!isAscii(address) && parameters.SMTPUTF8 !== true) {
      return await this.#reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
    }
    this.#transaction = {
      from: address,
      mailParameters: parameters,
      to: [],
      recipientParameters: [],
      chunks: undefined,
      chunkBytes: 0,
    };
    await this.#reply(250, "2.1.0", "Sender OK");
  }

  async #rcpt(argument: string): Promise<void> {
    const match = PATH.exec(argument);
    const parameters = match ? parseParameters(match[3]!) : undefined;
    if (!match || match[1]!.toUpperCase() !== "TO" || !parameters || match[2] === "") {
      return await this.#reply(501, "5.5.4", "Syntax: RCPT TO:<address>");
    }
    const address = match[2]!;
    if (await this.#fault("RCPT", address) !== "none") return;
    const transaction = this.#transaction;
    if (!transaction) return await this.#reply(503, "5.5.1", "Need MAIL command");
    if (!isAscii(address) && transaction.mailParameters.SMTPUTF8 !== true) {
      return await this.#reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
    }
    transaction.to.push(address);
    transaction.recipientParameters.push(parameters);
    await this.#reply(250, "2.1.5", "Recipient OK");
  }

  async #data(argument: string): Promise<void> {
    if (argument !== "") return await this.#reply(501, "5.5.4", "Syntax: DATA");
    if (await this.#fault("DATA", argument) !== "none") return;
    const transaction = this.#transaction;
    if (!transaction) return await this.#reply(503, "5.5.1", "Need MAIL command");
    if (transaction.chunks) return await this.#reply(503, "5.5.1", "DATA after BDAT");
    if (transaction.to.length === 0) return await this.#reply(554, "5.5.1", "No valid recipients");
    await this.#reply(354, "", "End data with <CR><LF>.<CR><LF>");
    const read = await this.#reader.data(this.#config.maxSize);
    if (read === null) return this.#close();
    if (read.tooBig) {
      this.#transaction = undefined;
      return await this.#reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
    }
    await this.#accept(transaction, read.data, "DATA");
  }

  async #bdat(argument: string): Promise<void> {
    const match = /^(\d{1,15})( +LAST)? *$/i.exec(argument);
    if (!match) return await this.#reply(501, "5.5.4", "Syntax: BDAT size [LAST]");
    const size = Number(match[1]);
    const last = match[2] !== undefined;
    const chunk = await this.#reader.bytes(size);
    if (chunk === null) return this.#close();
    if (await this.#fault("BDAT", argument) !== "none") return;
    const transaction = this.#transaction;
    if (!this.#has("CHUNKING")) return await this.#reply(502, "5.5.1", "CHUNKING not available");
    if (!transaction) return await this.#reply(503, "5.5.1", "Need MAIL command");
    if (transaction.to.length === 0) {
      this.#transaction = undefined;
      return await this.#reply(554, "5.5.1", "No valid recipients");
    }
    transaction.chunks ??= [];
    transaction.chunkBytes += size;
    if (transaction.chunkBytes > this.#config.maxSize) {
      this.#transaction = undefined;
      return await this.#reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
    }
    transaction.chunks.push(chunk);
    if (!last) return await this.#reply(250, "2.0.0", `${size} octets received`);
    const data = new Uint8Array(transaction.chunkBytes);
    let offset = 0;
    for (const part of transaction.chunks) {
      data.set(part, offset);
      offset += part.length;
    }
    await this.#accept(transaction, data, "BDAT");
  }

  /** Ends a transaction: the MESSAGE fault rule, or record and 250. */
  async #accept(transaction: Transaction, raw: Uint8Array, method: "DATA" | "BDAT"): Promise<void> {
    this.#transaction = undefined;
    const text = decoder.decode(raw);
    if (await this.#fault("MESSAGE", text) !== "none") return;
    const id = this.#server.record({
      envelope: {
        from: transaction.from,
        to: transaction.to,
        mailParameters: transaction.mailParameters,
        recipientParameters: transaction.recipientParameters,
      },
      raw,
      text,
      headers: parseHeaders(raw),
      method,
      tls: this.#stream.tls,
      auth: this.#auth,
      clientName: this.#clientName ?? "",
      connection: this.#number,
    });
    await this.#reply(250, "2.0.0", `Ok: queued as ${id}`);
  }
}
