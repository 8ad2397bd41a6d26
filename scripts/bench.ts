/**
 * `deno task bench`: postie against nodemailer (pool mode) on a loopback sink server, scenario
 * by scenario, each run in fresh processes, median of several runs, with the postie/nodemailer
 * ratio per scenario, for postie on Deno and for its npm build on Node, and postie against a
 * minimal client that shows how near the wire one gets.
 *
 *     deno run -A scripts/bench.ts [--smoke] [--runs 5] [--messages 2000]
 *       [--latency-messages 500] [--attachment-mb 50] [--large-mb 500] [--dkim-large]
 *       [--only A,E2,...] [--nodemailer-runtime node|deno] [--sink-runtime node|deno]
 *       [--raw-runtime node|deno] [--client-node PATH] [--json results.json]
 *
 * The `outbox` rows (`--only outbox`, scripts/_bench_outbox.ts) time messages from the
 * outbox's `enqueue()` to accepted at the sink, on Deno KV and on BullMQ (1 worker, 4 worker
 * processes), beside the same messages sent straight through an `SmtpPool`.
 *
 * Processes per run: the sink (`_bench_sink.ts`, under Node when available, so that it never
 * competes with the client's runtime for the same optimisations), and one client:
 * `_bench_postie.ts` under Deno, `_bench_postie_node.ts` under Node against the npm build,
 * `_bench_nodemailer.ts` under Node (`--client-node PATH`: these three Node clients run under
 * that Node binary instead, the sink under `node` as ever, so that Node versions compare against
 * the same server), and in the scenarios it can play (plain SMTP, one
 * connection) `_bench_raw.ts`, the raw one-write-per-message client, under Node (the Node
 * scripts bundled with `deno bundle`; both libraries stay out of the bundles and load from
 * their package files, as in an application: postie's npm build from `npm/`, nodemailer from
 * Deno's npm cache through a `node_modules` link beside its bundle). Each client warms up, then the sink's counters are reset and the
 * timed window starts. The client measures wall time, its own CPU time (`process.cpuUsage()`)
 * and its peak RSS (the kernel's high-water mark, reset at the window's start); the sink counts
 * messages, bytes and read events (reads per message approximate round trips).
 *
 * DKIM rows (S-rsa, S-ed25519, D-signed): postie signs with RSA-2048 or Ed25519, nodemailer with
 * the same RSA-2048 key in both (it has no Ed25519). `--dkim-large` adds D-large-signed, the
 * `--large-mb` attachment signed (nodemailer holds the whole message in memory to sign it).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { outboxBench } from "./_bench_outbox.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    smoke: { type: "boolean", default: false },
    runs: { type: "string" },
    messages: { type: "string" },
    "latency-messages": { type: "string" },
    "attachment-mb": { type: "string" },
    "large-mb": { type: "string" },
    "dkim-large": { type: "boolean", default: false },
    only: { type: "string" },
    "nodemailer-runtime": { type: "string" },
    "sink-runtime": { type: "string" },
    "raw-runtime": { type: "string" },
    "client-node": { type: "string" },
    json: { type: "string" },
    help: { type: "boolean", default: false },
  },
});

if (flags.help) {
  console.log(
    "Usage: deno task bench [--smoke] [--runs N] [--messages N] [--latency-messages N]\n" +
      "  [--attachment-mb N] [--large-mb N (0: no D-large)] [--dkim-large (D-large signed)]\n" +
      "  [--only A,B,...] [--nodemailer-runtime node|deno]\n" +
      "  [--sink-runtime node|deno] [--raw-runtime node|deno] [--client-node PATH]\n" +
      "  [--json FILE]",
  );
  Deno.exit(0);
}

const smoke = flags.smoke;
const runs = Number(flags.runs ?? (smoke ? 1 : 5));
const messages = Number(flags.messages ?? (smoke ? 50 : 2000));
const latencyMessages = Number(flags["latency-messages"] ?? (smoke ? 20 : 500));
const attachmentMb = Number(flags["attachment-mb"] ?? (smoke ? 2 : 50));
const largeMb = Number(flags["large-mb"] ?? (smoke ? 0 : 500));
const only = flags.only ? new Set(flags.only.split(",").map((s) => s.trim())) : undefined;
const here = new URL(".", import.meta.url);
const certs = new URL("../tests/fixtures/certs/", import.meta.url);

type Impl = "postie" | "postie-node" | "nodemailer" | "raw";
const IMPLS: readonly Impl[] = ["postie", "postie-node", "nodemailer", "raw"];

/** What a scenario asks of postie, each as a ratio against a client in the same run. */
interface Target {
  /** Speed at least this many times nodemailer's. */
  readonly speed?: number;
  /** CPU time per message at most this many times nodemailer's. */
  readonly cpu?: number;
  /** RSS growth during the timed window at most this many megabytes. */
  readonly rssGrowthMb?: number;
  /** Peak RSS no higher than nodemailer's. */
  readonly peakRss?: boolean;
  /** Speed at least this many times the raw client's. */
  readonly raw?: number;
}

