/**
 * A scripted ESMTP server with a recipient limit, for the recipient-limit tests: after `limit`
 * accepted recipients in one transaction it answers every further RCPT with "too many
 * recipients", as Postfix does after its `smtpd_recipient_limit`. It can also fail one
 * transaction at MAIL or at the end of its data, and it records every transaction with the
 * connection it came on and the exact message data it received.
 */

import {
  greet,
  type ScriptedConnection,
  startScriptedServer,
} from "../_helpers/scripted_server.ts";

/** One transaction the server saw through to the end of its data. */
export interface Transaction {
  /** The connection it came on, from 0. */
  readonly connection: number;
  /** Its number among every MAIL the server saw, from 0. */
  readonly index: number;
  readonly from: string;
  /** The recipients it accepted. */
  readonly to: readonly string[];
  /** The message data as received (dot-stuffed with DATA, the chunks joined with BDAT). */
  readonly data: string;
  /** The reply to the end of the data. */
  readonly reply: string;
}

/** What to do instead of the usual reply: a reply (a 421 closes after it), or cut at once. */
export type Override = string | "cut" | undefined;

/** Settings of a limit server. */
export interface LimitServerOptions {
  /** The EHLO keywords (besides 8BITMIME and ENHANCEDSTATUSCODES). */
  readonly extensions: readonly string[];
  /**
   * Recipients accepted per transaction (by transaction number, or the same for all); the
   * further ones get `tooMany`.
   * @default {Infinity}
   */
  readonly limit?: number | ((transaction: number) => number);
  /** @default {"452 4.5.3 Error: too many recipients"} */
  readonly tooMany?: string;
  /** The reply to a RCPT within the limit. @default {"250 2.1.5 Ok"} */
  readonly rcpt?: (address: string) => string;
  /** Overrides the reply to MAIL of a transaction (numbered over every connection). */
  readonly onMail?: (transaction: number) => Override;
  /** Overrides the reply to the end of a transaction's data. */
  readonly onEnd?: (transaction: number) => Override;
}

/** A running limit server. */
export interface LimitServer extends AsyncDisposable {
  readonly port: number;
  /** Every transaction that ended with a 250 reply to its data: the server holds it. */
  readonly delivered: Transaction[];
  /** Every command line, per connection. */
  readonly commands: string[][];
  /** Every reply line sent, per connection. */
  readonly replies: string[][];
  close(): Promise<void>;
}

class Cut extends Error {}

/** Starts a limit server on 127.0.0.1. */
export function startLimitServer(options: LimitServerOptions): LimitServer {
  const delivered: Transaction[] = [];
  const commands: string[][] = [];
  const replies: string[][] = [];
  let transactions = 0;
  const server = startScriptedServer(async (conn, connection) => {
    commands[connection] = [];
    replies[connection] = [];
    try {
      await serve(conn, connection);
    } catch (error) {
      if (error instanceof Cut) return;
      if (error instanceof Deno.errors.BrokenPipe) return;
      if (error instanceof Deno.errors.ConnectionReset) return;
      throw error;
    }
  });

  async function serve(conn: ScriptedConnection, connection: number): Promise<void> {
    const send = async (line: string) => {
      replies[connection]!.push(line);
      await conn.send(line + "\r\n");
      if (line.startsWith("421")) throw new Cut();
    };
    /** Sends `fallback`, or what `override` says instead. */
    const answer = async (override: Override, fallback: string) => {
      if (override === "cut") throw new Cut();
      await send(override ?? fallback);
      return override === undefined || override.startsWith("2");
    };
    await greet(conn, ["8BITMIME", "ENHANCEDSTATUSCODES", ...options.extensions]);
    let from: string | undefined;
    let to: string[] = [];
    let chunks = "";
    let index = -1;
    const reset = () => {
      from = undefined;
      to = [];
      chunks = "";
    };
    const finish = async (data: string) => {
      const override = options.onEnd?.(index);
      const reply = override === undefined || override === "cut"
        ? `250 2.0.0 Ok: queued as ${index}`
        : override;
      if (override === "cut") throw new Cut();
      if (reply.startsWith("250")) {
        delivered.push({ connection, index, from: from!, to, data, reply });
      }
      reset();
      await send(reply);
    };
    while (true) {
      const line = await conn.readLine();
      if (line === null) return;
      commands[connection]!.push(line);
      const verb = line.split(" ")[0]!.toUpperCase();
      if (verb === "QUIT") {
        await send("221 2.0.0 Bye");
        return;
      } else if (verb === "RSET" || verb === "NOOP") {
        if (verb === "RSET") reset();
        await send("250 2.0.0 Ok");
      } else if (verb === "MAIL") {
        index = transactions++;
        if (await answer(options.onMail?.(index), "250 2.1.0 Ok")) {
          from = /<([^>]*)>/.exec(line)![1]!;
        }
      } else if (verb === "RCPT") {
        const address = /<([^>]*)>/.exec(line)![1]!;
        const limit = typeof options.limit === "function"
          ? options.limit(index)
          : options.limit ?? Infinity;
        let reply: string;
        if (from === undefined) reply = "503 5.5.1 Error: need MAIL command";
        else if (to.length >= limit) {
          reply = options.tooMany ?? "452 4.5.3 Error: too many recipients";
        } else reply = options.rcpt?.(address) ?? "250 2.1.5 Ok";
        if (reply.startsWith("250")) to.push(address);
        await send(reply);
      } else if (verb === "DATA") {
        if (from === undefined || to.length === 0) {
          await send("554 5.5.1 Error: no valid recipients");
          continue;
        }
        await send("354 End data with <CR><LF>.<CR><LF>");
        const data = await conn.readData();
        if (data === null) return;
        await finish(data);
      } else if (verb === "BDAT") {
        const [, size, last] = line.split(" ");
        const bytes = await conn.readBytes(Number(size));
        if (bytes === null) return;
        if (from === undefined || to.length === 0) {
          await send("554 5.5.1 Error: no valid recipients");
          if (last) reset();
          continue;
        }
        chunks += new TextDecoder().decode(bytes);
        if (last) await finish(chunks);
        else await send("250 2.0.0 Ok: chunk");
      } else {
        await send("502 5.5.2 Error: command not recognized");
      }
    }
  }

  return {
    port: server.port,
    delivered,
    commands,
    replies,
    close: () => server.close(),
    [Symbol.asyncDispose]: () => server.close(),
  };
}

/** The four ways of sending: DATA or BDAT, pipelined or not. */
export const MODES = {
  "DATA": [],
  "DATA+PIPELINING": ["PIPELINING"],
  "BDAT": ["CHUNKING"],
  "BDAT+PIPELINING": ["PIPELINING", "CHUNKING"],
} as const satisfies Record<string, readonly string[]>;
