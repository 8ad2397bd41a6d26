/**
 * {@linkcode MockSmtpServer}: an SMTP server for tests that runs in process, in memory (through
 * its {@linkcode MockSmtpServer.transport}) or on a loopback port, records every message it
 * accepts, and can be told to misbehave.
 *
 * @module
 */

import type { ClientOptions } from "../options.ts";
import type { Listener, ServerCertificate } from "../transport/listen.ts";
import type { Transport } from "../transport/types.ts";
import { MemoryTransport } from "./memory_transport.ts";
import { checkReply, findFault } from "./_mock_faults.ts";
import { Session, type SessionConfig, type SessionHost } from "./_mock_session.ts";
import { memoryStream, type ServerStream, socketStream } from "./_mock_stream.ts";
import type {
  FaultRule,
  MockListenOptions,
  MockServerAddress,
  MockSmtpServerOptions,
  ReceivedMessage,
} from "./mock_types.ts";

export type { ServerCertificate } from "../transport/listen.ts";
export type {
  FaultRule,
  MockCommand,
  MockExtension,
  MockListenOptions,
  MockServerAddress,
  MockSmtpServerOptions,
  ReceivedEnvelope,
  ReceivedMessage,
} from "./mock_types.ts";

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