/** One scenario: the sink's flags, the clients' flags, and what to compare. */
interface Scenario {
  readonly id: string;
  readonly title: string;
  readonly sink?: readonly string[];
  readonly client: readonly string[];
  /** Messages in the timed window. */
  readonly messages: number;
  /** How postie on Deno is judged. */
  readonly target?: Target;
  /** How postie on Node (the npm build) is judged. */
  readonly nodeTarget?: Target;
  /** Whether the raw client can play it (plain SMTP, one connection, sending). */
  readonly raw?: boolean;
  /** `MB/s` rows measure the attachment's megabytes per second instead of messages. */
  readonly unit: "msgs/s" | "MB/s";
  /** The attachment's size in megabytes, for `MB/s` rows. */
  readonly megabytes?: number;
}

/** The warm-up of `A-cold`: a fresh process, its first sends timed. */
const coldWarmup = (n: number) => Math.min(200, Math.ceil(n / 10));
const tlsFlags = (mode: string) => [
  `--tls=${mode}`,
  `--cert=${new URL("server.pem", certs).pathname}`,
  `--key=${new URL("server.key", certs).pathname}`,
];
const caFlag = `--ca=${new URL("ca.pem", certs).pathname}`;

/** The PEM files of the DKIM rows. */
interface DkimKeys {
  readonly rsa: string;
  readonly ed25519: string;
}

