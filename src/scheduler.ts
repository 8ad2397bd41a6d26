/**
 * The order of work on one connection: tasks write one after another, and a pipelined
 * transaction lets the next one write while its replies are still on the way (RFC 2920).
 *
 * @module
 */

import { READY, type Turn, type Written } from "./protocol/_transaction.ts";

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

/**
 * Whether one task has read all of its replies, once every earlier task has too: the reads of
 * tasks on one connection finish in order. A promise is made only for a task that waits on it.
 */
class Reads {
  done = false;
  #taskDone = false;
  #previous: Reads | undefined;
  #next: Reads | undefined;
  #promise: Promise<void> | undefined;
  #resolve: (() => void) | undefined;
  readonly #onDone: () => void;

  constructor(previous: Reads | undefined, onDone: () => void) {
    this.#onDone = onDone;
    if (previous && !previous.done) {
      this.#previous = previous;
      previous.#next = this;
    }
  }

  /** Settles once done. */
  promise(): Promise<void> {
    if (this.done) return READY;
    return this.#promise ??= new Promise<void>((resolve) => this.#resolve = resolve);
  }

  /** The task is over: done now, or once the previous task is. */
  taskDone(): void {
    this.#taskDone = true;
    this.#settle();
  }

  #settle(): void {
    if (this.done || !this.#taskDone || (this.#previous && !this.#previous.done)) return;
    this.done = true;
    this.#previous = undefined;
    this.#onDone();
    this.#resolve?.();
    const next = this.#next;
    this.#next = undefined;
    if (next) next.#settle();
  }
}

/**
 * Hands out {@linkcode Turn}s on one connection, in the order tasks were scheduled. The
 * bookkeeping is synchronous: a task that finds the connection idle starts at once, and
 * promises are made only for tasks that have to wait (for the write turn, for earlier replies,
 * or for room among the transactions in flight).
 */
export class TurnScheduler {
  /** Whether a task has the write turn. */
  #writing = false;
  /** Tasks waiting for the write turn, in order. */
  #queue: (() => void)[] = [];
  /** The reads of the task that had the write turn last. */
  #last: Reads | undefined;
  /** Tasks that started and have not read all of their replies (nor have earlier tasks). */
  #inFlight = 0;
  /** A task waiting for room among the transactions in flight (it holds the write turn). */
  #room: (() => void) | undefined;

  /**
   * Runs a pipelined `task` in its turn: tasks write one after another, and the next one may
   * write as soon as this one hands back what is left of it ({@linkcode Written}: its replies
   * still on the way).
   *
   * @returns What the rest of the task comes to.
   */
  pipelined<T>(task: (turn: Turn) => Promise<Written<T>>): Promise<T> {
    return this.#schedule(task, false);
  }

  /**
   * Runs `task` alone: once every earlier reply was read, and before the next task writes.
   *
   * @returns What the task returns.
   */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    return this.#schedule(async () => ({ rest: Promise.resolve(await task()) }), true);
  }

  #schedule<T>(task: (turn: Turn) => Promise<Written<T>>, exclusive: boolean): Promise<T> {
    if (!this.#writing) {
      this.#writing = true;
      return this.#run(task, exclusive);
    }
    return new Promise<void>((resolve) => this.#queue.push(resolve))
      .then(() => this.#run(task, exclusive));
  }

  /** Passes the write turn to the next task waiting for it, or frees it. */
  #passWriteTurn(): void {
    const next = this.#queue.shift();
    if (next) next();
    else this.#writing = false;
  }

  /** Runs a task that has the write turn. */
  async #run<T>(task: (turn: Turn) => Promise<Written<T>>, exclusive: boolean): Promise<T> {
    const previous = this.#last;
    let counted = false;
    const reads = new Reads(previous, () => {
      if (!counted) return;
      this.#inFlight--;
      const room = this.#room;
      this.#room = undefined;
      room?.();
    });
    this.#last = reads;
    let wrote = false;
    try {
      if (exclusive && previous) await previous.promise();
      while (this.#inFlight >= MAX_TRANSACTIONS_IN_FLIGHT) {
        await new Promise<void>((resolve) => this.#room = resolve);
      }
      const turn: Turn = {
        ready: previous ? previous.promise() : READY,
        resetFirst: this.#inFlight > 0,
      };
      this.#inFlight++;
      counted = true;
      const { rest } = await task(turn);
      // The task will write nothing more: the next one may.
      wrote = true;
      this.#passWriteTurn();
      return await rest;
    } finally {
      if (!wrote) this.#passWriteTurn();
      // Replies are read in order: this turn is over once the earlier ones are too.
      reads.taskDone();
    }
  }
}
