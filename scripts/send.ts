/**
 * `postie` on Deno, from a checkout: `deno run -A scripts/send.ts send ...` (or `check`).
 * Hands standard streams, the environment, a password prompt without echo (raw mode) and Ctrl-C
 * to the runtime-neutral `main()` of `src/cli/main.ts`.
 *
 * Without `--server`, the message goes to an embedded local SMTP server (npm `smtp-server` on
 * 127.0.0.1 with the test certificate, STARTTLS and a demo account), which then shows what it
 * received: a real, encrypted, authenticated send with no setup.
 *
 * @module
 */

import {
  type CliInput,
  type CliIo,
  type CliOutput,
  EXIT_INTERRUPTED,
  type LocalServer,
  main,
} from "../src/cli/main.ts";

function output(file: typeof Deno.stdout | typeof Deno.stderr): CliOutput {
  const encoder = new TextEncoder();
  const isTerminal = file.isTerminal();
  let columns: number | undefined;
  try {
    columns = isTerminal ? Deno.consoleSize().columns : undefined;
  } catch {
    columns = undefined;
  }
  return {
    async write(data) {
      const bytes = typeof data === "string" ? encoder.encode(data) : data;
      let offset = 0;
      while (offset < bytes.length) offset += await file.write(bytes.subarray(offset));
    },
    isTerminal,
    ...(columns !== undefined ? { columns } : {}),
  };
}

/**
 * Reads a line from the terminal in raw mode, so that nothing is echoed.
 *
 * @param prompt Shown on standard error.
 * @returns The password, or `undefined` on Ctrl-C (or Ctrl-D on an empty line).
 */
async function readPassword(prompt: string): Promise<string | undefined> {
  const encoder = new TextEncoder();
  await Deno.stderr.write(encoder.encode(prompt));
  const bytes: number[] = [];
  const buffer = new Uint8Array(256);
  Deno.stdin.setRaw(true);
  try {
    while (true) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) return bytes.length > 0 ? decode(bytes) : undefined;
      for (const byte of buffer.subarray(0, n)) {
        if (byte === 0x0d || byte === 0x0a) return decode(bytes);
        if (byte === 0x03) return undefined; // Ctrl-C
        if (byte === 0x04) { // Ctrl-D
          if (bytes.length === 0) return undefined;
          return decode(bytes);
        }
        if (byte === 0x7f || byte === 0x08) {
          // Backspace: drop the last UTF-8 character (its continuation bytes first).
          while (bytes.length > 0 && ((bytes.pop()! & 0xc0) === 0x80));
          continue;
        }
        if (byte === 0x15) { // Ctrl-U: start over
          bytes.length = 0;
          continue;
        }
        if (byte < 0x20) continue;
        bytes.push(byte);
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(encoder.encode("\n"));
  }
}

function decode(bytes: number[]): string {
  return new TextDecoder().decode(new Uint8Array(bytes));
}

function input(): CliInput {
  return {
    isTerminal: Deno.stdin.isTerminal(),
    readAll: async () => new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer()),
    readPassword,
  };
}

/**
 * The {@linkcode CliIo} of this Deno process.
 *
 * @param extra The program name for `--help`, an embedded server, an abort signal.
 * @returns Standard streams and environment.
 */
function denoIo(
  extra: Pick<CliIo, "program" | "startLocalServer" | "signal"> = {},
): CliIo {
  return {
    stdout: output(Deno.stdout),
    stderr: output(Deno.stderr),
    stdin: input(),
    env: Deno.env.toObject(),
    ...extra,
  };
}

/**
 * Runs the command line with Ctrl-C wired to abort the send (a second Ctrl-C exits at once).
 *
 * @param args The arguments after the program name.
 * @param extra The program name for `--help` and an embedded server.
 * @returns The exit code.
 */
async function runDeno(
  args: readonly string[],
  extra: Pick<CliIo, "program" | "startLocalServer"> = {},
): Promise<number> {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) Deno.exit(EXIT_INTERRUPTED);
    controller.abort(new DOMException("Interrupted", "AbortError"));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    return await main(args, denoIo({ ...extra, signal: controller.signal }));
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
  }
}

const DEMO_USER = "demo";
const DEMO_PASSWORD = "demo-password";

/** Starts smtp-server with STARTTLS and AUTH PLAIN/LOGIN for the demo account. */
async function startLocalServer(): Promise<LocalServer> {
  // Loaded only when needed: the npm package is a development dependency.
  const { startSmtpServer, testCa } = await import("../tests/_helpers/smtp_server.ts");
  const server = await startSmtpServer({
    authMethods: ["PLAIN", "LOGIN"],
    authOptional: false,
    size: 25 * 1024 * 1024,
    onAuth(auth, _session, callback) {
      if (auth.username === DEMO_USER && auth.password === DEMO_PASSWORD) {
        callback(null, { user: auth.username });
      } else {
        callback(new Error("Invalid username or password"));
      }
    },
  });
  return {
    hostname: "localhost",
    port: server.port,
    caCert: testCa,
    username: DEMO_USER,
    password: DEMO_PASSWORD,
    report() {
      if (server.received.length === 0) return "(nothing)\n";
      return server.received.map((m) =>
        `envelope: ${m.from} -> ${m.to.join(", ")} (TLS: ${m.secure}, logged in as: ` +
        `${m.user ?? "nobody"})\n${m.text}${m.text.endsWith("\n") ? "" : "\n"}`
      ).join("\n");
    },
    close: () => server.close(),
  };
}

Deno.exit(
  await runDeno(Deno.args, { program: "deno run -A scripts/send.ts", startLocalServer }),
);
