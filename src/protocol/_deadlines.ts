/**
 * The time limits of a session's waits: one shared timer checks the deadline of every wait in
 * progress (one per session direction, reused wait after wait), and the limit of a whole
 * operation that all its waits share.
 *
 * @module
 */

import type { SmtpPhase } from "../errors.ts";

/**
 * A limit on a whole operation (one send, or opening a connection) that all of its waits
 * share, so that a server answering every wait just in time cannot stretch it without end.
 */
export interface TotalDeadline {
  /** When it runs out, on the `performance.now()` clock. */
  readonly at: number;
  /** Its length in milliseconds (`timeouts.totalMs`). */
  readonly ms: number;
}

/** A total deadline of `ms` milliseconds from now. */
export function totalDeadline(ms: number): TotalDeadline {
  return { at: performance.now() + ms, ms };
}

/** What a wait is for: the phase (for errors) and its time limits. */
export interface Wait {
  readonly phase: SmtpPhase;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
  /** The limit of the whole operation this wait belongs to. */
  readonly total?: TotalDeadline | undefined;
}

/**
 * `wait` for another phase. Every wait of a transaction is built with this one shape (the
 * fields in this order, each present), so that the code reading waits sees one object map: a
 * spread copy (`{ ...wait, phase }`) has a map of its own, which made V8 deoptimise it.
 */
export function withPhase(wait: Wait, phase: SmtpPhase): Wait {
  return { phase, timeoutMs: wait.timeoutMs, signal: wait.signal, total: wait.total };
}
/**
 * The time limit of one wait in progress, expired by the shared ticker once `at` has passed.
 * A session keeps one for its reads and one for its writes and reuses them wait after wait.
 */
export class Deadline {
  at = 0;
  timeoutMs = 0;
  /** True when the whole operation's limit (`total`) comes first. */
  byTotal = false;
  /** True once the ticker found it passed (until the next wait reuses it). */
  expired = false;
  /** True while a wait uses it. */
  active = false;
  readonly onExpire: (deadline: Deadline) => void;

  constructor(onExpire: (deadline: Deadline) => void) {
    this.onExpire = onExpire;
  }
}

/**
 * The deadlines of every wait in progress, checked by one shared timer that runs only while
 * there are any. A timer per wait (`AbortSignal.timeout()`) would live on after its wait until
 * it fired, minutes later: thousands of messages would keep thousands of them in memory. The
 * timer checks every {@linkcode TICK_MS}, sooner when a deadline is nearer.
 */
const deadlines = new Set<Deadline>();
/**
 * Operations in progress that keep the timer running between their waits (see
 * {@linkcode Session.hold}).
 */
let holds = 0;
let timer: ReturnType<typeof setTimeout> | undefined;
/** When the timer fires, on the `performance.now()` clock. */
let timerDue = Infinity;
/** How often deadlines are checked: a wait times out at most this much late. */
const TICK_MS = 20;

function schedule(now: number, nearest: number): void {
  const due = Math.max(now + 1, Math.min(now + TICK_MS, nearest));
  timerDue = due;
  timer = setTimeout(tick, due - now);
}

function tick(): void {
  timer = undefined;
  timerDue = Infinity;
  const now = performance.now();
  let nearest = Infinity;
  for (const deadline of deadlines) {
    if (now < deadline.at) {
      if (deadline.at < nearest) nearest = deadline.at;
      continue;
    }
    deadlines.delete(deadline);
    deadline.expired = true;
    deadline.onExpire(deadline);
  }
  if ((deadlines.size > 0 || holds > 0) && timer === undefined) schedule(now, nearest);
}

/**
 * Stops the timer at once when no wait or operation needs it. Waits and operations that end
 * leave it running instead: its next tick finds nothing to check and stops it, and a wait
 * that starts before then reuses it (back-to-back sends would otherwise start and stop a timer
 * each). A session calls this when it closes, so that no timer outlives the last connection.
 */
export function stopTimerIfIdle(): void {
  if (deadlines.size > 0 || holds > 0 || timer === undefined) return;
  clearTimeout(timer);
  timer = undefined;
  timerDue = Infinity;
}

/** Starts `deadline` for `wait`. */
export function arm(deadline: Deadline, wait: Wait): void {
  const now = performance.now();
  const total = wait.total;
  const byTotal = total !== undefined && total.at < now + wait.timeoutMs;
  const at = byTotal ? total.at : now + wait.timeoutMs;
  deadline.at = at;
  deadline.timeoutMs = wait.timeoutMs;
  deadline.byTotal = byTotal;
  deadline.expired = false;
  deadline.active = true;
  deadlines.add(deadline);
  // The timer due next comes in time, unless this deadline is nearer still.
  if (timer !== undefined) {
    if (timerDue <= at) return;
    clearTimeout(timer);
  }
  schedule(now, at);
}

/**
 * Ends a wait's deadline (`expired` stays as the ticker left it). The timer stops at its next
 * tick when nothing else needs it (see {@linkcode stopTimerIfIdle}).
 */
export function disarm(deadline: Deadline): void {
  deadline.active = false;
  deadlines.delete(deadline);
}

/**
 * Keeps the deadline timer running between the waits of one operation, instead of stopping and
 * starting it after each; {@linkcode releaseTimer} ends it.
 */
export function holdTimer(): void {
  holds++;
}

/** Ends a {@linkcode holdTimer}; the timer stops at its next tick when nothing needs it. */
export function releaseTimer(): void {
  holds--;
}
