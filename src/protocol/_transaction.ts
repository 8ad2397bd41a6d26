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

/** The {@linkcode Turn.ready} of a turn with no earlier replies outstanding. */
export const READY: Promise<void> = Promise.resolve();

/** How to send it. */
export interface TransactionSettings {
  /** Where this transaction stands among the ones pipelined on the connection. */
  readonly turn: Turn;
  readonly pipelining: boolean;
  readonly chunking: boolean;
  /** LMTP (RFC 2033): one reply per accepted recipient after the data. */
  readonly lmtp?: boolean;
  readonly timeouts: ResolvedTimeouts;
  readonly signal?: AbortSignal | undefined;
  /** The limit of the whole send. */
  readonly total?: TotalDeadline | undefined;
  /**
   * Awaited just before the message's terminator is written (see `SendOptions`); when it
   * rejects, the terminator is not written, the connection is closed and the transaction fails
   * with its error, the message not sent.
   */
  readonly beforeTerminator?: (() => Promise<void> | void) | undefined;
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
 * The replies of one transaction, in its turn: the first read waits until every earlier
 * transaction on the connection has read all of its replies; later ones need not ask again.
 */
class Replies {
  readonly session: Session;
  readonly turn: Turn;
  #ready = false;

  constructor(session: Session, turn: Turn) {
    this.session = session;
    this.turn = turn;
  }

  /**
   * Reads a reply; a 421 (the server is closing the connection) ends the session at once, so
   * that no later pipelined reply is waited for.
   */
  async read(wait: Wait, command: string): Promise<SmtpReply> {
    if (!this.#ready) {
      if (this.turn.ready !== READY) await this.turn.ready;
      this.#ready = true;
    }
    const reply = await this.session.read(wait);
    if (reply.code === 421) {
      this.session.close();
      throw new SmtpReplyError("Server is closing the connection", wait.phase, command, reply);
    }
    return reply;
  }

  /** Writes one command and reads its reply. */
  async command(command: CommandLine, wait: Wait): Promise<SmtpReply> {
    await this.session.write([command], wait);
    return await this.read(wait, command.line);
  }
}

function positive(reply: SmtpReply): boolean {
  return reply.code >= 200 && reply.code < 300;
}

/** Collects byte arrays to write together. */
class Batch {
  #parts: Uint8Array[] = [];
  length = 0;

  add(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#parts.push(bytes);
    this.length += bytes.length;
  }

