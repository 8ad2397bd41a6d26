#!/usr/bin/env node
/**
 * `postie` on Node.js (the npm package's `bin`): hands `node:process` standard streams, the
 * environment and the working directory, a password prompt without echo (raw mode), Ctrl-C and
 * the embedded demo server (for `send` and `check` without `--server`) to {@linkcode main}.
 * Only `node:` modules are used, so it runs wherever the compiled package does.
 *
 * ```sh
 * npx @postie/smtp send --server smtp.example.com --user me@example.com \
 *   --from me@example.com --to you@example.com --subject Hi --text Hello
 * ```
 *
 * @module
 */

import process from "node:process";
import type { Readable, Writable } from "node:stream";
import { startDemoServer } from "./_demo_server.ts";
import { type CliInput, type CliIo, type CliOutput, EXIT_INTERRUPTED, main } from "./main.ts";

function output(stream: Writable & { isTTY?: boolean; columns?: number }): CliOutput {
  return {
    write(data) {
      return new Promise<void>((resolve) => {
        // An error (e.g. EPIPE when the reader went away) must not hang the program.
        stream.write(data, () => resolve());
      });
    },
    isTerminal: stream.isTTY === true,
    ...(stream.isTTY && stream.columns ? { columns: stream.columns } : {}),
  };
}

type Stdin = Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

/**
 * Reads a line from the terminal in raw mode, so that nothing is echoed.
 *
 * @returns The password, or `undefined` on Ctrl-C (or Ctrl-D on an empty line).
 */
function readPassword(stdin: Stdin, prompt: string): Promise<string | undefined> {
  process.stderr.write(prompt);
  const bytes: number[] = [];
  const decode = () => new TextDecoder().decode(new Uint8Array(bytes));
  return new Promise<string | undefined>((resolve) => {
    const finish = (value: string | undefined) => {
      stdin.off("data", onData);
      stdin.off("end", onEnd);
      stdin.setRawMode?.(false);
      stdin.pause();
      process.stderr.write("\n");
      resolve(value);
    };
    const onEnd = () => finish(bytes.length > 0 ? decode() : undefined);
    const onData = (chunk: Uint8Array) => {
      for (const byte of chunk) {
        if (byte === 0x0d || byte === 0x0a) return finish(decode());
        if (byte === 0x03) return finish(undefined); // Ctrl-C
        if (byte === 0x04) return finish(bytes.length === 0 ? undefined : decode()); // Ctrl-D
        if (byte === 0x7f || byte === 0x08) {
          // Backspace: drop the last UTF-8 character (its continuation bytes first).
          while (bytes.length > 0 && ((bytes.pop()! & 0xc0) === 0x80));
        } else if (byte === 0x15) {
          bytes.length = 0; // Ctrl-U: start over
        } else if (byte >= 0x20) {
          bytes.push(byte);
        }
      }
    };
    stdin.setRawMode?.(true);
    stdin.on("data", onData);
    stdin.on("end", onEnd);
    stdin.resume();
  });
}

function input(stdin: Stdin): CliInput {
  return {
    isTerminal: stdin.isTTY === true,
    async readAll() {
      const chunks: Uint8Array[] = [];
      for await (const chunk of stdin) {
        chunks.push(typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk);
      }
      const all = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
      let offset = 0;
      for (const chunk of chunks) {
        all.set(chunk, offset);
        offset += chunk.byteLength;
      }
      return all;
    },
    readPassword: (prompt) => readPassword(stdin, prompt),
  };
}

/**
 * Runs the command line with Ctrl-C wired to abort the send (a second Ctrl-C exits at once).
 *
 * @param args The arguments after the program name.
 * @returns The exit code.
 */
async function runNode(args: readonly string[]): Promise<number> {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(EXIT_INTERRUPTED);
    controller.abort(new DOMException("Interrupted", "AbortError"));
  };
  process.on("SIGINT", onSignal);
  const io: CliIo = {
    stdout: output(process.stdout),
    stderr: output(process.stderr),
    stdin: input(process.stdin),
    env: { ...process.env },
    cwd: process.cwd(),
    signal: controller.signal,
    program: "postie",
    startLocalServer: startDemoServer,
  };
  try {
    return await main(args, io);
  } finally {
    process.off("SIGINT", onSignal);
  }
}

runNode(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
