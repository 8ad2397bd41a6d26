/**
 * The benchmark's sink: a small, fast ESMTP server on 127.0.0.1 that accepts every message and
 * keeps nothing but counts. Written against `node:net` / `node:tls` only, so that it runs
 * under Node (bundled by `scripts/bench.ts`) or Deno, and any client can talk to it.
 *
 * It speaks EHLO (PIPELINING, 8BITMIME, SIZE, CHUNKING when enabled, STARTTLS when enabled,
 * AUTH PLAIN), HELO, STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA, BDAT, RSET, NOOP and QUIT, and
 * answers pipelined commands in order. With `--delay-ms`, every reply (greeting included) is
 * written that long after its command was read, in order, to play a distant server.
 *
 *     deno run -A scripts/_bench_sink.ts [--tls none|starttls|implicit] [--no-chunking]
 *       [--delay-ms 2]
 *
 * It prints `{"port":N}` once it listens, then obeys lines on stdin: `reset` zeroes the
 * counters, `stats` prints them as JSON (messages, bytes, reads, connections, maxOpen, and the
 * sink's own CPU time since the reset); it
 * exits when stdin ends.
 *
 * @module
 */

import net from "node:net";
import tls from "node:tls";
import process from "node:process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Buffer } from "node:buffer";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    tls: { type: "string", default: "none" },
    "no-chunking": { type: "boolean", default: false },
    "delay-ms": { type: "string", default: "0" },
    cert: { type: "string" },
    key: { type: "string" },
  },
});
const mode = values.tls;
const chunking = !values["no-chunking"];
const delayMs = Number(values["delay-ms"]);
const credentials = mode === "none"
  ? undefined
  : { cert: readFileSync(values.cert!, "utf8"), key: readFileSync(values.key!, "utf8") };
const secureContext = credentials && tls.createSecureContext(credentials);

const stats = { messages: 0, bytes: 0, reads: 0, connections: 0, maxOpen: 0, cpuMs: 0 };
let open = 0;
let cpuSince = process.cpuUsage();

const CRLF_DOT_CRLF = Buffer.from("\r\n.\r\n");
/** The SIZE announced: room for D-large's 500 MB attachment in base64 (postie declares SIZE). */
const MAX_SIZE = 2 * 1024 * 1024 * 1024;

/** One client connection: a line parser, a DATA/BDAT byte sink and an ordered reply writer. */
class Session {
  socket: net.Socket;
  secure: boolean;
  /** Bytes not yet parsed (only ever part of one line). */
  pending: Buffer | undefined;
  /** "line", "data" (until CRLF.CRLF) or "bdat" (a byte count). */
  mode: "line" | "data" | "bdat" | "auth" = "line";
  /** The last bytes of data read, to find an end mark split across reads. */
  tail: Buffer = Buffer.from("\r\n");
  bdatLeft = 0;
  bdatLast = false;
  inMail = false;
  recipients = 0;
  /** Replies produced while handling one read, written together. */
  out: string[] = [];
  /** Replies waiting for their time (with a delay). */
  due: { at: number; text: string }[] = [];
  lastDue = 0;
  timer: ReturnType<typeof setTimeout> | undefined;
  upgrading = false;
  closed = false;

  constructor(socket: net.Socket, secure: boolean) {
    this.socket = socket;
    this.secure = secure;
    this.attach(socket);
    this.reply("220 sink.test ESMTP ready");
    this.flush();
  }

  attach(socket: net.Socket): void {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", () => {});
    socket.on("close", () => this.onClose());
  }

  onClose(): void {
    if (this.closed || this.upgrading) return;
    this.closed = true;
    clearTimeout(this.timer);
    open--;
  }

  reply(text: string): void {
    if (delayMs <= 0) {
      this.out.push(text + "\r\n");
      return;
    }
    const at = Math.max(performance.now() + delayMs, this.lastDue);
    this.lastDue = at;
    this.due.push({ at, text: text + "\r\n" });
  }

