/**
 * The fault-injection matrix, runtime-neutral so that Deno runs it against the module and Node
 * against the built npm package: a server that cuts the connection, or answers 421, at every
 * reply of a transaction and at a spread of byte offsets of its data, over DATA and BDAT,
 * pipelined or not, for the client and the pool, for every kind of body. Whatever the fault, the
 * server never holds two copies of a message, and the sender's answer says what happened:
 *
 * - resolved: the server holds exactly one copy;
 * - rejected with `outcomeUnknown: false`: it holds none;
 * - rejected with `outcomeUnknown: true`: the whole message had been written (it may hold one).
 *
 * A message that was not sent and can be produced again is sent again (the fault is on the
 * first connection only, so that attempt succeeds); a fault on every connection shows that it
 * is tried exactly as often as configured.
 *
 * @module
 */

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Server extensions per mode. */
export const MODES = {
  "DATA": [],
  "DATA+PIPELINING": ["PIPELINING"],
  "BDAT": ["CHUNKING"],
  "BDAT+PIPELINING": ["PIPELINING", "CHUNKING"],
};

const envelope = { from: "a@example.com", to: ["b@example.com", "c@example.com"] };
const text = "Line of the message body, long enough to matter.\r\n".repeat(120);

/** Writes the 400 KB attachment file: a composed message that streams, in two BDAT chunks. */
async function attachmentFile() {
  const dir = await mkdtemp(join(tmpdir(), "postie-fault-"));
  const path = join(dir, "data.bin");
  await writeFile(path, new Uint8Array(400 * 1024).map((_, i) => (i * 31) & 0xff));
  return path;
}

/** The bodies under test: each builds a fresh message that carries its id in a header. */
function bodies(file) {
  return {
    "raw bytes": (id) => ({ raw: `X-Id: ${id}\r\nSubject: raw\r\n\r\n${text}`, envelope }),
    "raw one-shot stream": (id) => {
      const bytes = new TextEncoder().encode(`X-Id: ${id}\r\nSubject: stream\r\n\r\n${text}`);
      let offset = 0;
      return {
        raw: new ReadableStream({
          pull(controller) {
            if (offset >= bytes.length) return controller.close();
            controller.enqueue(bytes.slice(offset, offset += 1500));
          },
        }),
        envelope,
      };
    },
    "composed in memory": (id) => ({
      from: envelope.from,
      to: envelope.to,
      subject: "composed",
      text,
      headers: { "X-Id": id },
    }),
    "composed with a file": (id) => ({
      from: envelope.from,
      to: envelope.to,
      subject: "file",
      text: "see attachment",
      headers: { "X-Id": id },
      attachments: [{ filename: "data.bin", content: { path: file } }],
    }),
  };
}

/** Every fault to try, for a mode. */
function faultsFor(mode) {
  const replies = ["mail", "rcpt", mode.startsWith("BDAT") ? "chunk" : "data", "end"];
  return [
    ...replies.map((reply) => ({ kind: "cut", reply })),
    ...replies.map((reply) => ({ kind: "421", reply })),
    ...[0, 1, 5000, "terminator"].map((dataByte) => ({ kind: "cut", dataByte })),
  ];
}

function describe(fault) {
  return "reply" in fault
    ? `${fault.kind} at ${fault.reply}`
    : `cut at data byte ${fault.dataByte}`;
}

/**
 * Notes whether the client wrote a message's terminator (its transcript says so), and calls
 * `onTerminator` with the count each time, in step with the client.
 */
function terminatorWatcher(onTerminator = (_count) => {}) {
  const state = { terminated: false, count: 0 };
  const onTranscript = (event) => {
    if (event.line !== "message data sent") return;
    state.terminated = true;
    onTerminator(++state.count);
  };
  return { state, onTranscript };
}

/**
 * The invariants every outcome must satisfy, whatever the fault.
 *
 * @param {object} postie The module under test.
 * @param {{ result?: object, error?: unknown, copies: number, terminated: boolean }} outcome
 * @param {string} label What was tried.
 */
function checkAtMostOnce(postie, outcome, label) {
  assert.ok(outcome.copies <= 1, `${label}: the server holds ${outcome.copies} copies`);
  if (outcome.result) {
    assert.equal(outcome.copies, 1, `${label}: resolved, but the server holds no copy`);
    assert.equal(outcome.result.accepted.length, 2, label);
    return;
  }
  const error = outcome.error;
  assert.ok(error instanceof postie.SmtpError, `${label}: not an SmtpError: ${error}`);
  if (outcome.copies === 1) {
    assert.equal(error.outcomeUnknown, true, `${label}: the server holds it, error says not`);
  }
  if (error.outcomeUnknown) {
    assert.ok(outcome.terminated, `${label}: outcome unknown, but no terminator was written`);
    assert.match(error.message, /may have accepted it/, label);
  }
}

/** A refusal of the message itself (421 to its terminator) is final and not retried. */
function refusedAtEnd(postie, error) {
  return error instanceof postie.SmtpReplyError && error.code === 421 &&
    error.phase === "data" && !error.outcomeUnknown;
}

/**
 * Registers the matrix.
 *
 * @param {object} setup
 * @param {any} setup.postie The module under test (`SmtpClient`, `SmtpPool`, error classes).
 * @param {(name: string, fn: () => Promise<void>) => void} setup.test Registers a test.
 * @param {(options: any) => Promise<{ port: number,
 *   kept: () => Promise<{ data: string }[]>, connections: () => Promise<number>,
 *   close: () => Promise<void> }>} setup.startServer Starts a fault server (options of
 *   `startFaultServer`).
 * @param {readonly ("client" | "pool")[]} [setup.runners] Which senders to try.
 */
