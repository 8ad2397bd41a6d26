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

import type { AuthOptions, PasswordMechanism } from "../auth/types.ts";
import { SmtpClient } from "../client.ts";
import {
  formatReply,
  SmtpError,
  SmtpRecipientsError,
  SmtpReplyError,
  SmtpTimeoutError,
} from "../errors.ts";
import { type Attachment, composeMessage, type Message } from "../mime/mod.ts";
import type { ClientOptions, TranscriptEvent } from "../options.ts";
import type { TlsInfo } from "../transport/types.ts";
import { sendMail } from "../send_mail.ts";
import type { RecipientResult, SendResult, SmtpReply } from "../types.ts";
import {
  type CheckConfig,
  type CommonConfig,
  parseCommandLine,
  type SendConfig,
  TOKEN_MECHANISMS,
} from "./_args.ts";
import { helpText } from "./_help.ts";
import {
  countingTransport,
  estimateMessageSize,
  formatBytes,
  PROGRESS_THRESHOLD,
  progressBar,
} from "./_progress.ts";
import { defaultTransport, openFile } from "../transport/default.ts";
import {
  EXIT_DATA,
  EXIT_INTERNAL,
  EXIT_INTERRUPTED,
  EXIT_NO_INPUT,
  EXIT_OK,
  EXIT_REJECTED,
  EXIT_TEMPORARY,
  EXIT_USAGE,
  exitCodeFor,
  InputFileError,
  isFileError,
  UsageError,
} from "./exit_codes.ts";

export * from "./exit_codes.ts";

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
  /** Environment variables (`POSTIE_SERVER`, `POSTIE_USER`, `POSTIE_PASSWORD`, ...). */
  readonly env: Readonly<Record<string, string | undefined>>;
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

const DEMO_MESSAGE = {
  from: "Postie Demo <demo@postie.test>",
  to: "Zoë Reader <reader@postie.test>",
  subject: "Hello from postie ✉",
  text: "This message travelled over STARTTLS with a verified certificate, after AUTH.\n",
};

/** Writes in order, whatever the sink does: transcript callbacks cannot await. */
class Printer {
  #out: CliOutput;
  #tail: Promise<void> = Promise.resolve();
  #barShown = false;
  #secrets: string[] = [];

  constructor(out: CliOutput) {
    this.#out = out;
  }

  get isTerminal(): boolean {
    return this.#out.isTerminal ?? false;
  }

  /** Strings never to print (passwords, tokens), replaced by `[redacted]`. */
  hide(secret: string): void {
    if (secret.length >= 4) this.#secrets.push(secret);
  }

  scrub(text: string): string {
    for (const secret of this.#secrets) text = text.replaceAll(secret, "[redacted]");
    return text;
  }

  #write(data: string | Uint8Array): void {
    this.#tail = this.#tail.then(() => this.#out.write(data)).catch(() => {});
  }

  /** Writes text as is (after removing secrets). */
  text(text: string): void {
    this.#clearBar();
    this.#write(this.scrub(text));
  }

  /** Writes one line. */
  line(text = ""): void {
    this.text(text + "\n");
  }

  bytes(data: Uint8Array): void {
    this.#write(data);
  }

  draw(line: string): void {
    this.#write(`\r\x1b[2K${line}`);
    this.#barShown = true;
  }

  finish(line: string): void {
    this.#write(`\r\x1b[2K${line}\n`);
    this.#barShown = false;
  }

  #clearBar(): void {
    if (this.#barShown) this.#write("\r\x1b[2K");
    this.#barShown = false;
  }

  async flush(): Promise<void> {
    await this.#tail;
  }
}

/** The two outputs, with JSON mode. */
interface Out {
  readonly stdout: Printer;
  readonly stderr: Printer;
  readonly json: boolean;
}

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

// ---------------------------------------------------------------------------------------------
// send