function scenarios(attachment: string, large: string | undefined, keys: DkimKeys): Scenario[] {
  /**
   * Sends before the timed window of the small-message scenarios: as many as it times, so that the
   * window measures each client in its steady state. Node 20's V8 (no Maglev) optimises a function
   * only after many calls: in a fresh process, postie's npm build took about 0.35-0.5 ms per
   * message over its first ~1,600 sends and 0.10-0.15 ms from then on, and even the raw client ran
   * about 2x slower at first (timelines of 200 sends each, 2026-12-03). `A-cold` keeps the first
   * sends of a fresh process in view.
   */
  const small = [`--messages=${messages}`, `--warmup=${messages}`];
  const sign = (algorithm: "rsa" | "ed25519") => [
    `--dkim=${algorithm}`,
    `--dkim-key=${keys[algorithm]}`,
    `--dkim-rsa-key=${keys.rsa}`,
  ];
  const slow = [`--messages=${latencyMessages}`, `--warmup=${Math.min(20, latencyMessages)}`];
  return [
    {
      id: "A",
      title: `${messages} small messages, 1 connection, each send awaited`,
      client: [...small],
      messages,
      target: { speed: 3, cpu: 0.3, raw: 0.6 },
      nodeTarget: { speed: 4, cpu: 0.3 },
      raw: true,
      unit: "msgs/s",
    },
    {
      id: "A-cold",
      title: `A in a fresh process: ${coldWarmup(messages)} sends, then ${messages} timed`,
      client: [`--messages=${messages}`, `--warmup=${coldWarmup(messages)}`],
      messages,
      raw: true,
      unit: "msgs/s",
    },
    {
      id: "A2",
      title: "A with every send queued at once",
      client: [...small, "--order=queued"],
      messages,
      raw: true,
      unit: "msgs/s",
    },
    {
      id: "A-data",
      title: "A without CHUNKING (DATA for both)",
      sink: ["--no-chunking"],
      client: [...small],
      messages,
      raw: true,
      unit: "msgs/s",
    },
    {
      id: "S-rsa",
      title: "A, every message DKIM-signed with RSA-2048 (both)",
      client: [...small, ...sign("rsa")],
      messages,
      unit: "msgs/s",
    },
    {
      id: "S-ed25519",
      title: "A, DKIM-signed: postie with Ed25519, nodemailer with RSA-2048",
      client: [...small, ...sign("ed25519")],
      messages,
      unit: "msgs/s",
    },
    {
      id: "B",
      title: "A with 10 recipients each",
      client: [...small, "--recipients=10"],
      messages,
      raw: true,
      unit: "msgs/s",
    },
    {
      id: "C",
      title: `${messages} messages queued at once over 5 connections (pools)`,
      client: [...small, "--connections=5", "--order=queued"],
      messages,
      unit: "msgs/s",
    },
    {
      id: "C2",
      title: "C with 2 ms per server reply",
      sink: ["--delay-ms=2"],
      client: [...small, "--connections=5", "--order=queued"],
      messages,
      unit: "msgs/s",
    },
    {
      id: "D",
      title: `1 message with a ${attachmentMb} MB attachment (file), 1 connection`,
      client: [`--messages=1`, `--warmup=1`, `--attachment=${attachment}`],
      messages: 1,
      // Time <= 0.6x nodemailer's is speed >= 1/0.6; on Node, time <= 0.4x is speed >= 2.5.
      target: { speed: 1.67, rssGrowthMb: 32 },
      nodeTarget: { speed: 2.5, peakRss: true },
      raw: true,
      unit: "MB/s",
      megabytes: attachmentMb,
    },
    {
      id: "D-signed",
      title: `D, DKIM-signed with RSA-2048 (postie reads the file twice, nodemailer holds it)`,
      client: [`--messages=1`, `--warmup=1`, `--attachment=${attachment}`, ...sign("rsa")],
      messages: 1,
      target: { rssGrowthMb: 32 },
      unit: "MB/s",
      megabytes: attachmentMb,
    },
    ...(large && flags["dkim-large"]
      ? [{
        id: "D-large-signed",
        title: `D-signed with a ${largeMb} MB attachment: memory must not grow with size`,
        client: [`--messages=1`, `--warmup=1`, `--attachment=${large}`, ...sign("rsa")],
        messages: 1,
        target: { rssGrowthMb: 32 },
        unit: "MB/s" as const,
        megabytes: largeMb,
      }]
      : []),
    ...(large
      ? [{
        id: "D-large",
        title: `D with a ${largeMb} MB attachment: memory must not grow with size`,
        client: [`--messages=1`, `--warmup=1`, `--attachment=${large}`],
        messages: 1,
        target: { speed: 1.67, rssGrowthMb: 32 },
        raw: true,
        unit: "MB/s" as const,
        megabytes: largeMb,
      }]
      : []),
    {
      id: "E",
      title: `${latencyMessages} messages, 2 ms per server reply, each send awaited`,
      sink: ["--delay-ms=2"],
      client: [...slow],
      messages: latencyMessages,
      target: { speed: 2 },
      raw: true,
      unit: "msgs/s",
    },
    {
      id: "E2",
      title: "E with every send queued at once on 1 connection",
      sink: ["--delay-ms=2"],
      client: [...slow, "--order=queued"],
      messages: latencyMessages,
      target: { speed: 10 },
      nodeTarget: { speed: 15 },
      raw: true,
      unit: "msgs/s",
    },
    {
      id: "F-starttls",
      title: "A over STARTTLS with AUTH PLAIN",
      sink: tlsFlags("starttls"),
      client: [...small, "--tls=starttls", caFlag, "--auth"],
      messages,
      unit: "msgs/s",
    },
    {
      id: "F-implicit",
      title: "A over implicit TLS with AUTH PLAIN",
      sink: tlsFlags("implicit"),
      client: [...small, "--tls=implicit", caFlag, "--auth"],
      messages,
      unit: "msgs/s",
    },
    {
      id: "MIME",
      title: `Composing the ${attachmentMb} MB attachment message alone (no network)`,
      client: ["--task=mime", `--attachment=${attachment}`],
      messages: 1,
      target: { speed: 1.5 },
      unit: "MB/s",
      megabytes: attachmentMb,
    },
  ];
}

