/**
 * Fault injection: a server that cuts the connection, or answers 421, at every reply of a
 * transaction and at a spread of byte offsets of its data, over DATA and BDAT, pipelined or
 * not, for the client and the pool, for every kind of body. Whatever the fault, the server
 * never holds two copies of a message, and the sender's answer says what happened:
 *
 * - resolved: the server holds exactly one copy;
 * - rejected with `outcomeUnknown: false`: it holds none;
 * - rejected with `outcomeUnknown: true`: the whole message had been written (it may hold one).
 *
 * A message that was not sent and can be produced again is sent again (the fault is on the
 * first connection only, so that attempt succeeds); a fault on every connection shows that it
 * is tried exactly as often as configured.
 */

import assert from "node:assert/strict";
import { SmtpClient, SmtpError, SmtpPool, SmtpReplyError } from "../../mod.ts";
import type { Message, RawMessage, SendResult, TranscriptEvent } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { type Fault, startFaultServer } from "./_fault_server.ts";

const MODES = {
  "DATA": [],
  "DATA+PIPELINING": ["PIPELINING"],
  "BDAT": ["CHUNKING"],
  "BDAT+PIPELINING": ["PIPELINING", "CHUNKING"],
} as const satisfies Record<string, readonly string[]>;
type Mode = keyof typeof MODES;

const envelope = { from: "a@example.com", to: ["b@example.com", "c@example.com"] };
const text = "Line of the message body, long enough to matter.\r\n".repeat(120);
const file = await Deno.makeTempFile({ prefix: "postie-fault-" });
// 400 KB: a composed message that streams (over the in-memory limit), in two BDAT chunks.
await Deno.writeFile(file, new Uint8Array(400 * 1024).map((_, i) => (i * 31) & 0xff));

/** The bodies under test: each builds a fresh message that carries its id in a header. */
const BODIES = {
  "raw bytes": (id: string): RawMessage => ({
    raw: `X-Id: ${id}\r\nSubject: raw\r\n\r\n${text}`,
    envelope,
  }),
  "raw one-shot stream": (id: string): RawMessage => {
    const bytes = new TextEncoder().encode(`X-Id: ${id}\r\nSubject: stream\r\n\r\n${text}`);
    let offset = 0;
    return {
      raw: new ReadableStream<Uint8Array>({
        pull(controller) {
          if (offset >= bytes.length) return controller.close();
          controller.enqueue(bytes.slice(offset, offset += 1500));
        },
      }),
      envelope,
    };
  },
  "composed in memory": (id: string): Message => ({
    from: envelope.from,
    to: envelope.to,
    subject: "composed",
    text,
    headers: { "X-Id": id },
  }),
  "composed with a file": (id: string): Message => ({
    from: envelope.from,
    to: envelope.to,
    subject: "file",
    text: "see attachment",
    headers: { "X-Id": id },
    attachments: [{ filename: "data.bin", content: { path: file } }],
  }),
} as const;
type Body = keyof typeof BODIES;

/** Every fault to try, for a mode. */
function faultsFor(mode: Mode): Fault[] {
  const chunking = mode.startsWith("BDAT");
  const replies = ["mail", "rcpt", chunking ? "chunk" : "data", "end"] as const;
  return [
    ...replies.map((reply) => ({ kind: "cut", reply }) as const),
    ...replies.map((reply) => ({ kind: "421", reply }) as const),
    ...[0, 1, 5000, "terminator" as const].map((dataByte) => ({ kind: "cut", dataByte }) as const),
  ];
}

function describe(fault: Fault): string {
  return "reply" in fault
    ? `${fault.kind} at ${fault.reply}`
    : `cut at data byte ${fault.dataByte}`;
}

/** What one send came to. */
interface Outcome {
  readonly result?: SendResult;
  readonly error?: unknown;
  readonly copies: number;
  readonly connections: number;
  /** The client wrote the message's terminator on some connection. */
  readonly terminated: boolean;
}

function terminatorWatcher() {
  const state = { terminated: false };
  const onTranscript = (event: TranscriptEvent) => {
    if (event.line === "message data sent") {
      state.terminated = true;
    }
  };
  return { state, onTranscript };
}

async function sendWith(
  runner: "client" | "pool",
  mode: Mode,
  body: Body,
  fault: Fault,
  faultyConnections: number,
): Promise<Outcome> {
  await using server = startFaultServer({ extensions: MODES[mode], fault, faultyConnections });
  const watcher = terminatorWatcher();
  const options = {
    hostname: "127.0.0.1",
    port: server.port,
    tls: "none" as const,
    onTranscript: watcher.onTranscript,
    timeouts: { commandMs: 2000, dataEndMs: 2000 },
  };
  const id = crypto.randomUUID();
  const message = BODIES[body](id);
  let result: SendResult | undefined;
  let error: unknown;
  if (runner === "client") {
    // The fault may hit the first connection's greeting: connect outside the fault by
    // letting the client connect first (faults start at MAIL).
    const client = await SmtpClient.connect(options);
    try {
      result = await client.send(message);
    } catch (e) {
      error = e;
    }
    await client.quit();
  } else {
    const pool = new SmtpPool({ ...options, retries: 2, retryDelayMs: 1, maxConnections: 1 });
    try {
      result = await pool.send(message);
    } catch (e) {
      error = e;
    }
    await pool.close();
  }
  await server.close();
  const copies = server.kept.filter((m) => m.data.includes(`X-Id: ${id}`)).length;
  return {
    ...(result ? { result } : {}),
    ...(error !== undefined ? { error } : {}),
    copies,
    connections: server.connections(),
    terminated: watcher.state.terminated,
  };
}

