/**
 * Header fidelity (issue 21), named cases: the failures the property suite
 * (`header_fidelity_property_test.ts`) found, shrunk, and the classes of input it is about,
 * each checked the same way: composed, then decoded by mailparser and by Python's `email`
 * package, which must both give back every value exactly. Then the values that cannot be sent
 * exactly, refused before any I/O with an error that names the field.
 */

import assert from "node:assert/strict";
import { test } from "../_helpers/test.ts";
import { composeMessage } from "../../src/mime/mod.ts";
import { collect } from "./_helpers.ts";
import { PythonEmail } from "./_python_email.ts";
import {
  type Case,
  caseOf,
  checkLines,
  compareMailparser,
  comparePython,
  messageOf,
  NAMED_CASES,
} from "./_fidelity.ts";

// One Python process serves every case; each case is a step named for it.
Deno.test({
  name: "header fidelity: named cases decode exactly in mailparser and Python",
  sanitizeOps: true,
  sanitizeResources: true,
  fn: async (t) => {
    const python = PythonEmail.start();
    if ("reason" in python) {
      console.log(`PYTHON CHECK SKIPPED (mailparser only): ${python.reason}`);
    }
    try {
      for (const [name, fields, loose] of NAMED_CASES) {
        await t.step(name, async () => {
          const item = caseOf(fields);
          const bytes = await collect((await composeMessage(messageOf(item))).body);
          checkLines(bytes);
          const problems = await compareMailparser(item, bytes);
          const exceptions: string[] = [];
          if (!("reason" in python)) {
            for (const p of comparePython(item, await python.parse(bytes), exceptions)) {
              problems.push(p);
            }
          }
          assert.deepEqual(problems, [], new TextDecoder().decode(bytes));
          if (!loose) assert.deepEqual(exceptions, [], "policy.default read a display name wrong");
        });
      }
    } finally {
      if (!("reason" in python)) await python.close();
    }
  },
});

// --- refused: values that are not Unicode text -------------------------------------------------

const lone = "a\ud800b";

const refused: [string, Partial<Case>, RegExp][] = [
  ["subject", { subject: lone }, /header "Subject" contains a lone surrogate \(U\+D800/],
  ["custom header", { headers: [lone] }, /header "X-Fidelity-1" contains a lone surrogate/],
  ["display name", {
    from: { name: "\udc00", address: "a@example.com" },
  }, /From display name contains a lone surrogate \(U\+DC00 at index 0\)/],
  ["file name", { filename: lone }, /attachment 0 filename contains a lone surrogate/],
  ["calendar file name", { calendarFilename: lone }, /icalEvent filename contains a lone/],
];

for (const [field, fields, message] of refused) {
  test(`a lone surrogate in the ${field} is refused, naming it (before: sent as U+FFFD)`, async () => {
    await assert.rejects(composeMessage(messageOf(caseOf(fields))), (error: unknown) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /^Cannot compose message: /);
      assert.match(error.message, message);
      assert.match(error.message, /which is not Unicode text$/);
      return true;
    });
  });
}
