/**
 * An ESMTP server for fault injection. It behaves like a real server that processes pipelined
 * commands as they arrive and flushes its replies only when it must wait for more input (so a
 * message whose terminator arrived is queued before any of the replies that come before it are
 * sent), and it can fail at one point of a transaction:
 *
 * - `cut` at a reply: every reply before it is sent, then the connection is closed (the work
 *   already done stays done: a message whose terminator was processed is kept);
 * - `421` at a reply: that reply is `421` and the connection is closed; nothing after it is
 *   processed, and a 421 to the terminator means the message is not kept;
 * - `cut` at a byte of the message data: the connection is closed once that many bytes of the
 *   data have arrived (`"terminator"`: once all of it, terminator included, arrived, before it
 *   was processed).
 *
 * Every kept message is recorded with the connection it came on, so that tests can count the
 * copies of each message the server holds.
 */

import { ByteBuffer, readChunk } from "../_helpers/byte_buffer.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The replies a fault can be placed at. */
export type ReplyPoint = "mail" | "rcpt" | "data" | "chunk" | "end";

/** Where and how the server fails. */
export type Fault =
  | { readonly kind: "cut" | "421"; readonly reply: ReplyPoint }
  | { readonly kind: "cut"; readonly dataByte: number | "terminator" };

/** A message the server kept. */
export interface Kept {
  readonly connection: number;
  readonly from: string;
  readonly to: readonly string[];
  readonly data: string;
}

/** Settings of a fault server. */
export interface FaultServerOptions {
  /** Extensions offered besides 8BITMIME and SMTPUTF8. */
  readonly extensions: readonly string[];
  /** The fault, on the connections `faultyConnections` says. */
  readonly fault?: Fault | undefined;
  /** How many connections, counted from the first, fail (`Infinity`: all of them). */
  readonly faultyConnections?: number;
  /** Delays every flush of replies by this many milliseconds. */
  readonly replyDelayMs?: number;
}

/** A running fault server. */
export interface FaultServer extends AsyncDisposable {
  readonly port: number;
  readonly kept: Kept[];
  /** Connections accepted so far. */
  readonly connections: () => number;
  close(): Promise<void>;
}

class Closed extends Error {}

/** One connection's input and its pending replies. */
class Wire {
  #conn: Deno.Conn;
  #buffer = new ByteBuffer();
  #out: { point: ReplyPoint | undefined; text: string }[] = [];
  #cutAt: ReplyPoint | undefined;
  #delayMs: number;
  #closed = false;

  constructor(conn: Deno.Conn, cutAt: ReplyPoint | undefined, delayMs: number) {
    this.#conn = conn;
    this.#cutAt = cutAt;
    this.#delayMs = delayMs;
  }

  get buffered(): number {
    return this.#buffer.length;
  }

  reply(text: string, point?: ReplyPoint): void {
    this.#out.push({ point, text });
  }

  /** Sends the pending replies, or those before the cut, then closes. */
  async flush(): Promise<void> {
    if (this.#out.length === 0) return;
    if (this.#delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.#delayMs));
    let text = "";
    let cut = false;
    for (const { point, text: line } of this.#out) {
      if (point !== undefined && point === this.#cutAt) {
        cut = true;
        break;
      }
      text += line + "\r\n";
    }
    this.#out = [];
    if (text) await this.#write(text);
    if (cut) this.close();
  }

  async #write(text: string): Promise<void> {
    const bytes = encoder.encode(text);
    let offset = 0;
    try {
      while (offset < bytes.length) offset += await this.#conn.write(bytes.subarray(offset));
    } catch {
      throw new Closed();
    }
  }

  /** Sends `text` now, after the pending replies, and closes. */
  async replyAndClose(text: string): Promise<void> {
    this.reply(text);
    const cutAt = this.#cutAt;
    this.#cutAt = undefined;
    await this.flush().catch(() => {});
    this.#cutAt = cutAt;
    this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Closed already.
    }
    throw new Closed();
  }

