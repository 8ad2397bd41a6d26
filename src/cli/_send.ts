/**
 * `postie send`: builds the message from the command line, checks it and its files before
 * anything connects, then prints it (`--dry-run`) or sends it, with a progress bar for a large
 * one on a terminal. Without `--server` it sends to the embedded demo server.
 *
 * @module
 */

import type { AuthOptions, PasswordMechanism } from "../auth/types.ts";
import { type Attachment, composeMessage, type Message } from "../mime/mod.ts";
import type { ClientOptions } from "../options.ts";
import { sendMail } from "../send_mail.ts";
import { defaultTransport, openFile } from "../transport/default.ts";
import type { SendResult } from "../types.ts";
import { type DkimConfig, type SendConfig, TOKEN_MECHANISMS } from "./_args.ts";
import { type DkimSigner, signMessage } from "../dkim/mod.ts";
import { checkPrivateKey } from "../dkim/_key.ts";
import { resolveDkim } from "../dkim/_signer.ts";
import { clientOptions } from "./_client_options.ts";
import {
  baseDirectory,
  checkAttachments,
  describeFileError,
  readCaFiles,
  readInput,
  readWholeFile,
  resolvePath,
} from "./_files.ts";
import type { CliIo } from "./_io.ts";
import { type Out, printResult } from "./_output.ts";
import {
  countingTransport,
  estimateMessageSize,
  PROGRESS_THRESHOLD,
  progressBar,
} from "./_progress.ts";
import { Interrupted, report } from "./_report.ts";
import { EXIT_OK, InputFileError, UsageError } from "./exit_codes.ts";

const DEMO_MESSAGE = {
  from: "Postie Demo <demo@postie.test>",
  to: "Zoë Reader <reader@postie.test>",
  subject: "Hello from postie ✉",
  text: "This message travelled over STARTTLS with a verified certificate, after AUTH.\n",
};

/**
 * Runs `postie send`.
 *
 * @param config The parsed command line.
 * @param io The runtime's hooks.
 * @param out Standard output and standard error.
 * @returns The exit code.
 */
export async function send(config: SendConfig, io: CliIo, out: Out): Promise<number> {
  const local = !config.server && !config.dryRun;
  if (local && !io.startLocalServer) {
    throw new UsageError("Missing --server host:port (or set POSTIE_SERVER)");
  }
  const base = baseDirectory(io);
  const message = await buildMessage(config, io, local);
  const attachmentSizes = await checkAttachments(config.attach, base);
  const dkim = config.dkim ? await dkimSigners(config.dkim, base) : undefined;

  // Compose once before anything touches the network: bad input fails here, files are opened.
  const composed = await composeMessage(message, { allow8bit: false, openFile });
  if (config.dryRun) {
    // Signed, the message is held in memory to be printed.
    const body = dkim ? new Blob([await signMessage(composed.body, dkim)]).stream() : composed.body;
    if (out.json) {
      const text = await new Response(body).text();
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
      for await (const chunk of body) out.stdout.bytes(chunk);
    }
    return EXIT_OK;
  }
  await composed.body.cancel();

  const caCerts = await readCaFiles(config.caFiles, base);
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
    const signed: ClientOptions = dkim ? { ...options, dkim } : options;
    const estimate = estimateMessageSize(
      attachmentSizes,
      (message.text?.length ?? 0) + (message.html?.length ?? 0),
    );
    let code: number;
    try {
      const result = out.stderr.isTerminal && estimate > PROGRESS_THRESHOLD
        ? await sendWithProgress(signed, message, estimate, io, out)
        : await sendMail(signed, message, io.signal ? { signal: io.signal } : {});
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
  const base = baseDirectory(io);
  const attachments: Attachment[] = config.attach.map((spec) => ({
    content: { path: resolvePath(spec.path, base) },
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

/**
 * Reads the `--dkim-key` files (relative paths from where the command was run) and checks them,
 * the domain and the selectors before connecting.
 */
async function dkimSigners(config: DkimConfig, base: string | undefined): Promise<DkimSigner[]> {
  const signers: DkimSigner[] = [];
  for (const { path, selector } of config.keys) {
    const full = resolvePath(path, base);
    let privateKey: string;
    try {
      privateKey = new TextDecoder().decode(await readWholeFile(full));
    } catch (error) {
      throw new InputFileError(`Cannot read --dkim-key ${full}: ${describeFileError(error)}`, {
        cause: error,
      });
    }
    checkPrivateKey(privateKey, (why) => `Invalid --dkim-key ${full}: ${why}`);
    signers.push({ domain: config.domain, selector, privateKey });
  }
  resolveDkim(signers);
  return signers;
}
