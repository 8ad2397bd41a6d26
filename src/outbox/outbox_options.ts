/**
 * The options of {@linkcode Outbox} and of {@linkcode Outbox.enqueue}: their types, defaults
 * and checks.
 *
 * @module
 */

import { checkSendOptions } from "../client_options.ts";
import type { DsnOptions } from "../options.ts";
import type { PoolOptions } from "../pool.ts";
import type { Envelope } from "../types.ts";
import { checkFields } from "../_fields.ts";
import type { Policy } from "./_policy.ts";
import type { OutboxEvent, OutboxStore } from "./types.ts";

/** Options of {@linkcode Outbox}. */
export interface OutboxOptions {
  /**
   * The server, as for an {@linkcode SmtpPool}. The outbox does the retrying (durably), so the
   * pool's own `retries` are set to 0.
   */
  readonly smtp: PoolOptions;
  /** Where jobs are kept: {@linkcode denoKvStore}, or `bullmqStore` from `./bullmq`. */
  readonly store: OutboxStore;
  /**
   * Attempts per job before it fails (a dead letter).
   * @default {10}
   */
  readonly maxAttempts?: number;
  /**
   * Age after which a job that is still not delivered fails, in milliseconds.
   * @default {259200000 (3 days)}
   */
  readonly maxAgeMs?: number;
  /**
   * The back-off before the first retry, in milliseconds; it doubles with every attempt (a
   * random part of up to half of it taken off).
   * @default {1000}
   */
  readonly retryDelayMs?: number;
  /**
   * The longest back-off, in milliseconds.
   * @default {900000 (15 minutes)}
   */
  readonly maxRetryDelayMs?: number;
  /**
   * Send again a job whose last attempt may have delivered it (`outcomeUnknown`), instead of
   * leaving it in state `unknown`. Recipients may then get the message twice.
   * @default {false}
   */
  readonly resendUnknown?: boolean;
  /**
   * How long a worker holds a job without renewing its lease, in milliseconds; a worker
   * renews it every third of this while it sends. A job whose worker died is taken by another
   * after this.
   * @default {30000}
   */
  readonly leaseMs?: number;
  /**
   * How often an idle worker, and {@linkcode Outbox.drain}, look at the store, in ms.
   * @default {250}
   */
  readonly pollIntervalMs?: number;
  /**
   * The largest message {@linkcode Outbox.enqueue} stores, in bytes.
   * @default {33554432 (32 MiB)}
   */
  readonly maxMessageBytes?: number;
  /** Called on every state change of a job (logs, metrics); it must not throw. */
  readonly onEvent?: (event: OutboxEvent) => void;
}

/** Options of {@linkcode Outbox.enqueue}. */
export interface EnqueueOptions {
  /**
   * The same key enqueued again is the same message: the second enqueue returns the first's
   * id and stores nothing.
   */
  readonly idempotencyKey?: string;
  /** Not sent before this time. */
  readonly notBefore?: Date | number;
  /** Delivery status notification requests (RFC 3461). */
  readonly dsn?: DsnOptions;
  /** The envelope to use instead of the one derived from the message. */
  readonly envelope?: Envelope;
}

const ENQUEUE_FIELDS = ["idempotencyKey", "notBefore", "dsn", "envelope"];
const OPTION_FIELDS = [
  "smtp",
  "store",
  "maxAttempts",
  "maxAgeMs",
  "retryDelayMs",
  "maxRetryDelayMs",
  "resendUnknown",
  "leaseMs",
  "pollIntervalMs",
  "maxMessageBytes",
  "onEvent",
];

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !(value > 0)) {
    throw new RangeError(`Invalid ${name}: must be a positive number, got ${value}`);
  }
  return value;
}

/** The outbox's options checked, with their defaults. */
export interface ResolvedOutboxOptions {
  readonly store: OutboxStore;
  /** The pool's options; its own retries off: the outbox retries, durably. */
  readonly smtp: PoolOptions;
  readonly policy: Policy;
  readonly leaseMs: number;
  readonly pollMs: number;
  readonly maxBytes: number;
  readonly onEvent: ((event: OutboxEvent) => void) | undefined;
}

/**
 * Checks the outbox's options (unknown fields refused) and fills in their defaults.
 *
 * @param options The options given to {@linkcode Outbox}.
 * @returns The options resolved.
 * @throws {TypeError} For an unknown field or a store that is not an `OutboxStore`.
 * @throws {RangeError} For a number that is not positive (or `maxAttempts` not an integer).
 */
export function resolveOutboxOptions(options: OutboxOptions): ResolvedOutboxOptions {
  checkFields(options, OPTION_FIELDS, "outbox options");
  if (!options.store || typeof options.store.take !== "function") {
    throw new TypeError("Invalid outbox options: store must be an OutboxStore");
  }
  const maxAttempts = positive("maxAttempts", options.maxAttempts, 10);
  if (!Number.isInteger(maxAttempts)) {
    throw new RangeError(`Invalid maxAttempts: must be an integer, got ${maxAttempts}`);
  }
  return {
    store: options.store,
    smtp: { ...options.smtp, retries: 0 },
    policy: {
      maxAttempts,
      maxAgeMs: positive("maxAgeMs", options.maxAgeMs, 3 * 24 * 3600_000),
      retryDelayMs: positive("retryDelayMs", options.retryDelayMs, 1000),
      maxRetryDelayMs: positive("maxRetryDelayMs", options.maxRetryDelayMs, 900_000),
      resendUnknown: options.resendUnknown ?? false,
    },
    leaseMs: positive("leaseMs", options.leaseMs, 30_000),
    pollMs: positive("pollIntervalMs", options.pollIntervalMs, 250),
    maxBytes: positive("maxMessageBytes", options.maxMessageBytes, 32 * 1024 * 1024),
    onEvent: options.onEvent,
  };
}

/**
 * Checks the options of one enqueue.
 *
 * @param options The options given to {@linkcode Outbox.enqueue}.
 * @returns When the message is due (milliseconds since the epoch).
 * @throws {TypeError} For an unknown field or an empty idempotency key.
 * @throws {RangeError} For an invalid `notBefore`.
 */
export function checkEnqueueOptions(options: EnqueueOptions): number {
  checkFields(options, ENQUEUE_FIELDS, "enqueue options");
  const { idempotencyKey, notBefore, dsn } = options;
  if (idempotencyKey !== undefined && (typeof idempotencyKey !== "string" || !idempotencyKey)) {
    throw new TypeError("Invalid idempotencyKey: must be a non-empty string");
  }
  const due = notBefore === undefined ? Date.now() : new Date(notBefore).getTime();
  if (Number.isNaN(due)) throw new RangeError(`Invalid notBefore: ${String(notBefore)}`);
  checkSendOptions(dsn === undefined ? {} : { dsn });
  return due;
}
