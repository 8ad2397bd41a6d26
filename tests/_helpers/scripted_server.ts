/**
 * A scripted SMTP server for tests: a raw loopback listener that runs a script per
 * connection, so that tests can play a misbehaving or unusual server exactly.
 */

import { ByteBuffer, readChunk } from "./byte_buffer.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The server side of one connection, as seen by a script. */
export class ScriptedConnection {
  #conn: Deno.Conn;
  #buffer = new ByteBuffer();
  /** Every byte the client sent, as text (unless `record` is turned off). */
  received = "";
  /** Whether to keep `received`; soak tests turn it off to measure the client alone. */
  record = true;
  /** Number of read calls that returned data (round trips seen by the server). */
  reads = 0;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** Writes text as is (use `\r\n` line ends). */
  async send(text: string | Uint8Array): Promise<void> {
    const bytes = typeof text === "string" ? encoder.encode(text) : text;
    let offset = 0;
    while (offset < bytes.length) offset += await this.#conn.write(bytes.subarray(offset));
  }

  async #fill(): Promise<boolean> {
    const data = await readChunk(this.#conn);
    if (data === null) return false;
    this.reads++;
    if (this.record) this.received += decoder.decode(data);
    this.#buffer.append(data);
    return true;
  }

  /** Reads one line without its CRLF; `null` when the client closed the connection. */
  async readLine(): Promise<string | null> {
    while (true) {
      const line = this.#buffer.takeLine();
      if (line !== undefined) return line;
      if (!await this.#fill()) return null;
    }
  }

  /** Reads exactly `n` bytes (BDAT data); `null` at end of stream. */
  async readBytes(n: number): Promise<Uint8Array | null> {
    while (this.#buffer.length < n) if (!await this.#fill()) return null;
    return this.#buffer.take(n);
  }

  /** Reads message data up to and including the `.` line; returns it without the end mark. */
  async readData(): Promise<string | null> {
    const lines: string[] = [];
    while (true) {
      const line = await this.readLine();
      if (line === null) return null;
      if (line === ".") return lines.join("\r\n");
      lines.push(line);
    }
  }

  /**
   * Waits until the client closes the connection (or `ms` pass), answering QUIT with 221 and
   * anything else with 250.
   */
  async waitForClose(ms = 5000): Promise<void> {
    const timer = new Promise<void>((resolve) => {
      this.#closeTimer = setTimeout(resolve, ms);
    });
    const closed = (async () => {
      while (true) {
        const line = await this.readLine();
        if (line === null) return;
        if (/^QUIT/i.test(line)) {
          await this.send("221 2.0.0 Bye\r\n").catch(() => {});
          return;
        }
        await this.send("250 OK\r\n").catch(() => {});
      }
    })();
    await Promise.race([timer, closed]);
    clearTimeout(this.#closeTimer);
  }
  #closeTimer: ReturnType<typeof setTimeout> | undefined;

  /** Closes the connection. */
  close(): void {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

/** A running scripted server. */
export interface ScriptedServer {
  port: number;
  /** The connections made so far, in order. */
  connections: ScriptedConnection[];
  /** Errors thrown by scripts (a failed expectation in a script fails the test). */
  errors: unknown[];
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a listener on 127.0.0.1 that runs `script` for each connection, then closes it.
 * With `tls`, the listener speaks TLS from the first byte (implicit TLS).
 */
export function startScriptedServer(
  script: (conn: ScriptedConnection, index: number) => Promise<void>,
  tls?: { cert: string; key: string },
): ScriptedServer {
  const listener = tls
    ? Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: tls.cert, key: tls.key })
    : Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connections: ScriptedConnection[] = [];
  const errors: unknown[] = [];
  const running: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
      const connection = new ScriptedConnection(conn);
      const index = connections.push(connection) - 1;
      running.push(
        script(connection, index).catch((error) => {
          errors.push(error);
        }).finally(() => connection.close()),
      );
    }
  })().catch(() => {});
  const close = async () => {
    try {
      listener.close();
    } catch {
      // closed
    }
    await accepting;
    await Promise.all(running);
    if (errors.length > 0) throw errors[0];
  };
  return {
    port: (listener.addr as Deno.NetAddr).port,
    connections,
    errors,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** A script step: reads a line and checks it against `expected` (a string prefix or a RegExp). */
export async function expectLine(
  conn: ScriptedConnection,
  expected: string | RegExp,
): Promise<string> {
  const line = await conn.readLine();
  if (line === null) throw new Error(`Expected ${expected}, but the client closed`);
  const ok = typeof expected === "string" ? line.startsWith(expected) : expected.test(line);
  if (!ok) throw new Error(`Expected ${expected}, got ${JSON.stringify(line)}`);
  return line;
}

/** Greets and answers EHLO with `extensions`. */
export async function greet(conn: ScriptedConnection, extensions: string[] = []): Promise<void> {
  await conn.send("220 scripted.test ESMTP\r\n");
  await expectLine(conn, "EHLO ");
  const lines = ["scripted.test", ...extensions];
  await conn.send(
    lines.map((l, i) => `250${i === lines.length - 1 ? " " : "-"}${l}\r\n`).join(""),
  );
}

/**
 * Answers one envelope without PIPELINING: the MAIL line (starting with `mail`) and each RCPT
 * line (starting with `rcpts[i]`) with 250 in turn, then reads the DATA line, unanswered.
 */
export async function acceptEnvelope(
  conn: ScriptedConnection,
  mail = "MAIL",
  rcpts: readonly string[] = ["RCPT"],
): Promise<void> {
  await expectLine(conn, mail);
  await conn.send("250 OK\r\n");
  for (const rcpt of rcpts) {
    await expectLine(conn, rcpt);
    await conn.send("250 OK\r\n");
  }
  await expectLine(conn, "DATA");
}

/** Reads a pipelined envelope of one recipient: the MAIL, RCPT and DATA lines, unanswered. */
export async function expectPipelinedEnvelope(conn: ScriptedConnection): Promise<void> {
  await expectLine(conn, "MAIL");
  await expectLine(conn, "RCPT");
  await expectLine(conn, "DATA");
}

/** What {@linkcode serveEsmtp} saw. */
export interface EsmtpLog {
  commands: string[];
  messages: { from: string; to: string[]; data: string }[];
}

/**
 * A small, correct ESMTP server loop for scripted tests: MAIL, RCPT, DATA, BDAT, RSET, NOOP,
 * QUIT, answering pipelined commands in order. `rcpt` decides each recipient's reply.
 */
export function serveEsmtp(
  conn: ScriptedConnection,
  options: { extensions?: string[]; rcpt?: (address: string) => string; record?: boolean } = {},
): Promise<EsmtpLog & { count: number }> {
  const log = { commands: [] as string[], messages: [] as EsmtpLog["messages"], count: 0 };
  // A client that goes away mid-conversation ends the loop; that is not a script failure.
  return esmtpLoop(conn, options, log).catch((error) => {
    if (error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset) {
      return log;
    }
    throw error;
  });
}

async function esmtpLoop(
  conn: ScriptedConnection,
  options: { extensions?: string[]; rcpt?: (address: string) => string; record?: boolean },
  log: EsmtpLog & { count: number },
): Promise<EsmtpLog & { count: number }> {
  const record = options.record ?? true;
  conn.record = record;
  await greet(conn, options.extensions ?? ["PIPELINING", "CHUNKING"]);
  let from: string | undefined;
  let to: string[] = [];
  let chunks = "";
  let failedChunk = false;
  const reset = () => {
    from = undefined;
    to = [];
    chunks = "";
    failedChunk = false;
  };
  while (true) {
    const line = await conn.readLine();
    if (line === null) return log;
    if (record) log.commands.push(line);
    const verb = line.split(" ")[0]!.toUpperCase();
    if (verb === "QUIT") {
      await conn.send("221 Bye\r\n");
      return log;
    } else if (verb === "RSET" || verb === "NOOP") {
      if (verb === "RSET") reset();
      await conn.send("250 OK\r\n");
    } else if (verb === "MAIL") {
      if (from !== undefined) await conn.send("503 5.5.1 Nested MAIL\r\n");
      else {
        from = /<([^>]*)>/.exec(line)![1]!;
        await conn.send("250 OK\r\n");
      }
    } else if (verb === "RCPT") {
      const address = /<([^>]*)>/.exec(line)![1]!;
      const reply = from === undefined
        ? "503 5.5.1 MAIL first"
        : options.rcpt?.(address) ?? "250 OK";
      if (reply.startsWith("250")) to.push(address);
      await conn.send(reply + "\r\n");
    } else if (verb === "BDAT") {
      const [, size, last] = line.split(" ");
      const bytes = await conn.readBytes(Number(size));
      if (bytes === null) return log;
      const data = new TextDecoder().decode(bytes);
      if (from === undefined || to.length === 0 || failedChunk) {
        failedChunk = true;
        await conn.send("554 5.5.1 No valid recipients\r\n");
        if (last) reset();
        continue;
      }
      chunks += data;
      if (last) {
        log.count++;
        if (record) log.messages.push({ from, to, data: chunks });
        await conn.send(`250 2.0.0 Queued as ${log.count}\r\n`);
        reset();
      } else await conn.send("250 OK\r\n");
    } else if (verb === "DATA") {
      if (from === undefined || to.length === 0) {
        await conn.send("554 5.5.1 No valid recipients\r\n");
        continue;
      }
      await conn.send("354 Go\r\n");
      const data = await conn.readData();
      if (data === null) return log;
      log.count++;
      if (record) log.messages.push({ from, to, data });
      await conn.send(`250 2.0.0 Queued as ${log.count}\r\n`);
      reset();
    } else {
      await conn.send("500 5.5.2 Unknown command\r\n");
    }
  }
}