  /** Writes what one read produced: at once, or when each reply falls due. */
  flush(after?: () => void): void {
    if (delayMs <= 0) {
      if (this.out.length > 0) {
        const text = this.out.length === 1 ? this.out[0]! : this.out.join("");
        this.out = [];
        this.socket.write(text, after ? () => after() : undefined);
      } else after?.();
      return;
    }
    if (after) this.afterDue = after;
    this.schedule();
  }

  afterDue: (() => void) | undefined;

  schedule(): void {
    if (this.timer !== undefined || this.due.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = performance.now();
      let text = "";
      while (this.due.length > 0 && this.due[0]!.at <= now + 0.5) text += this.due.shift()!.text;
      if (text && !this.closed) {
        const after = this.due.length === 0 ? this.afterDue : undefined;
        if (after) this.afterDue = undefined;
        this.socket.write(text, after ? () => after() : undefined);
      }
      this.schedule();
    }, Math.max(0, this.due[0]!.at - performance.now()));
  }

  onData(chunk: Buffer): void {
    stats.reads++;
    stats.bytes += chunk.length;
    const data: Buffer = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let offset = 0;
    while (offset < data.length && !this.upgrading) {
      if (this.mode === "data") {
        const end = this.findDataEnd(data, offset);
        if (end === -1) {
          const rest = data.length - offset;
          const joined = rest >= 4
            ? data.subarray(data.length - 4)
            : Buffer.concat([this.tail, data.subarray(offset)]);
          this.tail = Buffer.from(joined.subarray(Math.max(0, joined.length - 4)));
          offset = data.length;
          break;
        }
        offset = end;
        this.mode = "line";
        this.endMessage();
        continue;
      }
      if (this.mode === "bdat") {
        const take = Math.min(this.bdatLeft, data.length - offset);
        this.bdatLeft -= take;
        offset += take;
        if (this.bdatLeft === 0) {
          this.mode = "line";
          if (this.bdatLast) this.endMessage();
          else this.reply("250 2.0.0 Chunk accepted");
        }
        continue;
      }
      const lf = data.indexOf(10, offset);
      if (lf === -1) {
        this.pending = Buffer.from(data.subarray(offset));
        if (this.pending.length > 65536) this.socket.destroy();
        break;
      }
      const line = data.toString(
        "latin1",
        offset,
        lf > offset && data[lf - 1] === 13 ? lf - 1 : lf,
      );
      offset = lf + 1;
      this.command(line);
    }
    if (this.upgrading) {
      if (offset < data.length) this.socket.destroy(); // data before the TLS handshake
      return;
    }
    this.flush();
  }

  /** Offset just past the end mark of the message data, or -1. */
  findDataEnd(data: Buffer, offset: number): number {
    // The mark may straddle the previous read: check the joint first.
    const head = data.subarray(offset, offset + 4);
    const joint = Buffer.concat([this.tail, head]);
    const inJoint = joint.indexOf(CRLF_DOT_CRLF);
    if (inJoint !== -1) return offset + inJoint + 5 - this.tail.length;
    const found = data.indexOf(CRLF_DOT_CRLF, offset);
    return found === -1 ? -1 : found + 5;
  }

  endMessage(): void {
    stats.messages++;
    this.inMail = false;
    this.recipients = 0;
    this.reply(`250 2.0.0 Ok: queued as ${stats.messages}`);
  }

  command(line: string): void {
    if (this.mode === "auth") {
      this.mode = "line";
      this.reply("235 2.7.0 Authentication successful");
      return;
    }
    const space = line.indexOf(" ");
    const verb = (space === -1 ? line : line.slice(0, space)).toUpperCase();
    switch (verb) {
      case "EHLO": {
        const lines = ["sink.test", "PIPELINING", "8BITMIME", `SIZE ${MAX_SIZE}`];
        if (chunking) lines.push("CHUNKING");
        if (mode === "starttls" && !this.secure) lines.push("STARTTLS");
        lines.push("AUTH PLAIN");
        this.reply(
          lines.map((l, i) => `250${i === lines.length - 1 ? " " : "-"}${l}`).join("\r\n"),
        );
        break;
      }
      case "HELO":
        this.reply("250 sink.test");
        break;
      case "STARTTLS":
        if (mode !== "starttls" || this.secure) {
          this.reply("503 5.5.1 TLS not available");
          break;
        }
        this.reply("220 2.0.0 Ready to start TLS");
        this.upgrading = true;
        this.flush(() => this.upgrade());
        break;
      case "AUTH":
        if (/^AUTH PLAIN \S+/i.test(line)) this.reply("235 2.7.0 Authentication successful");
        else if (/^AUTH PLAIN$/i.test(line)) {
          this.mode = "auth";
          this.reply("334 ");
        } else this.reply("504 5.5.4 Unrecognized authentication type");
        break;
      case "MAIL":
        this.inMail = true;
        this.recipients = 0;
        this.reply("250 2.1.0 Ok");
        break;
      case "RCPT":
        if (!this.inMail) this.reply("503 5.5.1 Need MAIL first");
        else {
          this.recipients++;
          this.reply("250 2.1.5 Ok");
        }
        break;
      case "DATA":
        if (!this.inMail || this.recipients === 0) {
          this.reply("554 5.5.1 No valid recipients");
          break;
        }
        this.mode = "data";
        this.tail = Buffer.from("\r\n");
        this.reply("354 End data with <CR><LF>.<CR><LF>");
        break;
      case "BDAT": {
        const [, size, last] = line.split(" ");
        this.bdatLeft = Number(size);
        this.bdatLast = /^LAST$/i.test(last ?? "");
        this.mode = "bdat";
        if (this.bdatLeft === 0) {
          this.mode = "line";
          if (this.bdatLast) this.endMessage();
          else this.reply("250 2.0.0 Chunk accepted");
        }
        break;
      }
      case "RSET":
        this.inMail = false;
        this.recipients = 0;
        this.reply("250 2.0.0 Ok");
        break;
      case "NOOP":
        this.reply("250 2.0.0 Ok");
        break;
      case "QUIT":
        this.reply("221 2.0.0 Bye");
        this.flush(() => this.socket.end());
        break;
      default:
        this.reply("502 5.5.2 Command not recognized");
    }
  }

  upgrade(): void {
    const plain = this.socket;
    plain.removeAllListeners("data");
    plain.removeAllListeners("close");
    const secured = new tls.TLSSocket(plain, { isServer: true, secureContext });
    this.secure = true;
    this.upgrading = false;
    this.mode = "line";
    this.inMail = false;
    this.attach(secured);
  }
}

