/**
 * Header inputs of two million characters (issue 13, defect 5): each field composes, or fails
 * with a TypeError/RangeError that names it, in linear time and without overflowing the stack
 * (no spread of an input-sized array into a call, no recursion on input-sized data).
 */

import assert from "node:assert/strict";
import { test } from "../_helpers/test.ts";
import { composeMessage, type Message } from "../../src/mime/mod.ts";
import { collect } from "./_helpers.ts";

/**
 * Linear work on these inputs takes a few hundred milliseconds; work that grows with the
 * square of the input (or a stack overflow's unwinding) takes far longer.
 */
const BOUND_MS = 3000;
const SIZE = 2_000_000;

const decoder = new TextDecoder();

for (const [unit, what] of [["é", "non-ASCII"], ["x", "unbroken ASCII"]] as const) {
  const big = unit.repeat(SIZE);
  const cases: [string, string, Partial<Message>][] = [
    ["file name", "Content-Disposition", { attachments: [{ filename: big, content: "x" }] }],
    ["calendar file name", "Content-Disposition", {
      icalEvent: { content: "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", filename: big },
    }],
    ["subject", "Subject", { subject: big }],
    ["display name", "From", { from: { name: big, address: "a@example.com" } }],
    ["custom header value", "X-Big", { headers: { "X-Big": big } }],
  ];
  for (const [field, header, fields] of cases) {
    test(`a ${SIZE}-character ${what} ${field} composes in linear time or fails naming it`, async () => {
      const started = performance.now();
      let bytes: Uint8Array | undefined;
      try {
        const composed = await composeMessage({
          from: "a@example.com",
          to: "b@example.com",
          text: "x",
          ...fields,
        });
        bytes = await collect(composed.body);
      } catch (error) {
        assert.ok(
          error instanceof TypeError || error instanceof RangeError,
          `threw ${Object.prototype.toString.call(error)}: ${error}`,
        );
        assert.doesNotMatch(String(error), /call stack/);
        assert.match(String(error), new RegExp(header));
      }
      const elapsed = performance.now() - started;
      assert.ok(elapsed < BOUND_MS, `took ${elapsed.toFixed(0)} ms`);
      if (bytes !== undefined) {
        const text = decoder.decode(bytes);
        assert.ok(text.startsWith(`${header}:`) || text.includes(`\r\n${header}:`), `no ${header}`);
      }
    });
  }
}

test("a message id too long for a header line is refused with a RangeError naming the field", async () => {
  for (
    const [field, fields] of [
      ["Message-ID", { messageId: `${"a".repeat(SIZE)}@example.com` }],
      ["In-Reply-To", { inReplyTo: `${"a".repeat(990)}@example.com` }],
      ["Content-ID", {
        attachments: [{ content: "x", contentId: `${"a".repeat(990)}@example.com` }],
      }],
    ] as const
  ) {
    await assert.rejects(
      composeMessage({ from: "a@example.com", to: "b@example.com", ...fields }),
      (error: unknown) => {
        assert.ok(error instanceof RangeError);
        assert.match(error.message, new RegExp(`^Cannot compose message: ${field} is \\d+ `));
        assert.ok(error.message.length < 200);
        return true;
      },
    );
  }
});
