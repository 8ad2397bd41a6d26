/**
 * What the benchmark's client processes share: the scenario flags, the messages, the
 * start signal from `scripts/bench.ts`, and the measurement of one timed window (wall time,
 * CPU time of this process, peak RSS). Only `node:` modules and web APIs, so that the same
 * code runs under Deno and, bundled, under Node.
 *
 * @module
 */

import process from "node:process";
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

/** One client run, as `scripts/bench.ts` describes it on the command line. */
export interface ClientArgs {
  /** 127.0.0.1 port of the sink (unused for `mime`). */
  readonly port: number;
  /** `send`: send messages; `mime`: compose the attachment message and read it, no network. */
  readonly task: "send" | "mime";
  readonly tls: "none" | "starttls" | "implicit";
  /** PEM file of the CA that signed the sink's certificate. */
  readonly ca: string | undefined;
  readonly auth: boolean;
  readonly messages: number;
  readonly recipients: number;
  readonly connections: number;
  /** `sequential`: each send awaited before the next; `queued`: all at once. */
  readonly order: "sequential" | "queued";
  readonly warmup: number;
  /** A file to attach to every message, warm-up and timed. */
  readonly attachment: string | undefined;
  /** Sign every message with DKIM: postie with this algorithm, nodemailer always with RSA. */
  readonly dkim: "rsa" | "ed25519" | undefined;
  /** The PEM key of `dkim`'s algorithm (postie). */
  readonly dkimKey: string | undefined;
  /** The PEM RSA key (nodemailer, which signs with RSA only). */
  readonly dkimRsaKey: string | undefined;
}

/** Parses the flags that `scripts/bench.ts` passes. */
export function clientArgs(): ClientArgs {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      port: { type: "string", default: "0" },
      task: { type: "string", default: "send" },
      tls: { type: "string", default: "none" },
      ca: { type: "string" },
      auth: { type: "boolean", default: false },
      messages: { type: "string", default: "100" },
      recipients: { type: "string", default: "1" },
      connections: { type: "string", default: "1" },
      order: { type: "string", default: "sequential" },
      warmup: { type: "string", default: "0" },
      attachment: { type: "string" },
      dkim: { type: "string" },
      "dkim-key": { type: "string" },
      "dkim-rsa-key": { type: "string" },
    },
  });
  return {
    port: Number(values.port),
    task: values.task === "mime" ? "mime" : "send",
    tls: values.tls as ClientArgs["tls"],
    ca: values.ca,
    auth: values.auth,
    messages: Number(values.messages),
    recipients: Number(values.recipients),
    connections: Number(values.connections),
    order: values.order === "queued" ? "queued" : "sequential",
    warmup: Number(values.warmup),
    attachment: values.attachment,
    dkim: values.dkim === "rsa" || values.dkim === "ed25519" ? values.dkim : undefined,
    dkimKey: values["dkim-key"],
    dkimRsaKey: values["dkim-rsa-key"],
  };
}

/** The signing domain and selector of the DKIM scenarios. */
export const DKIM_DOMAIN = "example.com";
export const DKIM_SELECTOR = "bench";

/** The same small message for both clients, in nodemailer's (and postie's) field names. */
export function benchMessage(n: number, recipients: number) {
  const to = Array.from({ length: recipients }, (_, i) => `rcpt${i}@example.com`);
  return {
    from: "Bench Sender <sender@example.com>",
    to: recipients === 1 ? to[0]! : to,
    subject: `Benchmark message ${n}`,
    text: `Hello,\n\nthis is benchmark message number ${n}.\nIt is short, like most mail.\n`,
  };
}

/** The message with the large attachment (scenario D and the MIME row). */
export function attachmentMessage() {
  return {
    from: "Bench Sender <sender@example.com>",
    to: "rcpt0@example.com",
    subject: "Large attachment",
    text: "The file is attached.",
  };
}

/** The name the attachment is sent under. */
export const ATTACHMENT_NAME = "big.bin";

/** Tells the orchestrator that warm-up is over and waits for its `go` line on stdin. */
export async function waitForStart(): Promise<void> {
  process.stdout.write(JSON.stringify({ ready: true }) + "\n");
  await new Promise<void>((resolve) => {
    let input = "";
    const onData = (chunk: Uint8Array | string) => {
      input += typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
      if (input.includes("\n")) {
        process.stdin.off("data", onData);
        process.stdin.pause();
        resolve();
      }
    };
    process.stdin.on("data", onData);
    process.stdin.resume();
  });
}