function onConnection(socket: net.Socket, secure: boolean): void {
  stats.connections++;
  open++;
  stats.maxOpen = Math.max(stats.maxOpen, open);
  new Session(socket, secure);
}

const server = mode === "implicit"
  ? tls.createServer({ ...credentials }, (socket) => onConnection(socket, true))
  : net.createServer((socket) => onConnection(socket, false));
server.on("error", (error) => {
  console.error(error);
  process.exit(1);
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address() as net.AddressInfo;
  process.stdout.write(JSON.stringify({ port: address.port }) + "\n");
});

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (text: string) => {
  input += text;
  let lf;
  while ((lf = input.indexOf("\n")) !== -1) {
    const command = input.slice(0, lf).trim();
    input = input.slice(lf + 1);
    if (command === "reset") {
      Object.assign(stats, { messages: 0, bytes: 0, reads: 0, connections: 0, maxOpen: open });
      cpuSince = process.cpuUsage();
      process.stdout.write(JSON.stringify({ reset: true }) + "\n");
    } else if (command === "stats") {
      const used = process.cpuUsage(cpuSince);
      stats.cpuMs = (used.user + used.system) / 1000;
      process.stdout.write(JSON.stringify(stats) + "\n");
    }
  }
});
process.stdin.on("end", () => process.exit(0));
