/**
 * One mail transaction: MAIL FROM, RCPT TO for each recipient, then the message with DATA or
 * BDAT, pipelined when the server allows it. Produces per-recipient results.
 *
 * @module
 */

import { SmtpRecipientsError, SmtpReplyError } from "../errors.ts";
import type { Timeouts } from "../options.ts";
import type { RecipientResult, SmtpReply } from "../types.ts";
import * as commands from "./_commands.ts";
import { DataEncoder } from "./_dot_stuff.ts";
import type { CommandLine, Session, Wait } from "./_session.ts";

/** Resolved time limits. */
export type ResolvedTimeouts = Required<Timeouts>;

/** What to send. Addresses are final (converted for the server's capabilities). */
export interface TransactionInput {
  readonly from: string;
  readonly to: readonly string[];
  readonly mailParams: commands.Parameters;
  readonly rcptParams: (address: string) => commands.Parameters;
  readonly body: Uint8Array | ReadableStream<Uint8Array>;
}

/** How to send it. */
export interface TransactionSettings {
  /** Set to true when the body starts being read: from then on it cannot be sent again. */
  readonly progress: { dataStarted: boolean };
  readonly pipelining: boolean;
  readonly chunking: boolean;
  readonly timeouts: ResolvedTimeouts;
  readonly signal?: AbortSignal | undefined;
}

/** What the server accepted. */
export interface TransactionResult {
  readonly accepted: RecipientResult[];
  readonly rejected: RecipientResult[];
  readonly reply: SmtpReply;
}

/** Messages are written in pieces of about this size. */
const WRITE_BATCH = 64 * 1024;
/** BDAT chunks are at least this large (except the last). */
const BDAT_CHUNK = 256 * 1024;
/** BDAT replies left unread before the client waits for one. */
const MAX_UNREAD_BDAT = 8;

const encoder = new TextEncoder();

/**
 * Reads a reply; a 421 (the server is closing the connection) ends the session at once, so
 * that no later pipelined reply is waited for.
 */
async function readReply(session: Session, wait: Wait, command: string): Promise<SmtpReply> {
  const reply = await session.read(wait);
  if (reply.code === 421) {
    session.close();
    throw new SmtpReplyError("Server is closing the connection", wait.phase, command, reply);
  }
  return reply;
}

async function commandReply(session: Session, command: CommandLine, wait: Wait) {
  await session.write([command], wait);
  return await readReply(session, wait, command.line);
}

function positive(reply: SmtpReply): boolean {
  return reply.code >= 200 && reply.code < 300;
}

/** Collects byte arrays and joins them with one copy. */
class Batch {
  #parts: Uint8Array[] = [];
  length = 0;

  add(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#parts.push(bytes);
    this.length += bytes.length;
  }

  take(): Uint8Array {
    const parts = this.#parts;
    const joined = parts.length === 1 ? parts[0]! : new Uint8Array(this.length);
    if (parts.length > 1) {
      let offset = 0;
      for (const part of parts) {
        joined.set(part, offset);
        offset += part.length;
      }
    }
    this.#parts = [];
    this.length = 0;
    return joined;
  }
}