async function send(config: SendConfig, io: CliIo, out: Out): Promise<number> {
  const local = !config.server && !config.dryRun;
  if (local && !io.startLocalServer) {
    throw new UsageError("Missing --server host:port (or set POSTIE_SERVER)");
  }
  const message = await buildMessage(config, io, local);
  const attachmentSizes = await checkAttachments(config);

  // Compose once before anything touches the network: bad input fails here, files are opened.
  const composed = await composeMessage(message, { allow8bit: false });
  if (config.dryRun) {
    if (out.json) {
      const text = await new Response(composed.body).text();
      out.stdout.line(JSON.stringify(
        { ok: true, envelope: composed.envelope, messageId: composed.messageId, message: text },
        null,
        2,
      ));
    } else {
      out.stderr.line(
        `Envelope: MAIL FROM:<${composed.envelope.from}> ` +
          composed.envelope.to.map((to) => `RCPT TO:<${to}>`).join(" "),
      );
      for await (const chunk of composed.body) out.stdout.bytes(chunk);
    }
    return EXIT_OK;
  }
  await composed.body.cancel();

  const caCerts = await readCaFiles(config.caFiles);
  const server = local ? await io.startLocalServer!() : undefined;
  try {
    if (server) {
      out.stderr.line(
        `No --server given: sending to an embedded local SMTP server on ` +
          `${server.hostname}:${server.port} (STARTTLS, logged in as "${server.username}")`,
      );
    }
    const auth = server
      ? { username: server.username, password: server.password }
      : await credentials(config, io, out);
    const options = clientOptions(config, out, {
      ...(server ? { server, caCerts: [server.caCert] } : { caCerts }),
      ...(auth ? { auth } : {}),
    });
    const estimate = estimateMessageSize(
      attachmentSizes,
      (message.text?.length ?? 0) + (message.html?.length ?? 0),
    );
    let code: number;
    try {
      const result = out.stderr.isTerminal && estimate > PROGRESS_THRESHOLD
        ? await sendWithProgress(options, message, estimate, io, out)
        : await sendMail(options, message, io.signal ? { signal: io.signal } : {});
      code = printResult(result, out);
    } catch (error) {
      code = report(error, io, out);
    }
    if (server) {
      const printer = out.json ? out.stderr : out.stdout;
      printer.line(`\n--- What the local server received ${"-".repeat(34)}`);
      printer.text(server.report());
    }
    return code;
  } finally {
    await server?.close();
  }
}

/**
 * Sends with a progress bar: the transport counts the bytes written. (Sending a counted stream
 * as a raw message would lose 8BITMIME and SIZE, and a stream cannot be replayed on a retry.)
 */
async function sendWithProgress(
  options: ClientOptions,
  message: Message,
  estimate: number,
  io: CliIo,
  out: Out,
): Promise<SendResult> {
  const bar = progressBar(estimate, out.stderr);
  const transport = countingTransport(options.transport ?? defaultTransport, (n) => bar.add(n));
  try {
    const result = await sendMail(
      { ...options, transport },
      message,
      io.signal ? { signal: io.signal } : {},
    );
    bar.done(true);
    return result;
  } catch (error) {
    bar.done(false);
    throw error;
  }
}

