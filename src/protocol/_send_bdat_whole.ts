/**
 * The straight-line BDAT path: a message in memory that fits in one chunk, sent with its
 * envelope in one write.
 *
 * @module
 */

import { SmtpReplyError } from "../errors.ts";
import * as commands from "./_commands.ts";
import { DataEncoder } from "./_dot_stuff.ts";
import { Envelope } from "./_envelope.ts";
import { type SendRun, withCommands, writeTerminator } from "./_message_data.ts";
import type { TransactionResult } from "./_transaction.ts";
import { positive, reset, type Written } from "./_turn.ts";

/**
 * BDAT with pipelining, for a message in memory that fits in one chunk (even with every line
 * end doubled): the envelope, `BDAT n LAST` and the message in one write, then the replies in
 * order. What {@linkcode sendWithBdat} does for such a message, in a straight line.
 */
export async function sendWholeWithBdat(run: SendRun): Promise<Written<TransactionResult>> {
  const { replies, input, settings: { turn }, progress } = run;
  const { session } = replies;
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
  await writeTerminator(session, bytes, run.waits.data, progress, run.settings.beforeTerminator);
  return { rest: readReplies(run, envelope, session.writes) };
}

/**
 * The replies to the envelope and to `BDAT LAST`, read after the turn was handed over (the
 * session had made `handedOver` writes then).
 */
async function readReplies(
  run: SendRun,
  envelope: Envelope,
  handedOver: number,
): Promise<TransactionResult> {
  const { replies, settings: { turn }, waits: { mail: wait, end: lastWait } } = run;
  await envelope.readReplies(replies, wait, turn);
  const reply = await replies.read(lastWait, "BDAT LAST");
  const failure = envelope.failure() ??
    (positive(reply)
      ? undefined
      : new SmtpReplyError("Message refused", "data", "BDAT LAST", reply));
  if (failure) {
    // A BDAT LAST that failed ended the transaction; RSET makes sure of it.
    await reset(replies, wait, handedOver);
    throw failure;
  }
  return envelope.result(reply);
}
