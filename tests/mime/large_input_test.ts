/**
 * Header inputs of two million characters (issue 13, defect 5): each field composes in linear
 * time without overflowing the stack (no spread of an input-sized array into a call, no
 * recursion on input-sized data), every line within 998 octets; a message id that cannot fit
 * its line fails with a RangeError that names the field.
 */

import assert from "node:assert/strict";
import { test } from "../_helpers/test.ts";
import { composeMessage, type Message } from "../../src/mime/mod.ts";
import { collect } from "./_helpers.ts";

/**
 * Linear work on these inputs takes about a second on a 2-core machine, several under load (the
 * 10,000-message property suite runs beside it in CI); work that grows with the square of 2
 * million characters takes hours, so a generous bound still tells them apart.
 */
const BOUND_MS = 30_000;
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
    test(`a ${SIZE}-character ${what} ${field} composes in linear time, lines within 998 octets`, async () => {
      const started = performance.now();
      const composed = await composeMessage({
        from: "a@example.com",
        to: "b@example.com",
        text: "x",
        ...fields,
      });
      const bytes = await collect(composed.body);
      const elapsed = performance.now() - started;
      assert.ok(elapsed < BOUND_MS, `took ${elapsed.toFixed(0)} ms`);
      let lineStart = 0;
      for (let i = bytes.indexOf(0x0a); i >= 0; i = bytes.indexOf(0x0a, i + 1)) {
        assert.ok(i - 1 - lineStart <= 998, `a line of ${i - 1 - lineStart} octets`);
        lineStart = i + 1;
      }
      const text = decoder.decode(bytes);
      const at = text.indexOf(`\r\n${header}:`);
      assert.ok(text.startsWith(`${header}:`) || at >= 0, `no ${header}`);
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
