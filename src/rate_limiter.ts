/**
 * A sliding-window rate limit on how many sends a pool starts per interval.
 *
 * @module
 */

/** A limit on how many messages the pool starts per time interval. */
export interface RateLimit {
  /** Messages allowed per interval. */
  readonly messages: number;
  /** The interval in milliseconds (a sliding window). */
  readonly intervalMs: number;
}

/** Counts recent starts; when the window is full, calls `onFree` once a start is allowed again. */
export class RateLimiter {
  readonly #limit: RateLimit;
  readonly #onFree: () => void;
  /** Start times of recent sends, oldest first. */
  #starts: number[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * @param limit The limit.
   * @param onFree Called (once per full window) when another start becomes allowed.
   */
  constructor(limit: RateLimit, onFree: () => void) {
    this.#limit = limit;
    this.#onFree = onFree;
  }

  /** Whether a send may start now; if not, `onFree` follows when one may. */
  allows(): boolean {
    const now = performance.now();
    const starts = this.#starts;
    while (starts.length > 0 && now - starts[0]! >= this.#limit.intervalMs) starts.shift();
    if (starts.length < this.#limit.messages) return true;
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#onFree();
    }, Math.max(1, starts[0]! + this.#limit.intervalMs - now));
    return false;
  }

  /** Records that a send started. */
  started(): void {
    this.#starts.push(performance.now());
  }

  /** Stops the pending timer. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
