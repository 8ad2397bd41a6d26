/**
 * The mock server's fault rules and reply formatting.
 *
 * @module
 */

import type { FaultRule, MockCommand } from "./mock_types.ts";

const encoder = new TextEncoder();

/** What a fault rule made of a command. */
export type FaultOutcome = "none" | "replied" | "closed";

export function findFault(
  faults: { rule: FaultRule; left: number }[],
  command: MockCommand,
  subject: string,
): FaultRule | undefined {
  for (const entry of faults) {
    if (entry.rule.command !== command || entry.left <= 0) continue;
    const match = entry.rule.match;
    if (match !== undefined) {
      const matches = typeof match === "string"
        ? match.toLowerCase() === subject.toLowerCase()
        : (match.lastIndex = 0, match.test(subject)); // a /g or /y pattern keeps state
      if (!matches) continue;
    }
    entry.left--;
    return entry.rule;
  }
  return undefined;
}

export function checkReply(reply: string): void {
  for (const line of reply.split(/\r?\n/)) {
    if (!/^[2-5]\d\d([ -]|$)/.test(line)) {
      throw new TypeError(`Cannot use fault reply "${reply}": each line must start with a code`);
    }
  }
}

/** `250 2.1.0 Ok` lines with CRLF; several lines get `-` continuations. */
export function format(reply: string): Uint8Array {
  const lines = reply.split(/\r?\n/);
  return encoder.encode(
    lines.map((line, i) => {
      const code = line.slice(0, 3);
      const text = line.slice(4);
      return `${code}${i === lines.length - 1 ? " " : "-"}${text}`.trimEnd() + "\r\n";
    }).join(""),
  );
}

export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (value: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      resolve(value);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
