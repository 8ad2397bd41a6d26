/**
 * Test helpers for the AUTH tests, independent of the client: an {@linkcode AuthConversation}
 * over a real loopback TCP socket (greeting, EHLO, then one line out and one reply back), and
 * an AUTH script for one connection of the shared scripted-server harness.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { AuthContext, AuthConversation } from "../../src/auth/types.ts";
import type { SmtpReply } from "../../src/types.ts";
import { ByteBuffer, readChunk } from "../_helpers/byte_buffer.ts";
import { startScriptedServer } from "../_helpers/scripted_server.ts";

const encoder = new TextEncoder();

/** Buffered CRLF line reading and writing over a `Deno.Conn`. */
class Lines {
  readonly #conn: Deno.Conn;
  readonly #buffer = new ByteBuffer();

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** One line without its line end, or `null` when the peer closed the connection. */
  async read(): Promise<string | null> {
    while (true) {
      const line = this.#buffer.takeLine();
      if (line !== undefined) return line;
      const chunk = await readChunk(this.#conn);
      if (chunk === null) return null;
      this.#buffer.append(chunk);
    }
  }

  async write(text: string): Promise<void> {
    const bytes = encoder.encode(text);
    let offset = 0;
    while (offset < bytes.length) offset += await this.#conn.write(bytes.subarray(offset));
  }
}

/** Parses the lines of one reply (`250-a`, `250 b`) into an {@linkcode SmtpReply}. */
function parseReply(lines: string[]): SmtpReply {
  const code = Number(lines[0]!.slice(0, 3));
  const texts = lines.map((line) => line.slice(4));
  const status = /^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)/.exec(texts[0] ?? "");
  if (status && code >= 200 && code !== 334) {
    texts[0] = texts[0]!.slice(status[0].length);
    return {
      code,
      enhancedStatus: {
        class: Number(status[1]),
        subject: Number(status[2]),
        detail: Number(status[3]),
      },
      lines: texts,
    };
  }
  return { code, lines: texts };
}

/** One line sent by {@linkcode SocketConversation}, with its secret flag. */
export interface SentLine {
  readonly line: string;
  readonly secret: boolean;
}

/**
 * An {@linkcode AuthConversation} over a loopback socket. `open()` reads the greeting, sends
 * EHLO and records the AUTH mechanisms the server offers.
 */
export class SocketConversation implements AuthConversation, AsyncDisposable {
  readonly #conn: Deno.Conn;
  readonly #lines: Lines;
  readonly port: number;
  /** The mechanisms after `AUTH` in the EHLO reply. */
  offered: string[] = [];
  /** Every line sent through {@linkcode exchange}, with its secret flag. */
  readonly sent: SentLine[] = [];
  #closed = false;

  private constructor(conn: Deno.Conn, port: number) {
    this.#conn = conn;
    this.#lines = new Lines(conn);
    this.port = port;
  }

