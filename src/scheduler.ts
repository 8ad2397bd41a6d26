/**
 * The order of work on one connection: tasks write one after another, and a pipelined
 * transaction lets the next one write while its replies are still on the way (RFC 2920).
 *
 * @module
 */

import type { Turn } from "./protocol/_transaction.ts";

/** Transactions that may have written everything and still await replies on one connection. */
const MAX_TRANSACTIONS_IN_FLIGHT = 32;

/**
 * Rejects as soon as `signal` aborts, without waiting for `promise` (a queued send that is
 * aborted leaves the queue at once; when its turn comes it does nothing).
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  promise.catch(() => {});
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Hands out {@linkcode Turn}s on one connection, in the order tasks were scheduled. */
export class TurnScheduler {
  #writeTail: Promise<void> = Promise.resolve();
  #readTail: Promise<void> = Promise.resolve();
  #inFlight = new Set<Promise<void>>();
  /**
   * Runs `task` in its turn. Tasks write one after another; a pipelined transaction lets the
   * next one write as soon as it has written everything, while its replies are still on the
   * way. `exclusive` tasks wait until every earlier reply was read.
   */
  schedule<T>(task: (turn: Turn) => Promise<T>, exclusive = false): Promise<T> {
    const previousWrites = this.#writeTail;
    const previousReads = this.#readTail;
    let writesDone!: () => void;
    let readsDone!: () => void;
    this.#writeTail = new Promise<void>((resolve) => writesDone = resolve);
    const finished = new Promise<void>((resolve) => readsDone = resolve);
    this.#readTail = finished;
    return (async () => {
      await previousWrites;
      try {
        if (exclusive) await previousReads;
        while (this.#inFlight.size >= MAX_TRANSACTIONS_IN_FLIGHT) {
          await Promise.race(this.#inFlight);
        }
        const turn: Turn = {
          ready: previousReads,
          resetFirst: this.#inFlight.size > 0,
          writesDone,
        };
        this.#inFlight.add(finished);
        void finished.then(() => this.#inFlight.delete(finished));
        return await task(turn);
      } finally {
        writesDone();
        // Replies are read in order: this turn is over once the earlier ones are too.
        void previousReads.then(readsDone);
      }
    })();
  }
}
