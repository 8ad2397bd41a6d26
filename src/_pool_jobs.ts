/**
 * The pool's bookkeeping: a job (one send or borrow) and a slot (one pooled connection), and the
 * small rules around them: whether a connection survives a failure, retry back-off, timers that
 * do not keep the process alive.
 *
 * @module
 */

import type { SmtpClient } from "./client.ts";
import {
  SmtpAuthError,
  SmtpRecipientsError,
  SmtpReplyError,
  SmtpUnsupportedError,
} from "./errors.ts";
import type { Outgoing } from "./outgoing.ts";

/** Sends dispatched onto one connection at once; the client pipelines them. */
export const MAX_SENDS_PER_CONNECTION = 16;
/** A parked connection unused for longer than this is checked with NOOP before reuse. */
export const CHECK_AFTER_IDLE_MS = 1000;
/** Retry delays grow exponentially up to this. */
const MAX_RETRY_DELAY_MS = 10_000;

/** One send or borrow, from the moment it is accepted until it settles. */
export interface Job {
  readonly kind: "send" | "borrow";
  /** A borrow's function, or one attempt of a send (with the failure, if any, as a value). */
  readonly run: (client: SmtpClient) => Promise<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  readonly signal: AbortSignal | undefined;
  /** A send's message: it knows whether it can still be sent again. */
  readonly outgoing: Outgoing | undefined;
  /** Failed attempts so far. */
  attempts: number;
  /** The timer of a retry delay, while the job waits for it. */
  retryTimer: ReturnType<typeof setTimeout> | undefined;
  onAbort: (() => void) | undefined;
}

/** One pooled connection. */
export interface Slot {
  /** Undefined while connecting. */
  client: SmtpClient | undefined;
  inFlight: number;
  /** Messages dispatched on it. */
  uses: number;
  borrowed: boolean;
  /** A NOOP liveness check is running. */
  checking: boolean;
  /** Takes no more work; closed once its work is done. */
  retiring: boolean;
  /** Set once closing started. */
  closing: Promise<void> | undefined;
  lastActive: number;
  idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** The connection round it was opened in (see `#onConnectFailure`). */
  round: number;
}

/** A slot for a connection being opened in connection round `round`. */
export function newSlot(round: number): Slot {
  return {
    client: undefined,
    inFlight: 0,
    uses: 0,
    borrowed: false,
    checking: false,
    retiring: false,
    closing: undefined,
    lastActive: performance.now(),
    idleTimer: undefined,
    round,
  };
}

/** Whether the connection is still fit for other messages after this failure. */
export function keepsConnection(error: unknown): boolean {
  if (error instanceof SmtpRecipientsError || error instanceof SmtpUnsupportedError) return true;
  if (error instanceof TypeError || error instanceof RangeError) return true;
  return error instanceof SmtpReplyError && !(error instanceof SmtpAuthError) &&
    error.code >= 500 && error.code !== 521 &&
    (error.phase === "mail" || error.phase === "rcpt" || error.phase === "data");
}

export function retryDelay(base: number, attempt: number): number {
  return Math.min(base * 2 ** attempt, MAX_RETRY_DELAY_MS);
}

/** Lets the runtime exit while only this timer is pending (where the runtime can tell). */
export function unref(timer: ReturnType<typeof setTimeout>): void {
  const handle = timer as unknown as { unref?: () => void };
  if (typeof handle === "object" && typeof handle.unref === "function") handle.unref();
}
