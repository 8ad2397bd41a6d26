/**
 * `@postie/smtp/cli`: the `postie` command line. On Deno, run it straight from JSR, or install it
 * as `postie`:
 *
 * ```sh
 * deno run -A jsr:@postie/smtp/cli send    # a demo: an embedded local server receives it
 * deno install -g -A -n postie jsr:@postie/smtp/cli
 * POSTIE_PASSWORD=... postie send --server smtp.example.com --user me@example.com \
 *   --from me@example.com --to you@example.com --subject Hi --text @body.txt
 * ```
 *
 * Run as the main module, it hands Deno's standard streams, the environment and the working
 * directory, a password prompt without echo (raw mode), Ctrl-C and the embedded demo server to
 * the runtime-neutral {@linkcode main}; imported, it only exports {@linkcode main} and its types, to run the command
 * line in process. (The npm package's `postie` bin is `node.ts`, the same for Node.js.)
 *
 * @example Run it in process
 * ```ts
 * import { EXIT_OK, main } from "@postie/smtp/cli";
 * import assert from "node:assert/strict";
 *
 * let out = "";
 * const write = (data: string | Uint8Array) => {
 *   out += typeof data === "string" ? data : new TextDecoder().decode(data);
 * };
 * const code = await main(
 *   ["send", "--dry-run", "--from", "a@example.com", "--to", "b@example.com", "--subject", "Hi"],
 *   { stdout: { write }, stderr: { write }, env: {} },
 * );
 * assert.equal(code, EXIT_OK);
 * assert.match(out, /^Subject: Hi\r$/m);
 * ```
 *
 * @module
 */

import { startDemoServer } from "./_demo_server.ts";
import { type CliInput, type CliIo, type CliOutput, EXIT_INTERRUPTED, main } from "./main.ts";

export * from "./main.ts";

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

/** The working directory, unless reading it is not permitted. */
function workingDirectory(): Pick<CliIo, "cwd"> {
  try {
    return { cwd: Deno.cwd() };
  } catch {
    return {};
  }
}

/**
 * The {@linkcode CliIo} of this Deno process.
 *
 * @param extra The abort signal.
 * @returns Standard streams, environment and the embedded demo server.
 */
function denoIo(extra: Pick<CliIo, "signal">): CliIo {
  return {
    stdout: output(Deno.stdout),
    stderr: output(Deno.stderr),
    stdin: input(),
    env: Deno.env.toObject(),
    ...workingDirectory(),
    program: "postie",
    startLocalServer: startDemoServer,
    ...extra,
  };
}

/**
 * Runs the command line with Ctrl-C wired to abort the send (a second Ctrl-C exits at once).
 *
 * @param args The arguments after the program name.
 * @returns The exit code.
 */
async function runDeno(args: readonly string[]): Promise<number> {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) Deno.exit(EXIT_INTERRUPTED);
    controller.abort(new DOMException("Interrupted", "AbortError"));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    return await main(args, denoIo({ signal: controller.signal }));
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
  }
}

if (import.meta.main) {
  Deno.exit(await runDeno(Deno.args));
}
