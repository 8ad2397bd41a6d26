/**
 * One SMTP session of {@linkcode MockSmtpServer}: the ESMTP state machine over a stream in
 * memory or on a socket, its fault rules and what it records.
 *
 * @module
 */

import { parseHeaders } from "./headers.ts";
import { LINE_TOO_LONG, LineReader } from "./_line_reader.ts";
import { type FaultOutcome, format, sleep } from "./_mock_faults.ts";
import type { ServerStream } from "./_mock_stream.ts";
import type { FaultRule, MockCommand, MockExtension, ReceivedMessage } from "./mock_types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The longest command line accepted, in bytes (RFC 5321 allows 512, extensions more). */
const MAX_COMMAND_LENGTH = 4096;

interface Transaction {
  from: string;
  mailParameters: Record<string, string | true>;
  to: string[];
  recipientParameters: Record<string, string | true>[];
  chunks: Uint8Array[] | undefined;
  chunkBytes: number;
}

/** What a session needs from its server. */
export interface SessionHost {
  readonly config: SessionConfig;
  /** The first fault rule for this command, used up by one. */
  fault(command: MockCommand, subject: string): FaultRule | undefined;
  /** Keeps an accepted message; returns its number. */
  record(message: ReceivedMessage): number;
  /** The stream changed (TLS) or ended. */
  track(old: ServerStream, stream: ServerStream | undefined): void;
}

export interface SessionConfig {
  readonly hostname: string;
  readonly users: Readonly<Record<string, string>>;
  readonly requireAuth: boolean;
  readonly requireTls: boolean;
  readonly extensions: Readonly<Partial<Record<MockExtension, boolean>>>;
  readonly maxSize: number;
  readonly closing: AbortSignal;
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
export class Session {
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