async function* chunksOf(body: Uint8Array | ReadableStream<Uint8Array>) {
  if (body instanceof Uint8Array) {
    yield body;
    return;
  }
  const reader = body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    // Cancels the source (closing files) when the send stops early.
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/** Runs one transaction. Rejects with a typed error; never leaves a transaction open. */
export async function runTransaction(
  session: Session,
  input: TransactionInput,
  settings: TransactionSettings,
): Promise<TransactionResult> {
  const { timeouts, signal } = settings;
  const commandWait: Wait = { phase: "mail", timeoutMs: timeouts.commandMs, signal };
  const mail: CommandLine = { line: commands.mailFrom(input.from, input.mailParams) };
  const rcpts: CommandLine[] = input.to.map((address) => ({
    line: commands.rcptTo(address, input.rcptParams(address)),
  }));

  const accepted: RecipientResult[] = [];
  const rejected: RecipientResult[] = [];
  const record = (address: string, reply: SmtpReply) =>
    (positive(reply) ? accepted : rejected).push({ address, reply });

  if (settings.chunking) {
    return await sendWithBdat(session, input, settings, mail, rcpts, accepted, rejected, record);
  }

  let mailReply: SmtpReply;
  let dataReply: SmtpReply | undefined;
  const dataCommand: CommandLine = { line: "DATA" };
  if (settings.pipelining) {
    await session.write([mail, ...rcpts, dataCommand], commandWait);
    mailReply = await readReply(session, commandWait, mail.line);
    for (const [i, address] of input.to.entries()) {
      record(address, await readReply(session, { ...commandWait, phase: "rcpt" }, rcpts[i]!.line));
    }
    dataReply = await readReply(session, { ...commandWait, phase: "data" }, "DATA");
  } else {
    mailReply = await commandReply(session, mail, commandWait);
    if (positive(mailReply)) {
      for (const [i, address] of input.to.entries()) {
        record(address, await commandReply(session, rcpts[i]!, { ...commandWait, phase: "rcpt" }));
      }
    }
  }

  const failure = !positive(mailReply)
    ? new SmtpReplyError("Sender refused", "mail", mail.line, mailReply)
    : accepted.length === 0
    ? noRecipientError(accepted, rejected)
    : undefined;
  if (failure) {
    // With pipelining the server may have answered DATA with 354 all the same: end the empty
    // message so that the session is back in a known state.
    if (dataReply?.code === 354) {
      await commandReply(session, { line: "." }, { ...commandWait, phase: "data" });
    }
    await reset(session, commandWait);
    throw failure;
  }

  dataReply ??= await commandReply(session, dataCommand, { ...commandWait, phase: "data" });
  if (dataReply.code !== 354) {
    await reset(session, commandWait);
    throw new SmtpReplyError("Message data refused", "data", "DATA", dataReply);
  }

  const dataWait: Wait = { phase: "data", timeoutMs: timeouts.commandMs, signal };
  const data = new DataEncoder(true);
  const batch = new Batch();
  settings.progress.dataStarted = true;
  for await (const chunk of chunksOf(input.body)) {
    batch.add(data.push(chunk));
    if (batch.length >= WRITE_BATCH) await session.writeBytes(batch.take(), dataWait);
  }
  batch.add(data.finish());
  await session.writeBytes(batch.take(), dataWait);
  session.info(`message data sent`);
  const reply = await readReply(session, {
    phase: "data",
    timeoutMs: timeouts.dataEndMs,
    signal,
    outcomeUnknownOnLoss: true,
  }, ".");
  if (!positive(reply)) throw new SmtpReplyError("Message refused", "data", ".", reply);
  return { accepted, rejected, reply };
}

async function sendWithBdat(
  session: Session,
  input: TransactionInput,
  settings: TransactionSettings,
  mail: CommandLine,
  rcpts: CommandLine[],
  accepted: RecipientResult[],
  rejected: RecipientResult[],
  record: (address: string, reply: SmtpReply) => void,
): Promise<TransactionResult> {
  const { timeouts, signal } = settings;
  const wait: Wait = { phase: "mail", timeoutMs: timeouts.commandMs, signal };
  const dataWait: Wait = { phase: "data", timeoutMs: timeouts.commandMs, signal };

  // Without pipelining: the envelope first, one command at a time.
  let envelopeRead = false;
  if (!settings.pipelining) {
    const mailReply = await commandReply(session, mail, wait);
    if (!positive(mailReply)) {
      await reset(session, wait);
      throw new SmtpReplyError("Sender refused", "mail", mail.line, mailReply);
    }
    for (const [i, address] of input.to.entries()) {
      record(address, await commandReply(session, rcpts[i]!, { ...wait, phase: "rcpt" }));
    }
    if (accepted.length === 0) {
      await reset(session, wait);
      throw noRecipientError(accepted, rejected);
    }
    envelopeRead = true;
  }

  // With pipelining the envelope goes out with the first chunk; replies are read in order.
  const pending = new Batch();
  if (!envelopeRead) {
    pending.add(encoder.encode([mail, ...rcpts].map((c) => c.line + "\r\n").join("")));
    for (const command of [mail, ...rcpts]) session.info(`> ${command.line} (pipelined)`);
  }
  let unread = 0;
  let mailReply: SmtpReply | undefined;
  let bdatFailure: { reply: SmtpReply; command: string } | undefined;

  const readEnvelope = async () => {
    if (envelopeRead) return;
    envelopeRead = true;
    mailReply = await readReply(session, wait, mail.line);
    for (const [i, address] of input.to.entries()) {
      record(address, await readReply(session, { ...wait, phase: "rcpt" }, rcpts[i]!.line));
    }
  };
  const readBdat = async (command: string, last: boolean) => {
    await readEnvelope();
    const reply = await readReply(
      session,
      last ? { ...dataWait, timeoutMs: timeouts.dataEndMs, outcomeUnknownOnLoss: true } : dataWait,
      command,
    );
    unread--;
    if (!positive(reply) && !bdatFailure) bdatFailure = { reply, command };
    return reply;
  };
  const sendChunk = async (chunk: Uint8Array, last: boolean) => {
    const command = commands.bdat(chunk.length, last);
    session.info(`> ${command} (${chunk.length} bytes of message data follow)`);
    pending.add(encoder.encode(command + "\r\n"));
    pending.add(chunk);
    await session.writeBytes(pending.take(), dataWait);
    unread++;
  };

  const crlf = new DataEncoder(false);
  const body = new Batch();
  let finalReply: SmtpReply | undefined;
  let stopped = false;
  settings.progress.dataStarted = true;
  for await (const chunk of chunksOf(input.body)) {
    body.add(crlf.push(chunk));
    if (body.length >= BDAT_CHUNK) {
      await sendChunk(body.take(), false);
      while (unread > MAX_UNREAD_BDAT || (unread > 0 && !envelopeRead)) {
        await readBdat("BDAT", false);
      }
      if (
        bdatFailure || (mailReply && !positive(mailReply)) || (envelopeRead && !accepted.length)
      ) {
        stopped = true;
        break;
      }
    }
  }
  if (!stopped) {
    body.add(crlf.finish());
    const last = body.take();
    await sendChunk(last, true);
    while (unread > 0) {
      finalReply = await readBdat(unread === 1 ? "BDAT LAST" : "BDAT", unread === 1);
    }
  } else {
    while (unread > 0) await readBdat("BDAT", false);
  }
  await readEnvelope();

  if (mailReply && !positive(mailReply)) {
    await reset(session, wait);
    throw new SmtpReplyError("Sender refused", "mail", mail.line, mailReply);
  }
  if (accepted.length === 0) {
    await reset(session, wait);
    throw noRecipientError(accepted, rejected);
  }
  if (bdatFailure || stopped || !finalReply) {
    await reset(session, wait);
    const failure = bdatFailure ?? { reply: finalReply!, command: "BDAT" };
    throw new SmtpReplyError("Message refused", "data", failure.command, failure.reply);
  }
  return { accepted, rejected, reply: finalReply };
}

function noRecipientError(
  accepted: RecipientResult[],
  rejected: RecipientResult[],
): SmtpRecipientsError {
  const first = rejected[0]?.reply;
  const detail = first ? `: ${first.code} ${first.lines.join(" ")}` : "";
  return new SmtpRecipientsError(
    `Cannot send message: no recipient was accepted${detail}`,
    accepted,
    rejected,
  );
}

/** RSET after a failed transaction; a failure here closes the session. */
async function reset(session: Session, wait: Wait): Promise<void> {
  if (session.closed) return;
  try {
    const reply = await session.command({ line: "RSET" }, { ...wait, phase: "command" });
    if (!positive(reply)) session.close();
  } catch {
    session.close();
  }
}
