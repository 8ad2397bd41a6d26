/**
 * The general BDAT path: the message in chunks of at least `BDAT_CHUNK` bytes, the envelope
 * pipelined with the first one, at most `MAX_UNREAD_BDAT` replies left unread.
 *
 * @module
 */

import { SmtpReplyError } from "../errors.ts";
import type { SmtpReply } from "../types.ts";
import * as commands from "./_commands.ts";
import { DataEncoder } from "./_dot_stuff.ts";
import { Envelope } from "./_envelope.ts";
import {
  Batch,
  BDAT_CHUNK,
  chunksOf,
  MAX_UNREAD_BDAT,
  type SendRun,
  withCommands,
  writeTerminator,
} from "./_message_data.ts";
import type { TransactionResult } from "./_transaction.ts";
import { positive, reset, type Written } from "./_turn.ts";

export async function sendWithBdat(run: SendRun): Promise<Written<TransactionResult>> {
  const { replies, input, settings, progress } = run;
  const { mail: wait, data: dataWait, end: lastWait } = run.waits;
  const { session } = replies;
  const turn = settings.turn;
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
    if (last) {
      await writeTerminator(session, bytes, dataWait, progress, settings.beforeTerminator);
    } else await session.writeBytes(bytes, dataWait);
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
    for await (const chunk of chunksOf(input.body, input.ownsBody, BDAT_CHUNK)) {
      body.add(crlf.push(chunk));
      if (body.length >= BDAT_CHUNK && await sendFull()) {
        stopped = true;
        break;
      }
    }
  }
  /**
   * The replies still unread, and the result. `handedOver`: the session's writes when the turn
   * was handed over to the next transaction (undefined while this one holds it).
   */
  const readRest = async (handedOver: number | undefined): Promise<TransactionResult> => {
    if (!stopped) {
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
      await reset(replies, wait, handedOver);
      throw failure;
    }
    if (bdatFailure || stopped || !finalReply) {
      await reset(replies, wait, handedOver);
      const { reply, command } = bdatFailure ?? { reply: finalReply!, command: "BDAT" };
      throw new SmtpReplyError("Message refused", "data", command, reply);
    }
    return envelope.result(finalReply);
  };

  if (!stopped) {
    body.add(crlf.finish());
    await sendChunk(true);
    // With pipelining, the next transaction may write while these replies are on the way.
    if (settings.pipelining) return { rest: readRest(session.writes) };
  }
  return { rest: Promise.resolve(await readRest(undefined)) };
}
