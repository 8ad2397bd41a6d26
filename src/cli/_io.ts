/**
 * What the command line may touch, handed in by the runtime's entry point: standard streams,
 * the environment, the working directory, Ctrl-C and the embedded demo server.
 *
 * @module
 */

/** A place to write to: standard output or standard error. */
export interface CliOutput {
  /** Writes text (UTF-8) or bytes. */
  write(data: string | Uint8Array): void | Promise<void>;
  /**
   * True when a person watches it: only then is a progress bar drawn.
   * @default {false}
   */
  readonly isTerminal?: boolean;
  /** The terminal's width in columns, when known. */
  readonly columns?: number;
}

/** Standard input. */
export interface CliInput {
  /** True when it is a terminal (a password may then be asked for). */
  readonly isTerminal: boolean;
  /** Reads everything up to the end (`--text @-`). */
  readAll(): Promise<Uint8Array>;
  /**
   * Asks for a password without echoing it; resolves with `undefined` when the user cancels
   * (Ctrl-C, or Ctrl-D on an empty line).
   */
  readPassword?(prompt: string): Promise<string | undefined>;
}

/** The embedded SMTP server that `send` and `check` use when no server is named. */
export interface LocalServer {
  /** Where it listens (a name its certificate is valid for). */
  readonly hostname: string;
  /** Its port; it speaks STARTTLS. */
  readonly port: number;
  /** The PEM CA certificate that signed its certificate. */
  readonly caCert: string;
  /** The account to log in with. */
  readonly username: string;
  /** The account's password. */
  readonly password: string;
  /** Describes what it received, for printing. */
  report(): string;
  /** Stops it. */
  close(): Promise<void>;
}

/** What the command line may touch, handed in by the runtime's entry point. */
export interface CliIo {
  /** Standard output: results. */
  readonly stdout: CliOutput;
  /** Standard error: errors, transcript, progress. */
  readonly stderr: CliOutput;
  /** Standard input, for `@-` and the password prompt. */
  readonly stdin?: CliInput;
  /**
   * Environment variables (`POSTIE_SERVER`, `POSTIE_USER`, `POSTIE_PASSWORD`, ...). `INIT_CWD`,
   * when set, is the directory relative file paths are resolved against: `deno task` and
   * `npm run` set it to the directory the user ran the command in, while they run the program
   * in the project's folder.
   */
  readonly env: Readonly<Record<string, string | undefined>>;
  /**
   * The process's working directory: relative file paths (`@file`, `--attach`, `--ca-file`)
   * are resolved against it when `INIT_CWD` is not set, and errors name the full path.
   * @default {paths stay relative: the runtime resolves them}
   */
  readonly cwd?: string;
  /** Aborted when the user interrupts (Ctrl-C): the connection is closed. */
  readonly signal?: AbortSignal;
  /**
   * How to call the program, for `--help`.
   * @default {"postie"}
   */
  readonly program?: string;
  /** Starts the embedded server used when no `--server` is given. */
  readonly startLocalServer?: () => Promise<LocalServer>;
}