  /** Connects to 127.0.0.1:`port`, reads the greeting and sends EHLO. */
  static async open(port: number): Promise<SocketConversation> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const conversation = new SocketConversation(conn, port);
    try {
      const greeting = await conversation.#reply();
      assert.equal(greeting.code, 220, `greeting: ${greeting.lines.join(" ")}`);
      await conversation.#lines.write("EHLO client.test\r\n");
      const ehlo = await conversation.#reply();
      assert.equal(ehlo.code, 250, `EHLO: ${ehlo.lines.join(" ")}`);
      for (const line of ehlo.lines) {
        const [keyword, ...params] = line.trim().split(/\s+/);
        if (keyword?.toUpperCase() === "AUTH") {
          conversation.offered = params.map((p) => p.toUpperCase());
        }
      }
    } catch (error) {
      conversation.close();
      throw error;
    }
    return conversation;
  }

  /** The context for `authenticate()`: what the server offered, host 127.0.0.1 and the port. */
  context(overrides: Partial<AuthContext> = {}): AuthContext {
    return { offered: this.offered, hostname: "127.0.0.1", port: this.port, ...overrides };
  }

  async #reply(): Promise<SmtpReply> {
    const lines: string[] = [];
    while (true) {
      const line = await this.#lines.read();
      if (line === null) throw new Error("The server closed the connection");
      if (!/^\d{3}[ -]/.test(line) && !/^\d{3}$/.test(line)) {
        throw new Error(`Malformed reply line: ${line}`);
      }
      lines.push(line);
      if (line[3] !== "-") return parseReply(lines);
    }
  }

  async exchange(line: string, options?: { readonly secret?: boolean }): Promise<SmtpReply> {
    assert.doesNotMatch(line, /[\r\n]/, "a line without CR or LF");
    this.sent.push({ line, secret: options?.secret ?? false });
    await this.#lines.write(`${line}\r\n`);
    return await this.#reply();
  }

  /** Sends QUIT, reads the reply (if any) and closes the socket. */
  async quit(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#lines.write("QUIT\r\n");
      await this.#reply();
    } catch {
      // The server may already have gone: closing is all that matters.
    } finally {
      this.close();
    }
  }

  /** Closes the socket now; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.quit();
  }
}

/** The server side of one scripted connection. */
export interface ScriptPeer {
  /** Reads one line from the client; fails the script when the client closed. */
  readLine(): Promise<string>;
  /** Reads one line and checks it: an exact string, or a pattern. Returns the line. */
  expect(expected: string | RegExp): Promise<string>;
  /** Sends one or more reply lines (CRLF is added to each). */
  send(...lines: string[]): Promise<void>;
}

/** A scripted server listening on 127.0.0.1 for exactly one connection. */
export interface ScriptedServer extends AsyncDisposable {
  readonly port: number;
  /** Settles when the script has finished (rejects with its assertion failure). */
  readonly finished: Promise<void>;
}

/**
 * Starts a loopback server (the scripted-server harness of tests/_helpers) for one connection:
 * it greets, answers EHLO with `AUTH <offered>`, runs `script`, then answers QUIT with 221 and
 * closes. The socket and the listener are closed on every path, so that the test's resource
 * sanitizer stays quiet.
 */
export function scriptedServer(
  offered: string,
  script: (peer: ScriptPeer) => Promise<void>,
): ScriptedServer {
  let settle!: (outcome: Promise<void>) => void;
  const finished = new Promise<void>((resolve) => settle = resolve);
  const server = startScriptedServer((conn) => {
    const peer: ScriptPeer = {
      async readLine() {
        const line = await conn.readLine();
        if (line === null) throw new Error("The client closed the connection");
        return line;
      },
      async expect(expected) {
        const line = await peer.readLine();
        if (typeof expected === "string") assert.equal(line, expected);
        else assert.match(line, expected);
        return line;
      },
      send: (...replies) => conn.send(replies.map((r) => `${r}\r\n`).join("")),
    };
    const run = (async () => {
      await peer.send("220 scripted.test ESMTP");
      await peer.expect(/^EHLO /);
      await peer.send("250-scripted.test", `250 AUTH ${offered}`);
      await script(peer);
      const last = await conn.readLine();
      if (last !== null) {
        assert.equal(last, "QUIT");
        await peer.send("221 2.0.0 Bye");
      }
    })();
    settle(run);
    return run;
  });
  // Keep an unobserved failure from becoming an unhandled rejection before the test awaits it.
  finished.catch(() => {});
  return {
    port: server.port,
    finished,
    async [Symbol.asyncDispose]() {
      await server.close().catch(() => {});
    },
  };
}

/**
 * Awaits the client side and the server script together. The script's failure wins: when it
 * fails, it closes the socket, and the client's "connection closed" error would hide the cause.
 */
export async function together<T>(client: Promise<T>, server: ScriptedServer): Promise<T> {
  const [clientResult, serverResult] = await Promise.allSettled([client, server.finished]);
  if (serverResult.status === "rejected") throw serverResult.reason;
  if (clientResult.status === "rejected") throw clientResult.reason;
  return clientResult.value;
}
