/**
 * One mail transaction: MAIL FROM, RCPT TO for each recipient, then the message with DATA or
 * BDAT, pipelined when the server allows it. Produces per-recipient results.
 *
 * @module
 */

import type { Failure } from "../delivery.ts";
import type { Timeouts } from "../options.ts";
import type * as commands from "./_commands.ts";
import type { TransactionResult } from "./_envelope.ts";
import { BDAT_CHUNK, Progress, type SendRun, waitsOf } from "./_message_data.ts";
import type { Session, TotalDeadline } from "./_session.ts";
import { sendWholeWithBdat } from "./_send_bdat_whole.ts";
import { sendWithBdat } from "./_send_bdat_chunked.ts";
import { sendWithData } from "./_send_data.ts";
import { Replies, type Turn, type Written } from "./_turn.ts";

export type { Deferral, TransactionResult } from "./_envelope.ts";
export { READY, type Turn, type Written } from "./_turn.ts";

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

/** How a transaction ended: its result, or how far it got and why it stopped. */
export type TransactionOutcome =
  | { readonly ok: true; readonly result: TransactionResult }
  | { readonly ok: false; readonly failure: Failure };

/**
 * Runs one transaction; resolves once it will write nothing more, with the rest of it (its last
 * replies) as a promise of how it ended. Never rejects, and never leaves a transaction open. A
 * failure comes with the {@linkcode Stage} it reached, from which `delivery.ts` judges whether
 * the server may hold the message.
 */
export async function runTransaction(
  session: Session,
  input: TransactionInput,
  settings: TransactionSettings,
): Promise<Written<TransactionOutcome>> {
  const progress = new Progress();
  session.hold();
  try {
    const run: SendRun = {
      replies: new Replies(session, settings.turn),
      input,
      settings,
      progress,
      waits: waitsOf(settings),
    };
    const send = !settings.chunking
      ? sendWithData
      : settings.pipelining && input.body instanceof Uint8Array &&
          input.body.length < BDAT_CHUNK / 2
      ? sendWholeWithBdat
      : sendWithBdat;
    const { rest } = await send(run);
    return { rest: outcomeOf(rest, progress, session) };
  } catch (error) {
    session.release();
    return { rest: Promise.resolve({ ok: false, failure: { stage: progress.stage, error } }) };
  }
}

/** How the transaction ended, once the rest of it is over. */
async function outcomeOf(
  rest: Promise<TransactionResult>,
  progress: Progress,
  session: Session,
): Promise<TransactionOutcome> {
  try {
    return { ok: true, result: await rest };
  } catch (error) {
    return { ok: false, failure: { stage: progress.stage, error } };
  } finally {
    session.release();
  }
}
