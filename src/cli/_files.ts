/**
 * Files named on the command line (`--text @file`, `--html @file`, `--attach`, `--ca-file`):
 * relative paths resolved against the directory the user ran the command in, opened through
 * the runtime seam that opens the library's file attachments (never `node:fs` here), and errors
 * that name the full path and say what is wrong in words.
 *
 * @module
 */

import { openFile } from "../transport/default.ts";
import type { AttachSpec } from "./_args.ts";
import type { CliIo } from "./_io.ts";
import { InputFileError, UsageError } from "./exit_codes.ts";

/**
 * The directory relative paths are resolved against: `INIT_CWD` when set (`deno task` and
 * `npm run` run the program in the project's folder and set it to where the user ran the
 * command), else the working directory the entry point reports.
 *
 * @param io The runtime's hooks.
 * @returns The directory, or `undefined` to leave paths for the runtime to resolve.
 */
export function baseDirectory(io: Pick<CliIo, "env" | "cwd">): string | undefined {
  return io.env.INIT_CWD || io.cwd || undefined;
}

/** True for `/x`, `\x`, `C:\x`, `C:/x` and `\\server\share`. */
function isAbsolute(path: string): boolean {
  return /^(?:[A-Za-z]:)?[\\/]/.test(path);
}

/**
 * The full path of `path`: as it is when absolute (or without a base), else joined to `base`,
 * with `.` and `..` segments resolved.
 *
 * @param path A path as given on the command line.
 * @param base The directory to resolve it against.
 * @returns The path to open and to name in errors.
 */
export function resolvePath(path: string, base: string | undefined): string {
  if (base === undefined || isAbsolute(path)) return path;
  const windows = !base.includes("/") && base.includes("\\");
  const separator = windows ? "\\" : "/";
  const segments: string[] = [];
  for (const segment of `${base}${separator}${path}`.split(/[\\/]/)) {
    if (segment === ".") continue;
    if (segment === "..") {
      if (segments.length > 1) segments.pop(); // never above the root
      continue;
    }
    if (segment !== "" || segments.length === 0) segments.push(segment);
  }
  const joined = segments.join(separator);
  return segments.length === 1 ? joined + separator : joined;
}

const FILE_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: "no such file",
  NotFound: "no such file",
  EACCES: "permission denied",
  EPERM: "permission denied",
  PermissionDenied: "permission denied",
  EISDIR: "is a directory",
  IsADirectory: "is a directory",
};

/**
 * Says in words why a file could not be read.
 *
 * @param error What opening or reading it threw.
 * @returns A short reason, such as `no such file`.
 */
export function describeFileError(error: unknown): string {
  if (error instanceof TypeError && /^Not a file/.test(error.message)) return "not a file";
  const code = (error as { code?: unknown })?.code;
  const known = FILE_ERRORS[typeof code === "string" ? code : ""] ??
    FILE_ERRORS[error instanceof Error ? error.name : ""];
  if (known) return known;
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/^(\w+Error|Error):\s*/, "");
}

/** Opens a file through the runtime seam; rejects when it is missing, unreadable or not a file. */
async function open(path: string): Promise<{ stream: ReadableStream<Uint8Array>; size?: number }> {
  const opened = await openFile(path);
  return opened instanceof ReadableStream ? { stream: opened } : opened;
}

export async function readWholeFile(path: string): Promise<Uint8Array> {
  const { stream } = await open(path);
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * The value of `--text` or `--html`: as it is, or read from `@file` (UTF-8), or from standard
 * input for `@-`.
 *
 * @param value The option's value.
 * @param what The option, for errors.
 * @param io Standard input, and where relative paths start.
 * @returns The text.
 */
export async function readInput(
  value: string,
  what: string,
  io: Pick<CliIo, "env" | "cwd" | "stdin">,
): Promise<string> {
  if (!value.startsWith("@")) return value;
  if (value === "@-") {
    if (!io.stdin) throw new UsageError(`${what} @- needs standard input`);
    return new TextDecoder().decode(await io.stdin.readAll());
  }
  const path = resolvePath(value.slice(1), baseDirectory(io));
  let bytes: Uint8Array;
  try {
    bytes = await readWholeFile(path);
  } catch (error) {
    throw new InputFileError(`Cannot read ${what} file ${path}: ${describeFileError(error)}`, {
      cause: error,
    });
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new InputFileError(`Cannot read ${what} file ${path}: it is not UTF-8 text`);
  }
}

/**
 * Checks the `--attach` files (each opened and closed again) before anything connects.
 *
 * @param specs The `--attach` options.
 * @param base Where relative paths start.
 * @returns Each file's size (0 when unknown).
 */
export async function checkAttachments(
  specs: readonly AttachSpec[],
  base: string | undefined,
): Promise<number[]> {
  const sizes: number[] = [];
  for (const spec of specs) {
    const path = resolvePath(spec.path, base);
    let opened;
    try {
      opened = await open(path);
    } catch (error) {
      throw new InputFileError(`Cannot attach ${path}: ${describeFileError(error)}`, {
        cause: error,
      });
    }
    await opened.stream.cancel();
    sizes.push(opened.size ?? 0);
  }
  return sizes;
}

/**
 * Reads the `--ca-file` certificates.
 *
 * @param paths The files.
 * @param base Where relative paths start.
 * @returns Each file's PEM text.
 */
export async function readCaFiles(
  paths: readonly string[],
  base: string | undefined,
): Promise<string[]> {
  const certs: string[] = [];
  for (const given of paths) {
    const path = resolvePath(given, base);
    let text: string;
    try {
      text = new TextDecoder().decode(await readWholeFile(path));
    } catch (error) {
      throw new InputFileError(`Cannot read --ca-file ${path}: ${describeFileError(error)}`, {
        cause: error,
      });
    }
    if (!text.includes("-----BEGIN CERTIFICATE-----")) {
      throw new InputFileError(`Cannot use --ca-file ${path}: no PEM certificate in it`);
    }
    certs.push(text);
  }
  return certs;
}