async function readInput(value: string, what: string, io: CliIo): Promise<string> {
  if (!value.startsWith("@")) return value;
  const path = value.slice(1);
  if (path === "-") {
    if (!io.stdin) throw new UsageError(`${what} @- needs standard input`);
    return new TextDecoder().decode(await io.stdin.readAll());
  }
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

/** Opens a file through the runtime seam; rejects when it is missing, unreadable or not a file. */
async function open(path: string): Promise<{ stream: ReadableStream<Uint8Array>; size?: number }> {
  const opened = await openFile(path);
  return opened instanceof ReadableStream ? { stream: opened } : opened;
}

async function readWholeFile(path: string): Promise<Uint8Array> {
  const { stream } = await open(path);
  return new Uint8Array(await new Response(stream).arrayBuffer());
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

function describeFileError(error: unknown): string {
  if (error instanceof TypeError && /^Not a file/.test(error.message)) return "not a file";
  const code = (error as { code?: unknown })?.code;
  const known = FILE_ERRORS[typeof code === "string" ? code : ""] ??
    FILE_ERRORS[error instanceof Error ? error.name : ""];
  if (known) return known;
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/^(\w+Error|Error):\s*/, "");
}

async function buildMessage(config: SendConfig, io: CliIo, demo: boolean): Promise<Message> {
  const from = config.from ?? (demo ? DEMO_MESSAGE.from : undefined);
  if (from === undefined) throw new UsageError("Missing --from address");
  const anyRecipient = config.to.length + config.cc.length + config.bcc.length > 0;
  if (!anyRecipient && !demo) throw new UsageError("Missing recipient: give --to, --cc or --bcc");
  const to = anyRecipient ? config.to : [DEMO_MESSAGE.to];
  const stdinUses = [config.text, config.html].filter((v) => v === "@-").length;
  if (stdinUses > 1) throw new UsageError("Only one of --text and --html can read @-");
  const text = config.text !== undefined ? await readInput(config.text, "--text", io) : undefined;
  const html = config.html !== undefined ? await readInput(config.html, "--html", io) : undefined;
  const noBody = text === undefined && html === undefined && config.attach.length === 0;
  const subject = config.subject ?? (demo ? DEMO_MESSAGE.subject : undefined);
  const attachments: Attachment[] = config.attach.map((spec) => ({
    content: { path: spec.path },
    ...(spec.filename !== undefined ? { filename: spec.filename } : {}),
    ...(spec.contentType !== undefined ? { contentType: spec.contentType } : {}),
    ...(spec.contentId !== undefined ? { contentId: spec.contentId } : {}),
  }));
  return {
    from,
    ...(to.length > 0 ? { to } : {}),
    ...(config.cc.length > 0 ? { cc: config.cc } : {}),
    ...(config.bcc.length > 0 ? { bcc: config.bcc } : {}),
    ...(subject !== undefined ? { subject } : {}),
    ...(text !== undefined ? { text } : noBody && demo ? { text: DEMO_MESSAGE.text } : {}),
    ...(html !== undefined ? { html } : {}),
    ...(attachments.length > 0 ? { attachments } : {}),
    ...(config.headers.length > 0 ? { headers: config.headers } : {}),
  };
}

/** Checks every attachment before connecting; returns their sizes. */
async function checkAttachments(config: SendConfig): Promise<number[]> {
  const sizes: number[] = [];
  for (const { path } of config.attach) {
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

async function readCaFiles(paths: readonly string[]): Promise<string[]> {
  const certs: string[] = [];
  for (const path of paths) {
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

/** The credentials: a token or password from the environment, or a password typed in. */
async function credentials(
  config: SendConfig,
  io: CliIo,
  out: Out,
): Promise<AuthOptions | undefined> {
  const env = (name: string) => io.env[name] || undefined;
  const token = env("POSTIE_OAUTH_TOKEN");
  let password = env("POSTIE_PASSWORD");
  const user = config.user;
  const mechanism = config.authMechanism;
  if (user === undefined) {
    if (token !== undefined || password !== undefined) {
      throw new UsageError(
        `${token !== undefined ? "POSTIE_OAUTH_TOKEN" : "POSTIE_PASSWORD"} is set, but no ` +
          `user: give --user (or set POSTIE_USER)`,
      );
    }
    if (mechanism !== undefined) throw new UsageError("--auth-mechanism needs --user");
    return undefined;
  }
  if (config.tls === "none" && !config.allowPlaintextAuth) {
    throw new UsageError(
      "Refusing to send credentials without TLS: with --tls none, add --allow-plaintext-auth " +
        "(local testing only) or use --tls starttls or implicit",
    );
  }
  if (token !== undefined) {
    out.stderr.hide(token);
    if (mechanism !== undefined && !(TOKEN_MECHANISMS as readonly string[]).includes(mechanism)) {
      throw new UsageError(
        `--auth-mechanism ${mechanism} takes a password, but POSTIE_OAUTH_TOKEN is set: use ` +
          TOKEN_MECHANISMS.join(" or "),
      );
    }
    return {
      username: user,
      token,
      ...(mechanism !== undefined ? { mechanism: mechanism as "XOAUTH2" | "OAUTHBEARER" } : {}),
    };
  }
  if (mechanism !== undefined && (TOKEN_MECHANISMS as readonly string[]).includes(mechanism)) {
    throw new UsageError(`--auth-mechanism ${mechanism} needs a token in POSTIE_OAUTH_TOKEN`);
  }
  if (password === undefined) {
    if (!io.stdin?.isTerminal || !io.stdin.readPassword) {
      throw new UsageError(
        `--user ${user} needs a password: set POSTIE_PASSWORD (or POSTIE_OAUTH_TOKEN); ` +
          `standard input is not a terminal to ask for it`,
      );
    }
    await out.stderr.flush();
    password = await io.stdin.readPassword(`Password for ${user}: `);
    if (password === undefined) throw new Interrupted();
  }
  out.stderr.hide(password);
  return {
    username: user,
    password,
    ...(mechanism !== undefined ? { mechanisms: [mechanism as PasswordMechanism] } : {}),
  };
}

class Interrupted extends Error {
  constructor() {
    super("Interrupted");
    this.name = "Interrupted";
  }
}

function clientOptions(
  config: CommonConfig,
  out: Out,
  extra: { server?: LocalServer; caCerts: readonly string[]; auth?: AuthOptions },
): ClientOptions {
  const { server } = extra;
  const hostname = server?.hostname ?? config.server!.hostname;
  const port = server?.port ?? config.server?.port;
  const tls = server ? "starttls" : config.tls;
  const ms = config.timeoutMs;
  return {
    hostname,
    ...(port !== undefined ? { port } : {}),
    ...(tls !== undefined ? { tls } : {}),
    tlsOptions: {
      ...(extra.caCerts.length > 0 ? { caCerts: extra.caCerts } : {}),
      ...(config.serverName !== undefined ? { serverName: config.serverName } : {}),
    },
    ...(config.ehlo !== undefined ? { clientName: config.ehlo } : {}),
    ...(config.proxy !== undefined ? { proxy: config.proxy } : {}),
    ...(extra.auth ? { auth: extra.auth } : {}),
    ...(config.allowPlaintextAuth ? { allowPlaintextAuth: [hostname] } : {}),
    ...(ms !== undefined
      ? { timeouts: { connectMs: ms, greetingMs: ms, commandMs: ms, dataEndMs: ms, quitMs: ms } }
      : {}),
    ...(config.transcript ? { onTranscript: (event) => printTranscript(event, out) } : {}),
  };
}

function printTranscript(event: TranscriptEvent, out: Out): void {
  const tag = event.direction === "client" ? "C:" : event.direction === "server" ? "S:" : "*";
  out.stderr.line(`${tag} ${event.line}`);
}

function replyJson(reply: SmtpReply) {
  const status = reply.enhancedStatus;
  return {
    code: reply.code,
    enhancedStatus: status ? `${status.class}.${status.subject}.${status.detail}` : null,
    text: reply.lines.join("\n"),
  };
}

function recipientJson(recipient: RecipientResult) {
  return { address: recipient.address, ...replyJson(recipient.reply) };
}

function printResult(result: SendResult, out: Out): number {
  const refused = result.rejected;
  const code = refused.length === 0
    ? EXIT_OK
    : refused.every((r) => r.reply.code >= 400 && r.reply.code < 500)
    ? EXIT_TEMPORARY
    : EXIT_REJECTED;
  if (out.json) {
    out.stdout.line(JSON.stringify(
      {
        ok: code === EXIT_OK,
        exitCode: code,
        messageId: result.messageId ?? null,
        envelope: result.envelope,
        accepted: result.accepted.map(recipientJson),
        rejected: refused.map(recipientJson),
        reply: replyJson(result.reply),
      },
      null,
      2,
    ));
  } else {
    const names = result.accepted.map((r) => r.address).join(", ");
    out.stdout.line(
      `Sent${result.messageId ? ` ${result.messageId}` : ""} to ${names}: ` +
        formatReply(result.reply),
    );
  }
  if (refused.length > 0) {
    out.stderr.line(
      `postie: sent to ${result.accepted.length} of ` +
        `${result.accepted.length + refused.length} recipients; refused: ` +
        refused.map((r) => `${r.address} (${formatReply(r.reply)})`).join(", "),
    );
  }
  return code;
}

// ---------------------------------------------------------------------------------------------
// check

async function check(config: CheckConfig, io: CliIo, out: Out): Promise<number> {
  if (!config.server && !io.startLocalServer) {
    throw new UsageError("Missing --server host:port (or set POSTIE_SERVER)");
  }
  const caCerts = await readCaFiles(config.caFiles);
  const server = config.server ? undefined : await io.startLocalServer!();
  try {
    if (server) {
      out.stderr.line(
        `No --server given: checking an embedded local SMTP server on ` +
          `${server.hostname}:${server.port}`,
      );
    }
    const greeting: string[] = [];
    let greeted = false;
    const base = clientOptions(
      config,
      out,
      server ? { server, caCerts: [server.caCert] } : {
        caCerts,
      },
    );
    const options: ClientOptions = {
      ...base,
      onTranscript(event) {
        if (event.direction === "client") greeted = true;
        else if (event.direction === "server" && !greeted) greeting.push(event.line);
        base.onTranscript?.(event);
      },
    };
    const client = await SmtpClient.connect(options, io.signal ? { signal: io.signal } : {});
    const caps = client.capabilities;
    const tls = client.tls;
    await client.quit();
    const port = options.port ??
      (options.tls === "implicit" ? 465 : options.tls === "none" ? 25 : 587);
    const mode = options.tls ?? (port === 465 ? "implicit" : "starttls");
    const extensions = Object.fromEntries(caps.keywords.map((k) => [k, caps.params(k) ?? []]));
    if (out.json) {
      out.stdout.line(JSON.stringify(
        {
          ok: true,
          exitCode: EXIT_OK,
          server: { hostname: options.hostname, port, tls: mode },
          greeting: greeting.join("\n"),
          tls: tls
            ? {
              protocol: tls.protocol ?? null,
              cipher: tls.cipher ?? null,
              peerSubject: tls.peerSubject ?? null,
            }
            : null,
          capabilities: {
            serverName: caps.serverName,
            keywords: caps.keywords,
            extensions,
            maxSize: caps.maxSize ?? null,
            authMechanisms: caps.authMechanisms,
          },
        },
        null,
        2,
      ));
      return EXIT_OK;
    }
    const lines = [
      `Server:     ${options.hostname}:${port} (${
        mode === "none" ? "no TLS" : mode === "implicit" ? "implicit TLS" : "STARTTLS"
      })`,
      `Greeting:   ${greeting.join(" / ")}`,
      `TLS:        ${tls ? describeTls(tls) : "none: everything travels in clear text"}`,
      `EHLO name:  ${caps.serverName}`,
      `Max size:   ${
        caps.maxSize !== undefined
          ? `${formatBytes(caps.maxSize)} (${caps.maxSize} bytes)`
          : "no limit announced"
      }`,
      `AUTH:       ${caps.authMechanisms.join(" ") || "not offered"}`,
      `Extensions:`,
      ...caps.keywords.map((k) => `  ${[k, ...(caps.params(k) ?? [])].join(" ")}`),
    ];
    out.stdout.line(lines.join("\n"));
    return EXIT_OK;
  } finally {
    await server?.close();
  }
}

function describeTls(tls: TlsInfo): string {
  const certificate = tls.peerSubject
    ? `certificate ${tls.peerSubject} verified`
    : "certificate verified";
  const parts = [tls.protocol, tls.cipher, certificate].filter(Boolean).join(", ");
  return tls.protocol ? parts : `${parts} (this runtime does not report the TLS version or cipher)`;
}

// ---------------------------------------------------------------------------------------------
// errors

/** Library option names in error messages, as the flags that set them. */
const FLAG_NAMES: readonly [RegExp, string][] = [
  [/tlsOptions\.caCerts/g, "--ca-file"],
  [/tlsOptions\.serverName/g, "--server-name"],
  [/\btls: "(\w+)"/g, "--tls $1"],
  [/\btls is "(\w+)"/g, "--tls is $1"],
  [/\ballowPlaintextAuth\b/g, "--allow-plaintext-auth"],
  [/\bclientName\b/g, "--ehlo"],
];

function hintFor(error: unknown): string | undefined {
  if (!(error instanceof SmtpError)) return undefined;
  const text = `${error.message} ${String(error.cause ?? "")}`;
  if (error.phase === "connect" && /refused/i.test(text)) {
    return "check --server host:port, and that the server is running";
  }
  if (error.phase === "connect" && /lookup|resolve|not known|ENOTFOUND|EAI_/i.test(text)) {
    return "check the host name in --server";
  }
  if (error instanceof SmtpTimeoutError && error.phase === "connect") {
    return "check --server host:port; a firewall may drop the connection";
  }
  return undefined;
}

function oneLine(text: string): string {
  return text.replace(/\s*\r?\n\s*/g, " ").trim();
}

/** Prints the error in one line (and as JSON with --json); returns the exit code. */
function report(error: unknown, io: CliIo, out: Out): number {
  const interrupted = error instanceof Interrupted || (io.signal?.aborted ?? false);
  const code = error instanceof Interrupted ? EXIT_INTERRUPTED : exitCodeFor(error, interrupted);
  let message = error instanceof Error ? error.message : String(error);
  for (const [pattern, flag] of FLAG_NAMES) message = message.replace(pattern, flag);
  if (error instanceof SmtpRecipientsError && error.rejected.length > 0) {
    message = `${error.message.split(":")[0]}: refused ` +
      error.rejected.map((r) => `${r.address} (${formatReply(r.reply)})`).join(", ");
  }
  if (code === EXIT_INTERRUPTED) message = "Interrupted";
  if (code === EXIT_INTERNAL) {
    message = `Internal error (please report it): ${
      error instanceof Error ? error.stack ?? message : message
    }`;
  }
  if (code === EXIT_DATA && !/^Invalid|^Cannot|^Refusing/.test(message)) {
    message = `Invalid input: ${message}`;
  }
  if (code === EXIT_NO_INPUT && isFileError(error) && !(error instanceof InputFileError)) {
    message = `Cannot read a file: ${describeFileError(error)}`;
  }
  const hint = hintFor(error);
  const line = out.stderr.scrub(
    code === EXIT_INTERNAL ? message : oneLine(message + (hint ? ` (${hint})` : "")),
  );
  const help = code === EXIT_USAGE && !line.includes("--help") ? " (see --help)" : "";
  out.stderr.line(`postie: ${line}${help}`);
  if (out.json) {
    const detail: Record<string, unknown> = {
      name: error instanceof Error ? error.name : "Error",
      message: line,
    };
    if (error instanceof SmtpError) detail.phase = error.phase;
    if (error instanceof SmtpReplyError) {
      detail.command = error.command;
      detail.reply = replyJson(error.reply);
    }
    if (error instanceof SmtpRecipientsError) {
      detail.accepted = error.accepted.map(recipientJson);
      detail.rejected = error.rejected.map(recipientJson);
    }
    out.stdout.line(JSON.stringify({ ok: false, exitCode: code, error: detail }, null, 2));
  }
  return code;
}