export function defineFaultMatrix({ postie, test, startServer, runners = ["client", "pool"] }) {
  /** Written by the first test that needs it (an operation started outside a test leaks). */
  let file;
  const attachment = async () => await (file ??= attachmentFile());

  async function sendWith(runner, mode, body, fault, faultyConnections) {
    const server = await startServer({ extensions: MODES[mode], fault, faultyConnections });
    const watcher = terminatorWatcher();
    const options = {
      hostname: "127.0.0.1",
      port: server.port,
      tls: "none",
      onTranscript: watcher.onTranscript,
      timeouts: { commandMs: 2000, dataEndMs: 2000 },
    };
    const id = randomUUID();
    const message = bodies(await attachment())[body](id);
    let result;
    let error;
    try {
      if (runner === "client") {
        // Faults start at MAIL, so the client connects before any of them.
        const client = await postie.SmtpClient.connect(options);
        try {
          result = await client.send(message);
        } catch (e) {
          error = e;
        }
        await client.quit();
      } else {
        const pool = new postie.SmtpPool({
          ...options,
          retries: 2,
          retryDelayMs: 1,
          maxConnections: 1,
        });
        try {
          result = await pool.send(message);
        } catch (e) {
          error = e;
        }
        await pool.close();
      }
    } finally {
      await server.close();
    }
    const kept = await server.kept();
    return {
      result,
      error,
      copies: kept.filter((m) => m.data.includes(`X-Id: ${id}`)).length,
      connections: await server.connections(),
      terminated: watcher.state.terminated,
    };
  }

  for (const runner of runners) {
    for (const mode of Object.keys(MODES)) {
      for (const body of Object.keys(bodies(""))) {
        test(`faults (${runner}, ${mode}, ${body}): at most one copy, and the answer says which`, async () => {
          for (const fault of faultsFor(mode)) {
            const label = describe(fault);
            const outcome = await sendWith(runner, mode, body, fault, 1);
            checkAtMostOnce(postie, outcome, label);
            const error = outcome.error;
            if (!error || error.outcomeUnknown || refusedAtEnd(postie, error)) continue;
            // Not sent: the next connection has no fault, so a body that can be produced
            // again was sent there. Only a caller's stream that had been read cannot be.
            assert.equal(body, "raw one-shot stream", `${label}: not sent, not retried: ${error}`);
            assert.equal(outcome.copies, 0, label);
          }
        });
      }
    }
  }

  for (const runner of runners) {
    for (const mode of ["DATA+PIPELINING", "BDAT+PIPELINING"]) {
      test(`faults on every connection (${runner}, ${mode}): tried exactly as configured, no copy`, async () => {
        // The client connects once up front; every attempt after a failure connects again.
        const attempts = runner === "client" ? 2 : 3;
        for (const fault of [{ kind: "421", reply: "mail" }, { kind: "cut", reply: "rcpt" }]) {
          const outcome = await sendWith(runner, mode, "composed with a file", fault, Infinity);
          checkAtMostOnce(postie, outcome, describe(fault));
          assert.ok(outcome.error instanceof postie.SmtpError);
          assert.equal(outcome.error.outcomeUnknown, false, describe(fault));
          assert.equal(outcome.copies, 0);
          assert.equal(outcome.connections, attempts, describe(fault));
        }
      });
    }
  }

  if (!runners.includes("client")) return;
  for (const mode of ["DATA+PIPELINING", "BDAT+PIPELINING"]) {
    for (const abortAt of ["neighbour's terminator", "own terminator"]) {
      test(`an aborted neighbour (${mode}, abort at the ${abortAt}): the other message is delivered once or reported unknown`, async () => {
        for (const body of Object.keys(bodies(""))) {
          const controller = new AbortController();
          // The server answers late, so that the first is still waiting for its reply.
          const server = await startServer({
            extensions: MODES[mode],
            faultyConnections: 0,
            replyDelayMs: 50,
          });
          const abortAfter = abortAt === "own terminator" ? 1 : 2;
          const watcher = terminatorWatcher((count) => {
            if (count === abortAfter) controller.abort(new Error("stop"));
          });
          let firstOutcome;
          let result;
          let error;
          const id = randomUUID();
          try {
            const client = await postie.SmtpClient.connect({
              hostname: "127.0.0.1",
              port: server.port,
              tls: "none",
              onTranscript: watcher.onTranscript,
            });
            const messages = bodies(await attachment());
            const first = client.send(messages["raw bytes"]("first"), {
              signal: controller.signal,
            });
            const second = client.send(messages[body](id));
            firstOutcome = await first.then(() => "sent", (e) => e.message);
            try {
              result = await second;
            } catch (e) {
              error = e;
            }
            await client.quit();
          } finally {
            await server.close();
          }
          // With DATA the neighbour's data waits for its 354, which comes after the first's
          // reply, and a large neighbour makes the server flush the first's reply while it
          // reads: then the first is done before its neighbour's terminator arrives.
          if (
            abortAt === "own terminator" ||
            mode === "BDAT+PIPELINING" && body !== "composed with a file"
          ) {
            assert.equal(firstOutcome, "stop", body);
          }
          const kept = await server.kept();
          const outcome = {
            result,
            error,
            copies: kept.filter((m) => m.data.includes(`X-Id: ${id}`)).length,
            terminated: watcher.state.terminated,
          };
          checkAtMostOnce(postie, outcome, body);
          if (error instanceof postie.SmtpError && !error.outcomeUnknown) {
            assert.equal(body, "raw one-shot stream", `${body}: not sent and not retried`);
          }
        }
      });
    }
  }
}
