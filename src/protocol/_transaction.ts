/**
 * One mail transaction: MAIL FROM, RCPT TO for each recipient, then the message with DATA or
 * BDAT, pipelined when the server allows it. Produces per-recipient results.
 *
 * @module
 */

import { type Failure, isTooManyRecipients, type Stage } from "../delivery.ts";
import {
  describeRecipients,
  SmtpConnectionError,
  SmtpRecipientsError,
  SmtpReplyError,
} from "../errors.ts";
import type { Timeouts } from "../options.ts";
import type { RecipientResult, SmtpReply } from "../types.ts";
import * as commands from "./_commands.ts";
import { DataEncoder } from "./_dot_stuff.ts";
import type { CommandLine, Session, TotalDeadline, Wait } from "./_session.ts";

/** Resolved time limits. */
export type ResolvedTimeouts = Required<Timeouts>;

/** What to send. Addresses are final (converted for the server's capabilities). */
export interface TransactionInput {
  readonly from: string;
  readonly to: readonly string[];
  readonly mailParams: commands.Parameters;
  readonly rcptParams: (address: string) => commands.Parameters;
  readonly body: Uint8Array | ReadableStream<Uint8Array>;
  /** True when the body stream is the library's own (cancelled if not read to the end). */
  readonly ownsBody: boolean;
  /**
   * True when the body's line ends go as they are: CRLF already (composed messages) or binary
   * MIME. Otherwise bare CR and LF become CRLF.
   */
  readonly keepLineEnds: boolean;
  /** True for binary MIME: the bytes go exactly as given, no final CRLF added. */
  readonly binary: boolean;
}

/**
 * Coordinates transactions pipelined on one connection (RFC 2920 lets the next transaction's
 * commands follow the previous one's last data before its replies arrive). Replies come back
 * in order, so a transaction reads only after every earlier one has read all of its replies.
 */
export interface Turn {
  /** Resolves once every earlier transaction has read all of its replies. */
  readonly ready: Promise<void>;
  /**
   * True when earlier replies are still outstanding as this transaction starts writing: its
   * first command is then RSET, so that an earlier failure cannot leak into it.
   */
  readonly resetFirst: boolean;
  /** Called once this transaction will write nothing more; the next may start writing. */
  writesDone(): void;
}

/** How to send it. */
export interface TransactionSettings {
  /** Where this transaction stands among the ones pipelined on the connection. */
  readonly turn: Turn;
  readonly pipelining: boolean;
  readonly chunking: boolean;
  readonly timeouts: ResolvedTimeouts;
  readonly signal?: AbortSignal | undefined;
  /** The limit of the whole send. */
  readonly total?: TotalDeadline | undefined;
}

/**
 * A recipient refused only because the transaction had too many (a 452 `4.5.3`): it may go in a
 * further transaction of the same message.
 */
export interface Deferral {
  /** Where the recipient is in the transaction's `to`. */
  readonly position: number;
  /** The server's reply to its RCPT. */
  readonly result: RecipientResult;
}

/** What the server accepted. */
export interface TransactionResult {
  readonly accepted: RecipientResult[];
  /** Recipients refused for any other reason than too many recipients. */
  readonly rejected: RecipientResult[];
  /** Recipients refused because the transaction had too many. */
  readonly deferred: readonly Deferral[];
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
async function readReply(
  session: Session,
  wait: Wait,
  command: string,
  turn: Turn,
): Promise<SmtpReply> {
  await turn.ready;
  const reply = await session.read(wait);
  if (reply.code === 421) {
    session.close();
    throw new SmtpReplyError("Server is closing the connection", wait.phase, command, reply);
  }
  return reply;
}

async function commandReply(session: Session, command: CommandLine, wait: Wait, turn: Turn) {
  await session.write([command], wait);
  return await readReply(session, wait, command.line, turn);
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

/**
 * The body's chunks. A stream that is not read to its end is cancelled when it is the library's
 * own (a composed message: its files are closed) and only released when it is the caller's.
 */
async function* chunksOf(body: Uint8Array | ReadableStream<Uint8Array>, owned: boolean) {
  if (body instanceof Uint8Array) {
    yield body;
    return;
  }
  const reader = body.getReader();
  let finished = false;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) {
        // Nothing to release: a finished stream holds nothing (and releasing the lock costs a
        // TypeError with a stack trace per message).
        finished = true;
        return;
      }
      yield value;
    }
  } finally {
    if (!finished) {
      if (owned) await reader.cancel().catch(() => {});
      reader.releaseLock();
    }
  }
}

