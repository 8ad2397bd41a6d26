/**
 * Header fidelity (issue 21): every unstructured value arrives exactly as given. Generated
 * values go into every field a caller can fill with free text (the subject, custom header
 * values, display names, attachment and calendar file names); the composed message is parsed
 * by two parsers that are not ours, mailparser and Python's `email` package (`policy.default`),
 * and each must decode each value to the given string. Addresses must arrive as written.
 *
 * The values: any Unicode text without CR, LF or NUL, leaning on what breaks header writers:
 * MIME syntax (`=?`, `?=`, `"`, `\`, `;`, `%`, `*`, `'`), leading, trailing and repeated
 * whitespace, long runs without whitespace, Unicode line separators, C0 and C1 controls, mixed
 * scripts, emoji and combining marks.
 *
 * `POSTIE_PROPERTY_RUNS` sets the number of generated messages (each carries one value per
 * field); `.ci/run` sets 10,000. `POSTIE_PROPERTY_SEED` replays a run. Shrunk failures are kept
 * as named cases (`NAMED_CASES` in `_fidelity.ts`, checked by `header_fidelity_test.ts`). What
 * is compared, and the one Python bug that is modelled, is described in `_fidelity.ts`.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { test } from "../_helpers/test.ts";
import { composeMessage } from "../../src/mime/mod.ts";
import { collect } from "./_helpers.ts";
import { PythonEmail } from "./_python_email.ts";
import {
  type Case,
  checkLines,
  compareMailparser,
  comparePython,
  generatedCase,
  messageOf,
  type Problem,
} from "./_fidelity.ts";

const RUNS = Number(Deno.env.get("POSTIE_PROPERTY_RUNS") ?? "300");
if (!Number.isInteger(RUNS) || RUNS < 1) {
  throw new RangeError(`POSTIE_PROPERTY_RUNS must be a positive integer, got ${RUNS}`);
}
/** A fixed seed replays a run (fast-check prints the seed of a failure). */
const SEED = Deno.env.get("POSTIE_PROPERTY_SEED");

/** Python parses at most this many messages behind the generator. */
const MAX_PENDING = 64;

async function composed(item: Case): Promise<Uint8Array> {
  const bytes = await collect((await composeMessage(messageOf(item))).body);
  checkLines(bytes);
  return bytes;
}

function assertNoProblems(problems: readonly Problem[], bytes: Uint8Array): void {
  assert.deepEqual(problems, [], new TextDecoder().decode(bytes));
}

test(`header fidelity: ${RUNS} generated messages decode exactly in mailparser and Python`, async () => {
  const started = performance.now();
  const seed = SEED === undefined ? Date.now() ^ (Math.random() * 2 ** 31) : Number(SEED);
  const python = PythonEmail.start();
  if ("reason" in python) {
    console.log(`PYTHON CHECK SKIPPED (mailparser only): ${python.reason}`);
  }
  const exceptions: string[] = [];
  try {
    // mailparser checks each message as it is generated (a failure shrinks at once); Python
    // parses the same messages alongside, on the other core, and is checked as it answers.
    let run = 0;
    const pythonFailures: number[] = [];
    const answers: Promise<void>[] = [];
    await fc.assert(
      fc.asyncProperty(generatedCase, async (item) => {
        const index = run++;
        const bytes = await composed(item);
        assertNoProblems(await compareMailparser(item, bytes), bytes);
        if ("reason" in python) return;
        answers.push(
          python.parse(bytes).then((message) => {
            if (comparePython(item, message, exceptions).length > 0) pythonFailures.push(index);
          }),
        );
        if (python.pending > MAX_PENDING) await answers[answers.length - MAX_PENDING];
      }),
      { numRuns: RUNS, seed },
    );
    await Promise.all(answers);
    if (!("reason" in python) && pythonFailures.length > 0) {
      // Replay the first failing run with the Python check inside the property, so that
      // fast-check shrinks it and reports the smallest case (and how to replay it).
      const first = pythonFailures.reduce((a, b) => Math.min(a, b));
      await fc.assert(
        fc.asyncProperty(generatedCase, async (item) => {
          const bytes = await composed(item);
          assertNoProblems(comparePython(item, await python.parse(bytes)), bytes);
        }),
        { seed, path: String(first) },
      );
      assert.fail(
        `Python failed on ${pythonFailures.length} cases but not on replay (seed ${seed})`,
      );
    }
  } finally {
    if (!("reason" in python)) await python.close();
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `header fidelity: ${RUNS} messages (seed ${seed}) in ${seconds.toFixed(1)} s; ` +
      `${exceptions.length} encoded display names compared without whitespace in Python's ` +
      "policy.default parser (exactly through getaddresses)",
  );
});
