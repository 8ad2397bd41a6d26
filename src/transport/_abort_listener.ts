/**
 * One abort listener for a connection, kept on the signal that its calls carry: a session
 * passes the same signal with every read and write, so the listener moves only when another
 * signal comes, instead of being added and removed around every call.
 *
 * @module
 */

/** An abort listener that moves to the signal of the latest call. */
export class AbortListener {
  #signal: AbortSignal | undefined;
  readonly #onAbort: () => void;

  /** @param onAbort Runs when the signal listened to aborts (read it from {@linkcode signal}). */
  constructor(onAbort: (signal: AbortSignal) => void) {
    this.#onAbort = () => {
      const signal = this.#signal;
      if (signal) onAbort(signal);
    };
  }

  /** The signal listened to. */
  get signal(): AbortSignal | undefined {
    return this.#signal;
  }

  /** Listens to `signal` (moving the listener from the previous one). */
  listen(signal: AbortSignal): void {
    if (signal === this.#signal) return;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#signal = signal;
    signal.addEventListener("abort", this.#onAbort);
  }

  /** Stops listening. */
  stop(): void {
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#signal = undefined;
  }
}