/**
 * Writes the bytes that end the message (DATA's final `.` line, or the last BDAT chunk). From
 * the moment they are handed to the connection the server may hold the message: a timeout or
 * an abort while they are being written leaves it so. Only a write the connection refused (it
 * broke: the last bytes were not taken) means the terminator cannot have arrived.
 */
async function writeTerminator(
  session: Session,
  bytes: Uint8Array,
  wait: Wait,
  progress: Progress,
): Promise<void> {
  progress.stage = "terminated";
  try {
    await session.writeBytes(bytes, wait);
  } catch (error) {
    if (error instanceof SmtpConnectionError) progress.stage = "data";
    throw error;
  }
  session.info("message data sent");
}

/** How a transaction ended: its result, or how far it got and why it stopped. */
export type TransactionOutcome =
  | { readonly ok: true; readonly result: TransactionResult }
  | { readonly ok: false; readonly failure: Failure };

/** How far the transaction got; only the transaction's own steps move it forward. */
class Progress {
  stage: Stage = "unsent";
}

/**
 * Runs one transaction and says how it ended; never leaves a transaction open. A failure
 * comes with the {@linkcode Stage} it reached, from which `delivery.ts` judges whether the
 * server may hold the message.
 */
export async function runTransaction(
  session: Session,
  input: TransactionInput,
  settings: TransactionSettings,
): Promise<TransactionOutcome> {
  const progress = new Progress();
  try {
    const send = settings.chunking ? sendWithBdat : sendWithData;
    return { ok: true, result: await send(session, input, settings, progress) };
  } catch (error) {
    return { ok: false, failure: { stage: progress.stage, error } };
  } finally {
    settings.turn.writesDone();
  }
}

/** The commands of one transaction, and the bookkeeping of its recipients. */
class Envelope {
  readonly mail: CommandLine;
  readonly rcpts: CommandLine[];
  readonly accepted: RecipientResult[] = [];
  /** Every refused recipient, in order, including the deferred ones. */
  readonly rejected: RecipientResult[] = [];
  readonly deferred: Deferral[] = [];
  mailReply: SmtpReply | undefined;

  constructor(readonly input: TransactionInput) {
    this.mail = { line: commands.mailFrom(input.from, input.mailParams) };
    this.rcpts = input.to.map((address) => ({
      line: commands.rcptTo(address, input.rcptParams(address)),
    }));
  }

  /** The commands to write first: RSET when earlier replies are outstanding, then MAIL. */
  opening(turn: Turn): CommandLine[] {
    return turn.resetFirst ? [{ line: "RSET" }, this.mail] : [this.mail];
  }

  /** Reads the replies to {@linkcode opening} and to every RCPT. */
  async readReplies(session: Session, wait: Wait, turn: Turn): Promise<void> {
    if (turn.resetFirst) await readReply(session, { ...wait, phase: "command" }, "RSET", turn);
    this.mailReply = await readReply(session, wait, this.mail.line, turn);
    for (const [i, address] of this.input.to.entries()) {
      this.record(
        i,
        address,
        await readReply(session, { ...wait, phase: "rcpt" }, this.rcpts[i]!.line, turn),
      );
    }
  }

  /** Without pipelining: MAIL, then each RCPT, waiting for every reply. */
  async sendOneByOne(session: Session, wait: Wait, turn: Turn): Promise<void> {
    this.mailReply = await commandReply(session, this.mail, wait, turn);
    if (!positive(this.mailReply)) return;
    for (const [i, address] of this.input.to.entries()) {
      const rcptWait: Wait = { ...wait, phase: "rcpt" };
      this.record(i, address, await commandReply(session, this.rcpts[i]!, rcptWait, turn));
    }
  }