/** A child process whose stdout is read line by line. */
class Child {
  #process: Deno.ChildProcess;
  #lines: AsyncIterator<string>;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly name: string;

  constructor(name: string, command: string, args: string[]) {
    this.name = name;
    this.#process = new Deno.Command(command, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#writer = this.#process.stdin.getWriter();
    this.#lines = lines(this.#process.stdout)[Symbol.asyncIterator]();
  }

  /** The next JSON line the process prints. */
  async next<T>(timeoutMs = 300_000): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.name}: no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      const line = await Promise.race([this.#lines.next(), timeout]);
      if (line.done) throw new Error(`${this.name} ended without an answer`);
      return JSON.parse(line.value) as T;
    } finally {
      clearTimeout(timer);
    }
  }

  async send(line: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(line + "\n"));
  }

  /** Closes stdin and waits for the exit (killing the process after a grace period). */
  async end(): Promise<void> {
    await this.#writer.close().catch(() => {});
    const timer = setTimeout(() => this.kill(), 10_000);
    await this.#process.status;
    clearTimeout(timer);
    // Drain whatever is left so that the pipe is closed.
    while (!(await this.#lines.next()).done) { /* ignore */ }
  }

  kill(): void {
    try {
      this.#process.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    buffer += text;
    let lf;
    while ((lf = buffer.indexOf("\n")) !== -1) {
      const line = buffer.slice(0, lf).trim();
      buffer = buffer.slice(lf + 1);
      if (line.startsWith("{")) yield line;
    }
  }
}

interface ClientResult {
  impl: Impl;
  runtime: string;
  messages: number;
  ms: number;
  cpuMs: number;
  cpuSystemMs: number;
  rssStart: number;
  rssPeak: number;
  peakMethod: string;
  bytes?: number;
}

interface SinkStats {
  messages: number;
  bytes: number;
  reads: number;
  connections: number;
  maxOpen: number;
  cpuMs: number;
}

interface RunResult extends ClientResult {
  sink?: SinkStats;
}

/** How each program is started. */
interface Launchers {
  sink: [string, string[]];
  postie: [string, string[]];
  /** postie's npm build under Node; undefined without node or the build. */
  "postie-node": [string, string[]] | undefined;
  nodemailer: [string, string[]];
  /** The raw client; undefined when it cannot be bundled. */
  raw: [string, string[]] | undefined;
  nodemailerRuntime: string;
  sinkRuntime: string;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The newest modification time of the files below `dir` (and of `dir` itself), in ms. */
async function newestChange(dir: string): Promise<number> {
  const info = await Deno.stat(dir);
  let newest = info.mtime?.getTime() ?? 0;
  if (!info.isDirectory) return newest;
  for await (const entry of Deno.readDir(dir)) {
    newest = Math.max(newest, await newestChange(`${dir}/${entry.name}`));
  }
  return newest;
}

/**
 * Whether the npm build at `entry` is missing or older than postie's sources: the postie-on-Node
 * rows must measure the code of this checkout, not an earlier build left in `npm/`.
 */
async function npmBuildIsStale(entry: string): Promise<boolean> {
  if (!await exists(entry)) return true;
  const built = (await Deno.stat(entry)).mtime?.getTime() ?? 0;
  const root = new URL("..", import.meta.url).pathname;
  const sources = Math.max(await newestChange(`${root}src`), await newestChange(`${root}mod.ts`));
  return sources > built;
}

async function commandWorks(command: string, args: string[]): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(command, { args, stdout: "null", stderr: "null" })
      .output();
    return success;
  } catch {
    return false;
  }
}

/**
 * Bundles a script for Node with `deno bundle`; undefined when that fails. `external` packages
 * stay imports, for Node to load from `node_modules`.
 */
async function bundle(
  script: string,
  dir: string,
  external: readonly string[] = [],
): Promise<string | undefined> {
  const out = `${dir}/${script.replace(/\.ts$/, ".mjs")}`;
  const { success, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform=deno",
      ...external.flatMap((name) => ["--external", name]),
      "-o",
      out,
      new URL(script, here).pathname,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    console.error(`deno bundle ${script} failed:\n${new TextDecoder().decode(stderr)}`);
    return undefined;
  }
  return out;
}

/**
 * The nodemailer client for Node, loading nodemailer from its package files as an application
 * does (postie's npm build is loaded the same way), not bundled into the client script: the
 * bundle links `node_modules/nodemailer` beside it to the package in Deno's npm cache. Falls
 * back to nodemailer bundled in when the package cannot be found there.
 */
async function nodemailerClient(dir: string): Promise<string | undefined> {
  const info = async (args: string[]) => {
    const { success, stdout } = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", ...args],
      stdout: "piped",
      stderr: "null",
    }).output();
    return success ? JSON.parse(new TextDecoder().decode(stdout)) : undefined;
  };
  const script = new URL("_bench_nodemailer.ts", here).pathname;
  const cache: string | undefined = (await info([]))?.npmCache;
  // The version the script's import resolves to (other versions may be in the graph too).
  const modules: { specifier: string }[] = (await info([script]))?.modules ?? [];
  const version = modules.map((m) => /^npm:\/nodemailer@([^/]+)$/.exec(m.specifier)?.[1])
    .find((v) => v !== undefined);
  const packageDir = `${cache}/registry.npmjs.org/nodemailer/${version}`;
  if (cache && version && await exists(`${packageDir}/package.json`)) {
    await Deno.mkdir(`${dir}/node_modules`, { recursive: true });
    await Deno.symlink(packageDir, `${dir}/node_modules/nodemailer`);
    const out = await bundle("_bench_nodemailer.ts", dir, ["nodemailer"]);
    if (out) return out;
  }
  console.error("nodemailer's package not found in Deno's npm cache: bundled into its client");
  return await bundle("_bench_nodemailer.ts", dir);
}

