/**
 * Refuses option and message fields the library does not know, so that a typo in plain
 * JavaScript (`attachements`, `tlsOption`) fails loudly instead of being ignored, and names the
 * field meant: the closest known one, or postie's name for a field of nodemailer's.
 *
 * @module
 */

/** How far apart two names may be (edits) for one to be suggested for the other. */
const MAX_DISTANCE = 3;

/** The number of single-character edits (insert, delete, replace, swap) from `a` to `b`. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => {
    const row = new Array<number>(cols).fill(0);
    row[0] = i;
    return row;
  });
  for (let j = 0; j < cols; j++) d[0]![j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known name closest to `name` (case-insensitive), if any is close enough. */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const lower = name.toLowerCase();
  for (const candidate of known) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const limit = Math.min(MAX_DISTANCE, Math.max(1, Math.floor(name.length / 3)));
  return bestDistance <= limit ? best : undefined;
}

/**
 * Throws a `TypeError` for the first own field of `value` that is not in `known`, saying what
 * was probably meant: `aliases` maps other libraries' names to a hint ("use hostname"), else
 * the closest known name.
 *
 * @param value The object given (ignored when it is not an object).
 * @param known The fields it may have.
 * @param what What it is, for the message (`client options`, `attachment 2`).
 * @param aliases Hints for names that other libraries use.
 */
export function checkFields(
  value: unknown,
  known: readonly string[],
  what: string,
  aliases: Readonly<Record<string, string>> = {},
): void {
  if (value === null || typeof value !== "object") return;
  for (const name of Object.keys(value)) {
    if (known.includes(name)) continue;
    const alias = Object.hasOwn(aliases, name) ? aliases[name] : undefined;
    const near = alias ? undefined : closest(name, known);
    const hint = alias ? `: ${alias}` : near ? `: did you mean "${near}"?` : "";
    throw new TypeError(`Unknown field "${name}" in ${what}${hint}`);
  }
}

/** The fields of `ClientOptions`. */
export const CLIENT_FIELDS: readonly string[] = [
  "hostname",
  "port",
  "tls",
  "tlsOptions",
  "clientName",
  "auth",
  "allowPlaintextAuth",
  "timeouts",
  "pipelining",
  "chunking",
  "onTranscript",
  "transport",
  "proxy",
  "path",
  "protocol",
  "limits",
  "dkim",
];

/** The fields `SmtpPool` adds to `ClientOptions`. */
export const POOL_FIELDS: readonly string[] = [
  "maxConnections",
  "maxMessages",
  "idleTimeoutMs",
  "maxQueue",
  "rateLimit",
  "retries",
  "retryDelayMs",
];

/** nodemailer's transport options, and what postie calls them. */
export const NODEMAILER_OPTIONS: Readonly<Record<string, string>> = {
  host: 'postie calls it "hostname"',
  secure: 'postie says tls: "implicit" (secure: true) or tls: "starttls" (secure: false)',
  name: 'postie calls it "clientName"',
  requireTLS: 'postie requires STARTTLS by default (tls: "starttls")',
  ignoreTLS: 'use tls: "none" (plain SMTP, by name only)',
  connectionTimeout: "postie says timeouts: { connectMs }",
  greetingTimeout: "postie says timeouts: { greetingMs }",
  socketTimeout: "postie says timeouts: { commandMs }",
  logger: "use onTranscript",
  debug: "use onTranscript",
  pool: "use new SmtpPool(options) for a pool of connections",
  service: 'postie has no service presets: give hostname (and port), e.g. "smtp.gmail.com"',
  rateDelta: "postie says rateLimit: { messages, intervalMs }",
  maxConnections: "maxConnections is an SmtpPool option",
};

/** nodemailer's `auth` fields, and what postie calls them. */
export const NODEMAILER_AUTH: Readonly<Record<string, string>> = {
  user: 'postie calls it "username"',
  pass: 'postie calls it "password"',
  type: 'postie picks the mechanism itself; for OAuth2 give "token"',
  accessToken: 'postie calls it "token"',
};