  record(position: number, address: string, reply: SmtpReply): void {
    const result = { address, reply };
    if (positive(reply)) {
      this.accepted.push(result);
    } else {
      this.rejected.push(result);
      if (isTooManyRecipients(reply)) this.deferred.push({ position, result });
    }
  }

  /**
   * The result once the message was accepted. A transaction that accepted no recipient fails
   * instead ({@linkcode failure}), with the deferred ones among the refused: they are not
   * deferred again, so that a server that takes none cannot make the client loop.
   */
  result(reply: SmtpReply): TransactionResult {
    const deferred = new Set(this.deferred.map((d) => d.result));
    const rejected = this.rejected.filter((r) => !deferred.has(r));
    return { accepted: this.accepted, rejected, deferred: this.deferred, reply };
  }

  /** The error that ends the transaction before its data, if any. */
  failure(): SmtpReplyError | SmtpRecipientsError | undefined {
    if (this.mailReply && !positive(this.mailReply)) {
      return new SmtpReplyError("Sender refused", "mail", this.mail.line, this.mailReply);
    }
    if (this.mailReply && this.accepted.length === 0) {
      return noRecipientError(this.accepted, this.rejected);
    }
    return undefined;
  }
}

/** The waits of a transaction: for its commands, and for its data. */
function waitsOf(settings: TransactionSettings): { wait: Wait; dataWait: Wait } {
  const { timeouts, signal, total } = settings;
  const wait: Wait = { phase: "mail", timeoutMs: timeouts.commandMs, signal, total };
  return { wait, dataWait: { ...wait, phase: "data" } };
}

async function sendWithData(
  session: Session,
  input: TransactionInput,
  settings: TransactionSettings,
  progress: Progress,
): Promise<TransactionResult> {
  const { timeouts, turn } = settings;
  const { wait, dataWait } = waitsOf(settings);
  const envelope = new Envelope(input);
  const dataCommand: CommandLine = { line: "DATA" };
  let dataReply: SmtpReply | undefined;

  progress.stage = "envelope";
  if (settings.pipelining) {
    await session.write([...envelope.opening(turn), ...envelope.rcpts, dataCommand], wait);
    await envelope.readReplies(session, wait, turn);
    dataReply = await readReply(session, dataWait, "DATA", turn);
  } else {
    await envelope.sendOneByOne(session, wait, turn);
  }

  const failure = envelope.failure();
  if (failure) {
    // With pipelining the server may have answered DATA with 354 all the same: end the empty
    // message so that the session is back in a known state.
    if (dataReply?.code === 354) await commandReply(session, { line: "." }, dataWait, turn);
    await reset(session, wait, turn);
    throw failure;
  }

  dataReply ??= await commandReply(session, dataCommand, dataWait, turn);
  if (dataReply.code !== 354) {
    await reset(session, wait, turn);
    throw new SmtpReplyError("Message data refused", "data", "DATA", dataReply);
  }

  const data = new DataEncoder(true, input.keepLineEnds);
  const batch = new Batch();
  progress.stage = "data";
  for await (const chunk of chunksOf(input.body, input.ownsBody)) {
    batch.add(data.push(chunk));
    if (batch.length >= WRITE_BATCH) await session.writeBytes(batch.take(), dataWait);
  }
  batch.add(data.finish());
  await writeTerminator(session, batch.take(), dataWait, progress);
  if (settings.pipelining) turn.writesDone();
  const endWait: Wait = { ...dataWait, timeoutMs: timeouts.dataEndMs };
  const reply = await readReply(session, endWait, ".", turn);
  if (!positive(reply)) throw new SmtpReplyError("Message refused", "data", ".", reply);
  return envelope.result(reply);
}

