/**
 * {@linkcode SmtpPool}'s options, their defaults and checks, and its state snapshot.
 *
 * @module
 */

import { checkFields, CLIENT_FIELDS, POOL_FIELDS } from "./_fields.ts";
import { parseProxy } from "./transport/proxy.ts";
import { checkClientFields } from "./client_options.ts";
import type { ClientOptions } from "./options.ts";
import type { RateLimit } from "./rate_limiter.ts";

/** How to connect, and how many connections to keep. */
export interface PoolOptions extends ClientOptions {
  /**
   * Connections open at the same time, at most.
   * @default {5}
   */
  readonly maxConnections?: number;
  /**
   * Messages sent over one connection before it is closed and replaced (`Infinity` for no cap).
   * @default {100}
   */
  readonly maxMessages?: number;
  /**
   * How long an unused connection stays open, in milliseconds; then it is closed with QUIT.
   * @default {30000}
   */
  readonly idleTimeoutMs?: number;
  /**
   * Sends that may wait for a connection. By default any number may, so that a plain
   * `Promise.all` over a mailing list works: a waiting send costs its message and about 480
   * bytes of the pool's own (measured on Deno with 20,000 sends of a small composed message
   * queued at once: 640 bytes per queued send, the message object included). Set a bound for
   * back-pressure: beyond it {@linkcode SmtpPool.send} rejects with
   * {@linkcode PoolQueueFullError} at once.
   * @default {Infinity}
   */
  readonly maxQueue?: number;
  /** Starts at most `messages` sends (retries included) in any `intervalMs` window. */
  readonly rateLimit?: RateLimit;
  /**
   * How many times a send that failed transiently is tried again on a fresh connection:
   * a 4xx reply while connecting, to MAIL or to every RCPT, a 421 or a broken connection
   * before the message was complete, a connect or greeting timeout. Never after a 5xx reply,
   * never when the server may have received the message (`outcomeUnknown`), never for a
   * stream you gave that was already read. These are all the attempts: the client's own retry
   * is not added on top.
   * @default {2}
   */
  readonly retries?: number;
  /**
   * The delay before the first retry, in milliseconds; each further retry waits twice as long
   * (at most 10 seconds).
   * @default {100}
   */
  readonly retryDelayMs?: number;
}

/** A snapshot of the pool's state, for monitoring. */
export interface PoolStats {
  /** Connections open or being opened (including ones being closed). */
  readonly connections: number;
  /** Open connections with nothing to do. */
  readonly idle: number;
  /** Sends (and borrowed clients) running on a connection. */
  readonly inFlight: number;
  /** Sends waiting for a connection, including ones waiting to be retried. */
  readonly queued: number;
}

/** The pool's own settings, defaults applied and checked. */
export interface PoolSettings {
  readonly maxConnections: number;
  readonly maxMessages: number;
  readonly idleTimeoutMs: number;
  readonly maxQueue: number;
  readonly rateLimit: RateLimit | undefined;
  readonly retries: number;
  readonly retryDelayMs: number;
}

function checkCount(name: string, value: number | undefined, min: number, infinite = false) {
  if (value === undefined) return;
  const ok = (Number.isInteger(value) && value >= min) || (infinite && value === Infinity);
  if (!ok) {
    throw new RangeError(
      `Invalid ${name}: must be an integer of at least ${min}${infinite ? " or Infinity" : ""}, ` +
        `got ${value}`,
    );
  }
}

function checkDuration(name: string, value: number | undefined, min: number) {
  if (value === undefined) return;
  if (!(Number.isFinite(value) && value >= min)) {
    throw new RangeError(`Invalid ${name}: must be a number of at least ${min}, got ${value}`);
  }
}

/**
 * Splits pool options into the pool's settings (defaults applied) and the client options, and
 * throws a `RangeError` for a value out of range.
 */
export function resolvePoolOptions(
  options: PoolOptions,
): { settings: PoolSettings; client: ClientOptions } {
  checkClientFields(options, [...CLIENT_FIELDS, ...POOL_FIELDS], "pool options");
  checkFields(options.rateLimit, ["messages", "intervalMs"], "rateLimit");
  if (options.proxy !== undefined) parseProxy(options.proxy);
  const {
    maxConnections = 5,
    maxMessages = 100,
    idleTimeoutMs = 30_000,
    maxQueue = Infinity,
    rateLimit,
    retries = 2,
    retryDelayMs = 100,
    ...client
  } = options;
  checkCount("maxConnections", maxConnections, 1);
  checkCount("maxMessages", maxMessages, 1, true);
  checkDuration("idleTimeoutMs", idleTimeoutMs, 0);
  checkCount("maxQueue", maxQueue, 0, true);
  checkCount("retries", retries, 0);
  checkDuration("retryDelayMs", retryDelayMs, 0);
  if (rateLimit) {
    checkCount("rateLimit.messages", rateLimit.messages, 1);
    checkDuration("rateLimit.intervalMs", rateLimit.intervalMs, 1);
  }
  return {
    settings: {
      maxConnections,
      maxMessages,
      idleTimeoutMs,
      maxQueue,
      rateLimit,
      retries,
      retryDelayMs,
    },
    client,
  };
}
