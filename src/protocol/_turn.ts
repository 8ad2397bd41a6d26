/**
 * A transaction's place among those pipelined on one connection, and the reading of its
 * replies in that place.
 *
 * @module
 */

import { SmtpReplyError } from "../errors.ts";
import type { SmtpReply } from "../types.ts";
import type { CommandLine, Session, Wait } from "./_session.ts";
import { withPhase } from "./_deadlines.ts";

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
}

/**
 * What a step of work on a connection hands back once it will write nothing more: the rest of
 * its work (reading its last replies). The next step may write from then on; its replies come
 * after `rest` has read all of its own.
 */
export interface Written<T> {
  readonly rest: Promise<T>;
}

/** The {@linkcode Turn.ready} of a turn with no earlier replies outstanding. */
export const READY: Promise<void> = Promise.resolve();

/**
 * The replies of one transaction, in its turn: the first read waits until every earlier
 * transaction on the connection has read all of its replies; later ones need not ask again.
 */
export class Replies {
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

export function positive(reply: SmtpReply): boolean {
  return reply.code >= 200 && reply.code < 300;
}

/**
 * RSET after a failed transaction; a failure here closes the session. After the transaction
 * handed over its turn (`handedOver`: the session's {@linkcode Session.writes} then), it writes
 * RSET only while no later transaction has written: one that has began with RSET itself, and a
 * reset written after its commands would take one of its replies.
 */
export async function reset(replies: Replies, wait: Wait, handedOver?: number): Promise<void> {
  const { session } = replies;
  if (session.closed) return;
  if (handedOver !== undefined && session.writes !== handedOver) return;
  try {
    const reply = await replies.command({ line: "RSET" }, withPhase(wait, "command"));
    if (!positive(reply)) session.close();
  } catch {
    session.close();
  }
}