  async #fill(): Promise<void> {
    if (this.#closed) throw new Closed();
    await this.flush();
    const chunk = await readChunk(this.#conn);
    if (chunk === null) throw new Closed();
    this.#buffer.append(chunk);
  }

  async readLine(): Promise<string> {
    while (true) {
      const line = this.#buffer.takeLine();
      if (line !== undefined) return line;
      await this.#fill();
    }
  }

  /** Reads `n` bytes, closing once `limit` bytes have arrived (for byte faults). */
  async readBytes(n: number, limit = Infinity): Promise<Uint8Array> {
    while (this.#buffer.length < n) {
      if (this.#buffer.length >= limit) this.close();
      await this.#fill();
    }
    if (n > limit) this.close();
    return this.#buffer.take(n);
  }

  /** Reads DATA content up to the `.` line (exclusive), closing once `limit` bytes arrived. */
  async readDotData(limit: number): Promise<string> {
    while (true) {
      const end = findTerminator(this.#buffer.bytes);
      if (end !== -1) {
        if (limit !== Infinity) this.close(); // "terminator": everything arrived, not processed
        const data = decoder.decode(this.#buffer.take(end));
        this.#buffer.take(3);
        return data.replace(/^\.\./gm, ".");
      }
      if (this.#buffer.length >= limit) this.close();
      await this.#fill();
    }
  }
}

/** Where `.\r\n` ends the data: the index of the `.` of a line that is only `.`. */
function findTerminator(buffer: Uint8Array): number {
  if (buffer[0] === 0x2e && buffer[1] === 0x0d && buffer[2] === 0x0a) return 0;
  for (let i = buffer.indexOf(0x0a); i !== -1; i = buffer.indexOf(0x0a, i + 1)) {
    if (buffer[i + 1] === 0x2e && buffer[i + 2] === 0x0d && buffer[i + 3] === 0x0a) return i + 1;
  }
  return -1;
}

/** Starts a fault server on 127.0.0.1. */
export function startFaultServer(options: FaultServerOptions): FaultServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const kept: Kept[] = [];
  const running = new Set<Promise<void>>();
  const conns = new Set<Deno.Conn>();
  let count = 0;
  const accepting = (async () => {
    for await (const conn of listener) {
      const number = ++count;
      const faulty = number <= (options.faultyConnections ?? 1);
      conns.add(conn);
      const fault = faulty ? options.fault : undefined;
      const done = serve(conn, number, fault, options, kept)
        .catch((error) => {
          if (!(error instanceof Closed)) throw error;
        })
        .finally(() => {
          conns.delete(conn);
          try {
            conn.close();
          } catch {
            // Closed already.
          }
        });
      running.add(done);
      void done.then(() => running.delete(done));
    }
  })().catch(() => {});
  const close = async () => {
    try {
      listener.close();
    } catch {
      // Closed already.
    }
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
    }
    await accepting;
    await Promise.all(running);
  };
  return {
    port: (listener.addr as Deno.NetAddr).port,
    kept,
    connections: () => count,
    close,
    [Symbol.asyncDispose]: close,
  };
}

async function serve(
  conn: Deno.Conn,
  number: number,
  fault: Fault | undefined,
  options: FaultServerOptions,
  kept: Kept[],
): Promise<void> {
  const cutAt = fault?.kind === "cut" && "reply" in fault ? fault.reply : undefined;
  const refuseAt = fault?.kind === "421" ? fault.reply : undefined;
  const byteLimit = fault && "dataByte" in fault
    ? (fault.dataByte === "terminator" ? Number.MAX_SAFE_INTEGER : fault.dataByte)
    : Infinity;
  const wire = new Wire(conn, cutAt, options.replyDelayMs ?? 0);
  /** Replies with `text`, or with 421 and closes when the fault is at `point`. */
  const answer = async (point: ReplyPoint, text: string) => {
    if (point === refuseAt) await wire.replyAndClose("421 4.3.2 fault.test Closing");
    wire.reply(text, point);
  };

  wire.reply("220 fault.test ESMTP");
  const ehlo = await wire.readLine();
  if (!/^EHLO /i.test(ehlo)) throw new Error(`Expected EHLO, got ${ehlo}`);
  const caps = ["fault.test", "8BITMIME", "SMTPUTF8", ...options.extensions];
  caps.forEach((line, i) => wire.reply(`250${i === caps.length - 1 ? " " : "-"}${line}`));

  let from: string | undefined;
  let to: string[] = [];
  let chunks = "";
  let received = 0;
  const chunkDecoder = new TextDecoder();
  const keep = (data: string) => {
    kept.push({ connection: number, from: from!, to, data });
  };
  const reset = () => {
    from = undefined;
    to = [];
    chunks = "";
    received = 0;
  };
  while (true) {
    const line = await wire.readLine();
    const verb = line.split(" ")[0]!.toUpperCase();
    if (verb === "QUIT") {
      await wire.replyAndClose("221 Bye");
    } else if (verb === "RSET" || verb === "NOOP") {
      if (verb === "RSET") reset();
      wire.reply("250 OK");
    } else if (verb === "MAIL") {
      from = /<([^>]*)>/.exec(line)![1]!;
      await answer("mail", "250 2.1.0 OK");
    } else if (verb === "RCPT") {
      to.push(/<([^>]*)>/.exec(line)![1]!);
      await answer("rcpt", "250 2.1.5 OK");
    } else if (verb === "DATA") {
      await answer("data", "354 Go ahead");
      const data = await wire.readDotData(byteLimit);
      if (refuseAt === "end") await wire.replyAndClose("421 4.3.2 fault.test Closing");
      keep(data);
      await answer("end", `250 2.0.0 Queued as ${number}.${kept.length}`);
      reset();
    } else if (verb === "BDAT") {
      const [, size, last] = line.split(" ");
      const bytes = await wire.readBytes(Number(size), byteLimit - received);
      received += bytes.length;
      chunks += chunkDecoder.decode(bytes, { stream: !last });
      if (last) {
        if (fault && "dataByte" in fault) wire.close(); // "terminator": arrived, not processed
        if (refuseAt === "end") await wire.replyAndClose("421 4.3.2 fault.test Closing");
        keep(chunks);
        await answer("end", `250 2.0.0 Queued as ${number}.${kept.length}`);
        reset();
      } else {
        await answer("chunk", "250 2.0.0 Chunk OK");
      }
    } else {
      wire.reply("500 5.5.2 Unknown command");
    }
  }
}