/** What one timed window cost. */
export interface Measurement {
  readonly ms: number;
  /** User plus system CPU time of this process, in milliseconds. */
  readonly cpuMs: number;
  /** The system (kernel) part of `cpuMs`. */
  readonly cpuSystemMs: number;
  /** RSS when the window started, in bytes. */
  readonly rssStart: number;
  /** Highest RSS during the window, in bytes. */
  readonly rssPeak: number;
  /** How the peak was found: the kernel's high-water mark (reset at the start) or sampling. */
  readonly peakMethod: "VmHWM" | "sampled";
}

function highWaterMark(): number | undefined {
  try {
    const status = readFileSync("/proc/self/status", "utf8");
    const match = /VmHWM:\s+(\d+) kB/.exec(status);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Resets the kernel's peak-RSS mark (Linux); false where that is not possible. */
function resetHighWaterMark(): boolean {
  try {
    writeFileSync("/proc/self/clear_refs", "5");
    return highWaterMark() !== undefined;
  } catch {
    return false;
  }
}

/** Runs `fn` as the timed window. */
export async function measure(fn: () => Promise<void>): Promise<Measurement> {
  const kernelPeak = resetHighWaterMark();
  const rssStart = process.memoryUsage.rss();
  let sampled = rssStart;
  const sampler = kernelPeak ? undefined : setInterval(() => {
    sampled = Math.max(sampled, process.memoryUsage.rss());
  }, 5);
  const cpu = process.cpuUsage();
  const start = performance.now();
  try {
    await fn();
  } finally {
    clearInterval(sampler);
  }
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  const rssEnd = process.memoryUsage.rss();
  const rssPeak = kernelPeak
    ? Math.max(highWaterMark() ?? rssEnd, rssEnd)
    : Math.max(sampled, rssEnd);
  return {
    ms,
    cpuMs: (used.user + used.system) / 1000,
    cpuSystemMs: used.system / 1000,
    rssStart,
    rssPeak,
    peakMethod: kernelPeak ? "VmHWM" : "sampled",
  };
}

/** Prints the result line that the orchestrator reads. */
export function report(fields: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(fields) + "\n");
}

/** Reads a whole stream of chunks, counting bytes (a byte stream into one reused buffer). */
export async function drain(
  chunks: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>,
): Promise<number> {
  if (chunks instanceof ReadableStream) {
    let reader: ReadableStreamBYOBReader | undefined;
    try {
      reader = chunks.getReader({ mode: "byob" });
    } catch {
      // Not a byte stream: read it chunk by chunk.
    }
    if (reader) {
      // A byte stream is read the way postie's transaction reads it: into one reused buffer.
      let buffer = new ArrayBuffer(256 * 1024);
      let bytes = 0;
      while (true) {
        const { done, value } = await reader.read(new Uint8Array(buffer));
        if (done) return bytes;
        bytes += value.length;
        buffer = value.buffer as ArrayBuffer;
      }
    }
  }
  let bytes = 0;
  for await (const chunk of chunks) bytes += chunk.length;
  return bytes;
}

/**
 * The `mime` task: composes the attachment message once as the timed window, after a warm-up
 * composition of the same message, and reports its cost.
 *
 * @param impl The client's name in the report.
 * @param runtime The runtime's name and version.
 * @param attachment The attachment's path.
 * @param compose Composes the message with the attachment at `path` and reads it to the end,
 *   returning its size in bytes.
 */
export async function timeComposition(
  impl: string,
  runtime: string,
  attachment: string,
  compose: (path: string) => Promise<number>,
): Promise<void> {
  await compose(attachment);
  await waitForStart();
  let bytes = 0;
  const cost = await measure(async () => {
    bytes = await compose(attachment);
  });
  report({ impl, runtime, messages: 1, bytes, ...cost });
}

/**
 * The `send` task's two windows: `args.warmup` messages, the start signal, then `args.messages`
 * timed ones, each window in the scenario's order (one after another, or all at once). Both send
 * the same kind of message (with the attachment, in D), so that the timed window finds the code it
 * runs compiled already.
 *
 * @param args The scenario.
 * @param send Sends message number `n`.
 * @returns What the timed window cost.
 */
export async function warmUpAndMeasure(
  args: ClientArgs,
  send: (n: number) => Promise<unknown>,
): Promise<Measurement> {
  const inOrder = async (count: number, from: number) => {
    if (args.order === "sequential") {
      for (let i = 0; i < count; i++) await send(from + i);
    } else {
      await Promise.all(Array.from({ length: count }, (_, i) => send(from + i)));
    }
  };
  await inOrder(args.warmup, 0);
  await waitForStart();
  return await measure(() => inOrder(args.messages, args.warmup));
}