async function launchers(dir: string): Promise<Launchers> {
  const deno = (script: string): [string, string[]] => [
    Deno.execPath(),
    ["run", "-A", new URL(script, here).pathname],
  ];
  const nodeWanted = (flag: string | undefined) => flag !== "deno";
  const haveNode = await commandWorks("node", ["--version"]);
  // The Node binary of the clients (postie's npm build, nodemailer, the raw client).
  const clientNode = flags["client-node"] ?? "node";
  if (flags["client-node"] && !await commandWorks(clientNode, ["--version"])) {
    throw new Error(`--client-node ${clientNode}: cannot run it`);
  }
  let sink = deno("_bench_sink.ts");
  let nodemailer = deno("_bench_nodemailer.ts");
  let sinkRuntime = "deno";
  let nodemailerRuntime = "deno";
  if (haveNode && nodeWanted(flags["sink-runtime"])) {
    const out = await bundle("_bench_sink.ts", dir);
    if (out) [sink, sinkRuntime] = [["node", [out]], "node"];
  }
  if (haveNode && nodeWanted(flags["nodemailer-runtime"])) {
    const out = await nodemailerClient(dir);
    if (out) [nodemailer, nodemailerRuntime] = [[clientNode, [out]], "node"];
  }
  let raw: [string, string[]] | undefined = deno("_bench_raw.ts");
  if (haveNode && nodeWanted(flags["raw-runtime"])) {
    const out = await bundle("_bench_raw.ts", dir);
    raw = out ? [clientNode, [out]] : undefined;
  }
  let postieNode: [string, string[]] | undefined;
  if (haveNode) {
    const entry = new URL("../npm/esm/mod.js", here).pathname;
    if (await npmBuildIsStale(entry)) {
      console.error(
        "building the npm package for the postie-on-Node rows (none, or older than src/)",
      );
      const { success } = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("build_npm.ts", here).pathname, "--no-test"],
        stdout: "null",
      }).output();
      if (!success) console.error("deno task build:npm failed: no postie-on-Node rows");
    }
    const out = await exists(entry) ? await bundle("_bench_postie_node.ts", dir) : undefined;
    if (out) {
      // Read by _bench_postie_node.ts in the child processes, which inherit it.
      Deno.env.set("POSTIE_MODULE", entry);
      postieNode = [clientNode, [out]];
    }
  }
  if (!haveNode) console.error("node not found: the sink and nodemailer run under Deno");
  return {
    sink,
    postie: deno("_bench_postie.ts"),
    "postie-node": postieNode,
    nodemailer,
    raw,
    nodemailerRuntime,
    sinkRuntime,
  };
}

