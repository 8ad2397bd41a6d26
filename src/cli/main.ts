/**
 * The `postie` command line: `postie send` composes and sends one message, `postie check`
 * shows what a server offers. The logic is runtime-neutral: the entry point hands in standard
 * output, standard error, standard input, the environment and the embedded demo server as
 * {@linkcode CliIo}, so the same {@linkcode main} runs under Deno, under Node.js and inside
 * tests. Files named on the command line (`@file`, `--ca-file`, `--attach`) are opened through
 * the runtime seam that opens the library's `{ path }` attachments, never with `node:fs` here.
 *
 * @module
 */

import { parseCommandLine } from "./_args.ts";
import { check } from "./_check.ts";
import { helpText } from "./_help.ts";
import type { CliIo } from "./_io.ts";
import { type Out, Printer } from "./_output.ts";
import { report } from "./_report.ts";
import { send } from "./_send.ts";
import { EXIT_OK } from "./exit_codes.ts";

export * from "./exit_codes.ts";
export type { CliInput, CliIo, CliOutput, LocalServer } from "./_io.ts";

/**
 * Runs the `postie` command line.
 *
 * @param args The arguments after the program name, e.g. `["send", "--to", "a@b.example"]`.
 * @param io Standard streams, environment and the runtime's hooks.
 * @returns The exit code: one of the `EXIT_*` constants.
 */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const stdout = new Printer(io.stdout);
  const stderr = new Printer(io.stderr);
  const json = args.includes("--json");
  const out: Out = { stdout, stderr, json };
  let code: number;
  try {
    const config = parseCommandLine(args, io.env);
    if (config.command === "help") {
      stdout.text(helpText(io.program ?? "postie", config.topic));
      code = EXIT_OK;
    } else if (config.command === "check") {
      code = await check(config, io, out);
    } else {
      code = await send(config, io, out);
    }
  } catch (error) {
    code = report(error, io, out);
  }
  await stdout.flush();
  await stderr.flush();
  return code;
}
