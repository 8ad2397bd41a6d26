/**
 * A transaction with DATA: the envelope (pipelined with DATA when the server allows it), then
 * the message, dot-stuffed, ended by the `.` line.
 *
 * @module
 */

import { SmtpReplyError } from "../errors.ts";
import type { SmtpReply } from "../types.ts";
import { DataEncoder } from "./_dot_stuff.ts";
import { Envelope, lmtpReplies } from "./_envelope.ts";
import { Batch, chunksOf, type SendRun, WRITE_BATCH, writeTerminator } from "./_message_data.ts";
import type { CommandLine, Wait } from "./_session.ts";
import type { TransactionResult } from "./_transaction.ts";
import { positive, type Replies, reset, type Written } from "./_turn.ts";

export async function sendWithData(run: SendRun): Promise<Written<TransactionResult>> {
  const { replies, input, settings, progress, waits: { mail: wait, data: dataWait } } = run;
  const { session } = replies;
  const turn = settings.turn;
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
    for await (const chunk of chunksOf(input.body, input.ownsBody, WRITE_BATCH)) {
      batch.add(data.push(chunk));
      if (batch.length >= WRITE_BATCH) await session.writeBytes(batch.take(), dataWait);
    }
  }
  batch.add(data.finish());
  await writeTerminator(session, batch.take(), dataWait, progress, settings.beforeTerminator);
  const rest = settings.lmtp
    ? lmtpReplies(replies, envelope, run.waits.end)
    : finalReply(replies, envelope, run.waits.end);
  // Without pipelining, the next transaction writes only once this one has its replies.
  if (!settings.pipelining) await rest;
  return { rest };
}

/** The reply to the data: the message accepted, or refused. */
async function finalReply(
  replies: Replies,
  envelope: Envelope,
  wait: Wait,
): Promise<TransactionResult> {
  const reply = await replies.read(wait, ".");
  if (!positive(reply)) throw new SmtpReplyError("Message refused", "data", ".", reply);
  return envelope.result(reply);
}