async function runOnce(scenario: Scenario, impl: Impl, launch: Launchers): Promise<RunResult> {
  let sink: Child | undefined;
  let client: Child | undefined;
  try {
    const clientArgs = [...scenario.client];
    if (!scenario.client.includes("--task=mime")) {
      const [command, args] = launch.sink;
      sink = new Child("sink", command, [...args, ...(scenario.sink ?? [])]);
      const { port } = await sink.next<{ port: number }>(30_000);
      clientArgs.push(`--port=${port}`);
    }
    const [command, args] = launch[impl]!;
    client = new Child(impl, command, [...args, ...clientArgs]);
    await client.next<{ ready: true }>();
    if (sink) {
      await sink.send("reset");
      await sink.next<{ reset: true }>(10_000);
    }
    await client.send("go");
    const result = await client.next<ClientResult>();
    await client.end();
    client = undefined;
    let stats: SinkStats | undefined;
    if (sink) {
      await sink.send("stats");
      stats = await sink.next<SinkStats>(10_000);
      await sink.end();
      sink = undefined;
    }
    return stats ? { ...result, sink: stats } : result;
  } finally {
    client?.kill();
    sink?.kill();
    await client?.end().catch(() => {});
    await sink?.end().catch(() => {});
  }
}

function median(numbers: number[]): number {
  const sorted = [...numbers].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The medians of one implementation's runs of one scenario. */
interface Summary {
  runtime: string;
  speed: number;
  ms: number;
  cpuPerMessage: number;
  systemPerMessage: number;
  readsPerMessage: number | undefined;
  sinkCpuPerMessage: number | undefined;
  rssGrowthMb: number;
  rssPeakMb: number;
}

const MB = 1024 * 1024;

function summarise(scenario: Scenario, results: RunResult[]): Summary {
  const speed = results.map((r) =>
    scenario.unit === "MB/s"
      ? (scenario.megabytes ?? 0) / (r.ms / 1000)
      : r.messages / (r.ms / 1000)
  );
  const perSinkMessage = (pick: (s: SinkStats) => number) =>
    results.flatMap((r) => r.sink ? [pick(r.sink) / Math.max(1, r.sink.messages)] : []);
  const reads = perSinkMessage((s) => s.reads);
  const sinkCpu = perSinkMessage((s) => s.cpuMs);
  return {
    runtime: results[0]!.runtime,
    speed: median(speed),
    ms: median(results.map((r) => r.ms)),
    cpuPerMessage: median(results.map((r) => r.cpuMs / r.messages)),
    systemPerMessage: median(results.map((r) => r.cpuSystemMs / r.messages)),
    readsPerMessage: reads.length ? median(reads) : undefined,
    sinkCpuPerMessage: sinkCpu.length ? median(sinkCpu) : undefined,
    rssGrowthMb: median(results.map((r) => (r.rssPeak - r.rssStart) / MB)),
    rssPeakMb: median(results.map((r) => r.rssPeak / MB)),
  };
}

function fixed(value: number | undefined, digits: number): string {
  return value === undefined ? "-" : value.toFixed(digits);
}

/** Whether `postie` meets `target`, judged against nodemailer and the raw client. */
function verdict(
  target: Target | undefined,
  postie: Summary | undefined,
  nodemailer: Summary,
  raw: Summary | undefined,
): string {
  if (!target || !postie) return "";
  const notes: string[] = [];
  const judge = (what: string, met: boolean) => notes.push(`${what}: ${met ? "met" : "MISSED"}`);
  if (target.speed !== undefined) {
    judge(`speed ≥ ${target.speed}×`, postie.speed / nodemailer.speed >= target.speed);
  }
  if (target.cpu !== undefined) {
    judge(`CPU ≤ ${target.cpu}×`, postie.cpuPerMessage / nodemailer.cpuPerMessage <= target.cpu);
  }
  if (target.rssGrowthMb !== undefined) {
    judge(`RSS growth ≤ ${target.rssGrowthMb} MB`, postie.rssGrowthMb <= target.rssGrowthMb);
  }
  if (target.peakRss) judge("peak RSS ≤ nodemailer's", postie.rssPeakMb <= nodemailer.rssPeakMb);
  if (target.raw !== undefined && raw) {
    judge(`speed ≥ ${target.raw}× raw`, postie.speed / raw.speed >= target.raw);
  }
  return notes.join("; ");
}

/** Writes an RSA-2048 and an Ed25519 key (PKCS#8 PEM, made with Web Crypto) into `dir`. */
async function dkimKeys(dir: string): Promise<DkimKeys> {
  const write = async (name: string, pair: CryptoKeyPair) => {
    const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
    const base64 = btoa(String.fromCharCode(...der)).replace(/.{64}/g, "$&\n");
    const path = `${dir}/${name}.pem`;
    await Deno.writeTextFile(
      path,
      `-----BEGIN PRIVATE KEY-----\n${base64}\n-----END PRIVATE KEY-----\n`,
    );
    return path;
  };
  const rsa = await crypto.subtle.generateKey(
    {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    true,
    ["sign", "verify"],
  ) as CryptoKeyPair;
  const ed = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  return {
    rsa: await write("dkim-rsa", rsa),
    ed25519: await write("dkim-ed25519", ed as CryptoKeyPair),
  };
}

async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "postie_bench_" });
  try {
    const launch = await launchers(dir);
    const attachment = `${dir}/attachment.bin`;
    const data = new Uint8Array(attachmentMb * MB);
    for (let offset = 0; offset < data.length; offset += 65536) {
      crypto.getRandomValues(data.subarray(offset, Math.min(offset + 65536, data.length)));
    }
    await Deno.writeFile(attachment, data);
    let large: string | undefined;
    if (largeMb > 0 && (!only || only.has("D-large") || only.has("D-large-signed"))) {
      // Written a megabyte at a time: the benchmark itself must not hold it in memory.
      large = `${dir}/large.bin`;
      using file = await Deno.open(large, { write: true, create: true });
      const chunk = data.subarray(0, Math.min(MB, data.length));
      for (let written = 0; written < largeMb * MB; written += chunk.length) {
        crypto.getRandomValues(chunk.subarray(0, 65536));
        for (let offset = 0; offset < chunk.length;) {
          offset += await file.write(chunk.subarray(offset));
        }
      }
    }
    const keys = await dkimKeys(dir);
    const chosen = scenarios(attachment, large, keys).filter((s) => !only || only.has(s.id));
    console.log(
      `postie under deno ${Deno.version.deno}` +
        `${launch["postie-node"] ? " and under node (npm build)" : ""}; ` +
        `nodemailer under ${launch.nodemailerRuntime}; ` +
        `sink under ${launch.sinkRuntime}; ${runs} run(s) per scenario and client, medians; ` +
        `${navigator.hardwareConcurrency} CPUs`,
    );
    const all: Record<string, Record<Impl, RunResult[]>> = {};
    const rows: string[] = [];
    const ratios: string[] = [];
    for (const scenario of chosen) {
      const impls = IMPLS.filter((impl) =>
        launch[impl] !== undefined && (impl !== "raw" || scenario.raw)
      );
      const results: Record<Impl, RunResult[]> = {
        postie: [],
        "postie-node": [],
        nodemailer: [],
        raw: [],
      };
      for (let run = 0; run < runs; run++) {
        for (const impl of impls) results[impl].push(await runOnce(scenario, impl, launch));
      }
      all[scenario.id] = results;
      const summaries = new Map(impls.map((impl) => [impl, summarise(scenario, results[impl])]));
      for (const [impl, s] of summaries) {
        rows.push(
          `| ${scenario.id} | ${impl} (${s.runtime}) | ${fixed(s.speed, 0)} ${scenario.unit} | ` +
            `${fixed(s.ms, 0)} | ${fixed(s.cpuPerMessage, 3)} (${
              fixed(s.systemPerMessage, 3)
            }) | ` +
            `${fixed(s.readsPerMessage, 2)} | ${fixed(s.sinkCpuPerMessage, 3)} | ` +
            `${fixed(s.rssPeakMb, 0)} | ${fixed(s.rssGrowthMb, 1)} |`,
        );
      }
      const postie = summaries.get("postie")!;
      const nodemailer = summaries.get("nodemailer")!;
      const onNode = summaries.get("postie-node");
      const raw = summaries.get("raw");
      const times = (a: number | undefined, b: number | undefined) =>
        a === undefined || b === undefined ? "-" : `${fixed(a / b, 2)}×`;
      const ratio = `| ${scenario.id} | ${scenario.title} | ` +
        `${times(postie.speed, nodemailer.speed)} | ` +
        `${times(postie.cpuPerMessage, nodemailer.cpuPerMessage)} | ` +
        `${times(postie.speed, raw?.speed)} | ` +
        `${times(onNode?.speed, nodemailer.speed)} | ` +
        `${times(onNode?.cpuPerMessage, nodemailer.cpuPerMessage)} | ` +
        `${verdict(scenario.target, postie, nodemailer, raw)} | ` +
        `${verdict(scenario.nodeTarget, onNode, nodemailer, raw)} |`;
      ratios.push(ratio);
      console.error(`done ${scenario.id}: ${ratio}`);
    }
    console.log(
      "\n| scenario | client | throughput | ms | client CPU ms/msg (of it kernel) | sink reads/msg | " +
        "sink CPU ms/msg | peak RSS MB | RSS growth MB |",
    );
    console.log("|---|---|---|---|---|---|---|---|---|");
    for (const row of rows) console.log(row);
    console.log(
      "\n| scenario | what | postie (Deno)/nodemailer speed | CPU/msg ratio | " +
        "postie (Deno)/raw speed | postie (Node)/nodemailer speed | CPU/msg ratio | " +
        "target (Deno) | target (Node) |",
    );
    console.log("|---|---|---|---|---|---|---|---|---|");
    for (const row of ratios) console.log(row);
    if (!only || only.has("outbox")) {
      // The outbox rows (scripts/_bench_outbox.ts): enqueue() to accepted at the sink.
      const startSink = async () => {
        const [command, args] = launch.sink;
        const sink = new Child("sink", command, args);
        const { port } = await sink.next<{ port: number }>(30_000);
        return {
          port,
          accepted: async () => {
            await sink.send("stats");
            return (await sink.next<SinkStats>(10_000)).messages;
          },
          end: () => sink.end(),
        };
      };
      console.log(await outboxBench(startSink, messages));
    }
    if (flags.json) await Deno.writeTextFile(flags.json, JSON.stringify(all, null, 2));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

await main();