  /** The arrays collected, uncopied (the session writes them with one vectored write). */
  take(): Uint8Array[] {
    const parts = this.#parts;
    this.#parts = [];
    this.length = 0;
    return parts;
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
  bytes: Uint8Array | readonly Uint8Array[],
  wait: Wait,
  progress: Progress,
  before: TransactionSettings["beforeTerminator"],
): Promise<void> {
  if (before) {
    try {
      await before();
    } catch (error) {
      // Half a message is on the wire: only closing the connection keeps the server from it.
      session.close();
      throw error;
    }
  }
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
  session.hold();
  try {
    const replies = new Replies(session, settings.turn);
    const send = !settings.chunking
      ? sendWithData
      : settings.pipelining && input.body instanceof Uint8Array &&
          input.body.length < BDAT_CHUNK / 2
      ? sendWholeWithBdat
      : sendWithBdat;
    return { ok: true, result: await send(replies, input, settings, progress) };
  } catch (error) {
    return { ok: false, failure: { stage: progress.stage, error } };
  } finally {
    session.release();
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
    const to = input.to;
    this.rcpts = [];
    for (let i = 0; i < to.length; i++) {
      const address = to[i]!;
      this.rcpts.push({ line: commands.rcptTo(address, input.rcptParams(address)) });
    }
  }

  /** The commands to write first: RSET when earlier replies are outstanding, then MAIL. */
  opening(turn: Turn): CommandLine[] {
    return turn.resetFirst ? [{ line: "RSET" }, this.mail] : [this.mail];
  }

  /** The text of {@linkcode opening} and every RCPT, each line ended with CRLF. */
  openingText(turn: Turn): string {
    let text = turn.resetFirst ? `RSET\r\n${this.mail.line}\r\n` : `${this.mail.line}\r\n`;
    for (const rcpt of this.rcpts) text += rcpt.line + "\r\n";
    return text;
  }

  /** Reads the replies to {@linkcode opening} and to every RCPT. */
  async readReplies(replies: Replies, wait: Wait, turn: Turn): Promise<void> {
    if (turn.resetFirst) await replies.read({ ...wait, phase: "command" }, "RSET");
    this.mailReply = await replies.read(wait, this.mail.line);
    const to = this.input.to;
    const rcptWait: Wait = { ...wait, phase: "rcpt" };
    for (let i = 0; i < to.length; i++) {
      this.record(i, to[i]!, await replies.read(rcptWait, this.rcpts[i]!.line));
    }
  }

  /** Without pipelining: MAIL, then each RCPT, waiting for every reply. */
  async sendOneByOne(replies: Replies, wait: Wait): Promise<void> {
    this.mailReply = await replies.command(this.mail, wait);
    if (!positive(this.mailReply)) return;
    const to = this.input.to;
    const rcptWait: Wait = { ...wait, phase: "rcpt" };
    for (let i = 0; i < to.length; i++) {
      this.record(i, to[i]!, await replies.command(this.rcpts[i]!, rcptWait));
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
    if (this.deferred.length === 0) {
      return { accepted: this.accepted, rejected: this.rejected, deferred: this.deferred, reply };
    }
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

/** Below this size, command lines and data are joined into one array for the write. */
const JOIN_BELOW = 16 * 1024;

/**
 * `text` (command lines) and then `parts` (data), ready to write: small, in one array with the
 * text encoded straight into it; large, the encoded text and the parts as they are (written
 * with one vectored write, without copying the data).
 */
function withCommands(text: string, parts: Uint8Array[], size: number): Uint8Array[] {
  if (size >= JOIN_BELOW) return [encoder.encode(text), ...parts];
  // UTF-8 takes at most 3 bytes per UTF-16 code unit.
  const out = new Uint8Array(text.length * 3 + size);
  let offset = encoder.encodeInto(text, out).written;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return [out.subarray(0, offset)];
}

async function sendWithData(
  replies: Replies,
  input: TransactionInput,
  settings: TransactionSettings,
  progress: Progress,
): Promise<TransactionResult> {
  const { session } = replies;
  const { timeouts, signal, turn, total } = settings;
  const wait: Wait = { phase: "mail", timeoutMs: timeouts.commandMs, signal, total };
  const dataWait: Wait = { ...wait, phase: "data" };
  const envelope = new Envelope(input);
  const dataCommand: CommandLine = { line: "DATA" };
  let dataReply: SmtpReply | undefined;

  progress.stage = "envelope";
  if (settings.pipelining) {
    await session.write([...envelope.opening(turn), ...envelope.rcpts, dataCommand], wait);
    await envelope.readReplies(replies, wait, turn);
    dataReply = await replies.read(dataWait, "DATA");
  } else {
    await envelope.sendOneByOne(replies, wait);
  }

  const failure = envelope.failure();
  if (failure) {
    // With pipelining the server may have answered DATA with 354 all the same: end the empty
    // message so that the session is back in a known state.
    if (dataReply?.code === 354) await replies.command({ line: "." }, dataWait);
    await reset(replies, wait);
    throw failure;
  }

  dataReply ??= await replies.command(dataCommand, dataWait);
  if (dataReply.code !== 354) {
    await reset(replies, wait);
    throw new SmtpReplyError("Message data refused", "data", "DATA", dataReply);
  }

  const data = new DataEncoder(true, input.keepLineEnds);
  const batch = new Batch();
  progress.stage = "data";
  if (input.body instanceof Uint8Array) {
    // In memory: no stream to read, one write (or more, past WRITE_BATCH).
    batch.add(data.push(input.body));
  } else {
    for await (const chunk of chunksOf(input.body, input.ownsBody)) {
      batch.add(data.push(chunk));
      if (batch.length >= WRITE_BATCH) await session.writeBytes(batch.take(), dataWait);
    }
  }
  batch.add(data.finish());
  await writeTerminator(session, batch.take(), dataWait, progress, settings.beforeTerminator);
  if (settings.pipelining) turn.writesDone();
  const endWait: Wait = { ...dataWait, timeoutMs: timeouts.dataEndMs };
  if (settings.lmtp) return await lmtpReplies(replies, envelope, endWait);
  const reply = await replies.read(endWait, ".");
  if (!positive(reply)) throw new SmtpReplyError("Message refused", "data", ".", reply);
  return envelope.result(reply);
}

/**
 * BDAT with pipelining, for a message in memory that fits in one chunk (even with every line
 * end doubled): the envelope, `BDAT n LAST` and the message in one write, then the replies in
 * order. What {@linkcode sendWithBdat} does for such a message, in a straight line.
 */
async function sendWholeWithBdat(
  replies: Replies,
  input: TransactionInput,
  settings: TransactionSettings,
  progress: Progress,
): Promise<TransactionResult> {
  const { session } = replies;
  const { timeouts, signal, turn, total } = settings;
  const wait: Wait = { phase: "mail", timeoutMs: timeouts.commandMs, signal, total };
  const dataWait: Wait = { phase: "data", timeoutMs: timeouts.commandMs, signal, total };
  const lastWait: Wait = { phase: "data", timeoutMs: timeouts.dataEndMs, signal, total };
  const envelope = new Envelope(input);
  const crlf = new DataEncoder(false, input.keepLineEnds, input.binary);
  const body = crlf.push(input.body as Uint8Array);
  const end = crlf.finish();
  const parts = end.length === 0 ? [body] : [body, end];
  const size = body.length + end.length;
  const command = commands.bdat(size, true);
  if (session.transcribing) {
    for (const line of [...envelope.opening(turn), ...envelope.rcpts]) {
      session.logCommand(line.line);
    }
    session.logCommand(`${command} (${size} bytes of message data)`);
  }
  progress.stage = "data";
  const bytes = withCommands(envelope.openingText(turn) + command + "\r\n", parts, size);
  await writeTerminator(session, bytes, dataWait, progress, settings.beforeTerminator);
  turn.writesDone();
  await envelope.readReplies(replies, wait, turn);
  const reply = await replies.read(lastWait, "BDAT LAST");
  const failure = envelope.failure() ??
    (positive(reply)
      ? undefined
      : new SmtpReplyError("Message refused", "data", "BDAT LAST", reply));
  if (failure) {
    // A BDAT LAST that failed ended the transaction; RSET makes sure of it.
    await reset(replies, wait);
    throw failure;
  }
  return envelope.result(reply);
}

/**
 * LMTP (RFC 2033 section 4.2): after the data, one reply per accepted recipient, in RCPT order;
 * each is that recipient's final delivery. A recipient refused then joins the refused ones with
 * that reply; when none has the message, the send fails as if no RCPT was accepted.
 */
async function lmtpReplies(
  replies: Replies,
  envelope: Envelope,
  wait: Wait,
): Promise<TransactionResult> {
  const accepted = envelope.accepted.splice(0);
  let last: SmtpReply | undefined;
  for (const recipient of accepted) {
    const reply = await replies.read(wait, ".");
    last = reply;
    const result = { address: recipient.address, reply };
    if (positive(reply)) envelope.accepted.push(result);
    else envelope.rejected.push(result);
  }
  if (envelope.accepted.length === 0 || !last) {
    throw noRecipientError(envelope.accepted, envelope.rejected);
  }
  return envelope.result(last);
}

async function sendWithBdat(
  replies: Replies,
  input: TransactionInput,
  settings: TransactionSettings,
  progress: Progress,
): Promise<TransactionResult> {
  const { session } = replies;
  const { timeouts, signal, turn, total } = settings;
  const wait: Wait = { phase: "mail", timeoutMs: timeouts.commandMs, signal, total };
  const dataWait: Wait = { ...wait, phase: "data" };
  const lastWait: Wait = { ...dataWait, timeoutMs: timeouts.dataEndMs };
  const envelope = new Envelope(input);

  // Without pipelining: the envelope first, one command at a time.
  let envelopeRead = false;
  if (!settings.pipelining) {
    progress.stage = "envelope";
    await envelope.sendOneByOne(replies, wait);
    const failure = envelope.failure();
    if (failure) {
      await reset(replies, wait);
      throw failure;
    }
    envelopeRead = true;
  }

  // With pipelining the envelope goes out with the first chunk; replies are read in order.
  let pending = "";
  if (!envelopeRead) {
    pending = envelope.openingText(turn);
    if (session.transcribing) {
      for (const command of [...envelope.opening(turn), ...envelope.rcpts]) {
        session.logCommand(command.line);
      }
    }
  }
  let unread = 0;
  let bdatFailure: { reply: SmtpReply; command: string } | undefined;

  const readBdat = async (command: string, last: boolean) => {
    if (!envelopeRead) {
      envelopeRead = true;
      await envelope.readReplies(replies, wait, turn);
    }
    const reply = await replies.read(last ? lastWait : dataWait, command);
    unread--;
    if (!positive(reply) && !bdatFailure) bdatFailure = { reply, command };
    return reply;
  };
  /** Writes one BDAT chunk (the body collected), after the commands still pending. */
  const sendChunk = async (last: boolean) => {
    const size = body.length;
    const command = commands.bdat(size, last);
    if (session.transcribing) {
      session.logCommand(`${command} (${size} bytes of message data)`);
    }
    const bytes = withCommands(pending + command + "\r\n", body.take(), size);
    pending = "";
    if (last) await writeTerminator(session, bytes, dataWait, progress, settings.beforeTerminator);
    else await session.writeBytes(bytes, dataWait);
    unread++;
  };
  /** Sends the full chunk collected; true when a reply says to stop. */
  const sendFull = async (): Promise<boolean> => {
    await sendChunk(false);
    while (unread > MAX_UNREAD_BDAT || (unread > 0 && !envelopeRead)) {
      await readBdat("BDAT", false);
    }
    return bdatFailure !== undefined || envelope.failure() !== undefined;
  };

  const crlf = new DataEncoder(false, input.keepLineEnds, input.binary);
  const body = new Batch();
  let finalReply: SmtpReply | undefined;
  let stopped = false;
  progress.stage = "data";
  if (input.body instanceof Uint8Array) {
    // In memory: no stream to read; small, it goes out with the envelope in one write.
    body.add(crlf.push(input.body));
    if (body.length >= BDAT_CHUNK) stopped = await sendFull();
  } else {
    for await (const chunk of chunksOf(input.body, input.ownsBody)) {
      body.add(crlf.push(chunk));
      if (body.length >= BDAT_CHUNK && await sendFull()) {
        stopped = true;
        break;
      }
    }
  }
  if (!stopped) {
    body.add(crlf.finish());
    await sendChunk(true);
    if (settings.pipelining) turn.writesDone();
    while (unread > 0) {
      finalReply = await readBdat(unread === 1 ? "BDAT LAST" : "BDAT", unread === 1);
    }
  } else {
    while (unread > 0) await readBdat("BDAT", false);
  }
  if (!envelopeRead) {
    envelopeRead = true;
    await envelope.readReplies(replies, wait, turn);
  }

  const failure = envelope.failure();
  if (failure) {
    // A BDAT LAST that failed ended the transaction; RSET makes sure of it.
    await reset(replies, wait);
    throw failure;
  }
  if (bdatFailure || stopped || !finalReply) {
    await reset(replies, wait);
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
async function reset(replies: Replies, wait: Wait): Promise<void> {
  const { session } = replies;
  if (session.closed) return;
  try {
    const reply = await replies.command({ line: "RSET" }, { ...wait, phase: "command" });
    if (!positive(reply)) session.close();
  } catch {
    session.close();
  }
}