async function sendWithBdat(
  session: Session,
  input: TransactionInput,
  settings: TransactionSettings,
  progress: Progress,
): Promise<TransactionResult> {
  const { timeouts, turn } = settings;
  const { wait, dataWait } = waitsOf(settings);
  const envelope = new Envelope(input);

  // Without pipelining: the envelope first, one command at a time.
  let envelopeRead = false;
  if (!settings.pipelining) {
    progress.stage = "envelope";
    await envelope.sendOneByOne(session, wait, turn);
    const failure = envelope.failure();
    if (failure) {
      await reset(session, wait, turn);
      throw failure;
    }
    envelopeRead = true;
  }

  // With pipelining the envelope goes out with the first chunk; replies are read in order.
  const pending = new Batch();
  if (!envelopeRead) {
    const opening = [...envelope.opening(turn), ...envelope.rcpts];
    pending.add(encoder.encode(opening.map((c) => c.line + "\r\n").join("")));
    for (const command of opening) session.logCommand(command.line);
  }
  let unread = 0;
  let bdatFailure: { reply: SmtpReply; command: string } | undefined;

  const readEnvelope = async () => {
    if (envelopeRead) return;
    envelopeRead = true;
    await envelope.readReplies(session, wait, turn);
  };
  const readBdat = async (command: string, last: boolean) => {
    await readEnvelope();
    const reply = await readReply(
      session,
      last ? { ...dataWait, timeoutMs: timeouts.dataEndMs } : dataWait,
      command,
      turn,
    );
    unread--;
    if (!positive(reply) && !bdatFailure) bdatFailure = { reply, command };
    return reply;
  };
  const sendChunk = async (chunk: Uint8Array, last: boolean) => {
    const command = commands.bdat(chunk.length, last);
    session.logCommand(`${command} (${chunk.length} bytes of message data)`);
    pending.add(encoder.encode(command + "\r\n"));
    pending.add(chunk);
    if (last) await writeTerminator(session, pending.take(), dataWait, progress);
    else await session.writeBytes(pending.take(), dataWait);
    unread++;
  };

  const crlf = new DataEncoder(false, input.keepLineEnds, input.binary);
  const body = new Batch();
  let finalReply: SmtpReply | undefined;
  let stopped = false;
  progress.stage = "data";
  for await (const chunk of chunksOf(input.body, input.ownsBody)) {
    body.add(crlf.push(chunk));
    if (body.length >= BDAT_CHUNK) {
      await sendChunk(body.take(), false);
      while (unread > MAX_UNREAD_BDAT || (unread > 0 && !envelopeRead)) {
        await readBdat("BDAT", false);
      }
      if (bdatFailure || envelope.failure()) {
        stopped = true;
        break;
      }
    }
  }
  if (!stopped) {
    body.add(crlf.finish());
    await sendChunk(body.take(), true);
    if (settings.pipelining) turn.writesDone();
    while (unread > 0) {
      finalReply = await readBdat(unread === 1 ? "BDAT LAST" : "BDAT", unread === 1);
    }
  } else {
    while (unread > 0) await readBdat("BDAT", false);
  }
  await readEnvelope();

  const failure = envelope.failure();
  if (failure) {
    // A BDAT LAST that failed ended the transaction; RSET makes sure of it.
    await reset(session, wait, turn);
    throw failure;
  }
  if (bdatFailure || stopped || !finalReply) {
    await reset(session, wait, turn);
    const { reply, command } = bdatFailure ?? { reply: finalReply!, command: "BDAT" };
    throw new SmtpReplyError("Message refused", "data", command, reply);
  }
  return envelope.result(finalReply);
}

function noRecipientError(
  accepted: RecipientResult[],
  rejected: RecipientResult[],
): SmtpRecipientsError {
  const detail = rejected.length > 0 ? `: ${describeRecipients(rejected)}` : "";
  return new SmtpRecipientsError(
    `Cannot send message: no recipient was accepted${detail}`,
    accepted,
    rejected,
  );
}

/** RSET after a failed transaction; a failure here closes the session. */
async function reset(session: Session, wait: Wait, turn: Turn): Promise<void> {
  if (session.closed) return;
  try {
    const reply = await commandReply(
      session,
      { line: "RSET" },
      { ...wait, phase: "command" },
      turn,
    );
    if (!positive(reply)) session.close();
  } catch {
    session.close();
  }
}