/** The invariants every outcome must satisfy, whatever the fault. */
function checkAtMostOnce(outcome: Outcome, label: string): void {
  assert.ok(outcome.copies <= 1, `${label}: the server holds ${outcome.copies} copies`);
  if (outcome.result) {
    assert.equal(outcome.copies, 1, `${label}: resolved, but the server holds no copy`);
    assert.equal(outcome.result.accepted.length, 2, label);
    return;
  }
  const error = outcome.error;
  assert.ok(error instanceof SmtpError, `${label}: not an SmtpError: ${error}`);
  if (outcome.copies === 1) {
    assert.equal(error.outcomeUnknown, true, `${label}: the server holds it, error says not`);
  }
  if (error.outcomeUnknown) {
    assert.ok(outcome.terminated, `${label}: outcome unknown, but no terminator was written`);
    assert.match(error.message, /may have accepted it/, label);
  }
}

/** A refusal of the message itself (421 to its terminator) is final and not retried. */
function refusedAtEnd(error: unknown): boolean {
  return error instanceof SmtpReplyError && error.code === 421 && error.phase === "data" &&
    !error.outcomeUnknown;
}

for (const runner of ["client", "pool"] as const) {
  for (const mode of Object.keys(MODES) as Mode[]) {
    for (const body of Object.keys(BODIES) as Body[]) {
      test(`faults (${runner}, ${mode}, ${body}): at most one copy, and the answer says which`, async () => {
        for (const fault of faultsFor(mode)) {
          const label = `${describe(fault)}`;
          const outcome = await sendWith(runner, mode, body, fault, 1);
          checkAtMostOnce(outcome, label);
          const error = outcome.error as SmtpError | undefined;
          if (!error || error.outcomeUnknown || refusedAtEnd(error)) continue;
          // Not sent: the next connection has no fault, so a body that can be produced again
          // was sent there. Only a caller's stream that had been read cannot be.
          assert.equal(body, "raw one-shot stream", `${label}: not sent and not retried: ${error}`);
          assert.equal(outcome.copies, 0, label);
          assert.ok(outcome.terminated || outcome.connections >= 1, label);
        }
      });
    }
  }
}

for (const runner of ["client", "pool"] as const) {
  for (const mode of ["DATA+PIPELINING", "BDAT+PIPELINING"] as const) {
    test(`faults on every connection (${runner}, ${mode}): tried exactly as configured, no copy`, async () => {
      const attempts = runner === "client" ? 2 : 3;
      for (
        const fault of [{ kind: "421", reply: "mail" }, { kind: "cut", reply: "rcpt" }] as const
      ) {
        const outcome = await sendWith(runner, mode, "composed with a file", fault, Infinity);
        checkAtMostOnce(outcome, describe(fault));
        assert.ok(outcome.error instanceof SmtpError);
        assert.equal(outcome.error.outcomeUnknown, false, describe(fault));
        assert.equal(outcome.copies, 0);
        // The client connects once up front; every attempt after a failure connects again.
        assert.equal(outcome.connections, attempts, describe(fault));
      }
    });
  }
}

for (const mode of ["DATA+PIPELINING", "BDAT+PIPELINING"] as const) {
  for (const abortAt of ["neighbour's terminator", "own terminator"] as const) {
    test(`an aborted neighbour (${mode}, abort at the ${abortAt}): the other message is delivered once or reported unknown`, async () => {
      for (const body of Object.keys(BODIES) as Body[]) {
        const controller = new AbortController();
        let terminators = 0;
        await using server = startFaultServer({
          extensions: MODES[mode],
          faultyConnections: 0,
          replyDelayMs: 20,
          onTerminator: (connection) => {
            if (connection !== 1) return;
            terminators++;
            const target = abortAt === "own terminator" ? 1 : 2;
            if (terminators === target) controller.abort(new Error("stop"));
          },
        });
        const watcher = terminatorWatcher();
        const client = await SmtpClient.connect({
          hostname: "127.0.0.1",
          port: server.port,
          tls: "none",
          onTranscript: watcher.onTranscript,
        });
        const first = client.send(BODIES["raw bytes"]("first"), { signal: controller.signal });
        const id = crypto.randomUUID();
        const second = client.send(BODIES[body](id));
        const firstOutcome = await first.then(() => "sent", (error: Error) => error.message);
        let result: SendResult | undefined;
        let error: unknown;
        try {
          result = await second;
        } catch (e) {
          error = e;
        }
        await client.quit();
        // With DATA the neighbour's data waits for its 354, which comes after the first's
        // reply, and a large neighbour makes the server flush the first's reply while it
        // reads: then the first is done before its neighbour's terminator arrives.
        if (
          abortAt === "own terminator" ||
          mode === "BDAT+PIPELINING" && body !== "composed with a file"
        ) {
          assert.equal(firstOutcome, "stop", body);
        }
        await server.close();
        const copies = server.kept.filter((m) => m.data.includes(`X-Id: ${id}`)).length;
        const label = `${body}`;
        checkAtMostOnce({
          ...(result ? { result } : {}),
          ...(error !== undefined ? { error } : {}),
          copies,
          connections: server.connections(),
          terminated: watcher.state.terminated,
        }, label);
        if (error instanceof SmtpError && !error.outcomeUnknown) {
          assert.equal(body, "raw one-shot stream", `${label}: not sent and not retried`);
        }
      }
    });
  }
}
