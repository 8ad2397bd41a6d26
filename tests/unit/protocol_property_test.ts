import assert from "node:assert/strict";
import fc from "fast-check";
import { parseEnhancedStatus, ReplyReader } from "../../src/protocol/_reply_reader.ts";
import { Capabilities } from "../../src/protocol/capabilities.ts";
import { DataEncoder } from "../../src/protocol/_dot_stuff.ts";
import * as commands from "../../src/protocol/_commands.ts";
import { SmtpProtocolError } from "../../src/errors.ts";
import { test } from "../_helpers/test.ts";

/** Random bytes biased towards what matters to SMTP framing. */
const smtpishBytes = fc.array(
  fc.oneof(
    fc.constantFrom(0x0d, 0x0a, 0x2e, 0x2d, 0x20, 0x00, 0x32, 0x35, 0x30),
    fc.integer({ min: 0, max: 255 }),
  ),
  { maxLength: 400, size: "max" },
).map((a) => new Uint8Array(a));

const splits = fc.array(fc.nat({ max: 400 }), { maxLength: 5 });

function chunk(data: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.min(c, data.length)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let start = 0;
  for (const p of [...points, data.length]) {
    out.push(data.subarray(start, p));
    start = p;
  }
  return out;
}

test("ReplyReader: any input gives replies or a protocol error, never a crash", () => {
  fc.assert(
    fc.property(smtpishBytes, splits, (data, cuts) => {
      const reader = new ReplyReader({ maxLineLength: 64, maxLines: 8 });
      try {
        for (const part of chunk(data, cuts)) {
          reader.push(part);
          for (let reply = reader.next(); reply; reply = reader.next()) {
            assert.ok(reply.code >= 200 && reply.code <= 599);
            assert.ok(reply.lines.length >= 1 && reply.lines.length <= 8);
          }
        }
      } catch (error) {
        assert.ok(error instanceof SmtpProtocolError, String(error));
      }
    }),
    { numRuns: 2000 },
  );
});

test("ReplyReader: well-formed replies round-trip at any chunking", () => {
  const line = fc.string({ maxLength: 30 }).map((s) => s.replace(/[\r\n]/g, " "));
  const reply = fc.record({
    code: fc.integer({ min: 200, max: 599 }),
    lines: fc.array(line, { minLength: 1, maxLength: 5 }),
  });
  fc.assert(
    fc.property(fc.array(reply, { minLength: 1, maxLength: 5 }), splits, (replies, cuts) => {
      const text = replies.map(({ code, lines }) =>
        lines.map((l, i) => `${code}${i === lines.length - 1 ? " " : "-"}x${l}\r\n`).join("")
      ).join("");
      const reader = new ReplyReader();
      const got = [];
      for (const part of chunk(new TextEncoder().encode(text), cuts)) {
        reader.push(part);
        for (let r = reader.next(); r; r = reader.next()) got.push(r);
      }
      assert.deepEqual(
        got.map((r) => [r.code, r.lines.length]),
        replies.map((r) => [r.code, r.lines.length]),
      );
    }),
  );
});

test("ReplyReader: time stays linear on megabyte-sized hostile input", () => {
  for (const piece of ["2", "250-", "\r", "250-x\r\n"]) {
    const reader = new ReplyReader({ maxLineLength: 1 << 30, maxLines: 1 << 30 });
    const data = new TextEncoder().encode(piece.repeat(100_000));
    const started = performance.now();
    try {
      for (let i = 0; i < data.length; i += 1000) {
        reader.push(data.subarray(i, i + 1000));
        while (reader.next());
      }
    } catch (error) {
      assert.ok(error instanceof SmtpProtocolError);
    }
    assert.ok(performance.now() - started < 2000, `input ${JSON.stringify(piece)} was slow`);
  }
});

test("Capabilities: any EHLO text parses without a crash", () => {
  fc.assert(
    fc.property(
      fc.array(fc.string({ maxLength: 40 }), { minLength: 1, maxLength: 10 }),
      (lines) => {
        const caps = Capabilities.fromEhlo({ code: 250, lines });
        for (const keyword of caps.keywords) assert.equal(keyword, keyword.toUpperCase());
        const size = caps.maxSize;
        assert.ok(size === undefined || (Number.isSafeInteger(size) && size > 0));
      },
    ),
  );
});

test("DataEncoder: output has CRLF line ends only, no lone dot line, and decodes back", () => {
  fc.assert(
    fc.property(smtpishBytes, splits, (data, cuts) => {
      const encoder = new DataEncoder(true);
      const parts = chunk(data, cuts).map((c) => encoder.push(c));
      parts.push(encoder.finish());
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let o = 0;
      for (const p of parts) {
        out.set(p, o);
        o += p.length;
      }
      const text = new TextDecoder("latin1").decode(out);
      assert.ok(text.endsWith("\r\n.\r\n") || text === ".\r\n");
      const body = text.slice(0, text.length - 3);
      // Every CR is followed by LF and every LF preceded by CR.
      assert.doesNotMatch(body, /\r(?!\n)|(?<!\r)\n/);
      const lines = body.split("\r\n");
      if (lines.at(-1) === "") lines.pop();
      // No line is the end mark; un-stuffing gives back the input with normalised line ends.
      assert.ok(lines.every((l) => l !== "."));
      const unstuffed = lines.map((l) => l.startsWith(".") ? l.slice(1) : l).join("\r\n");
      const expected = new TextDecoder("latin1").decode(data).replace(/\r\n|\r|\n/g, "\r\n");
      assert.equal(
        unstuffed + (lines.length ? "\r\n" : ""),
        expected.endsWith("\r\n") || expected === "" ? expected : expected + "\r\n",
      );
    }),
    { numRuns: 2000 },
  );
});

test("DataEncoder: the CRLF-only fast path writes what the general path writes", () => {
  fc.assert(
    fc.property(smtpishBytes, splits, (data, cuts) => {
      const text = new TextDecoder("latin1").decode(data).replace(/\r\n|\r|\n/g, "\r\n");
      const crlfOnly = Uint8Array.from(text, (c) => c.charCodeAt(0));
      for (const dotStuffing of [true, false]) {
        const run = (encoder: DataEncoder) => {
          const parts = chunk(crlfOnly, cuts).map((c) => encoder.push(c));
          parts.push(encoder.finish());
          return parts.flatMap((p) => [...p]);
        };
        assert.deepEqual(
          run(new DataEncoder(dotStuffing, true)),
          run(new DataEncoder(dotStuffing, false)),
        );
      }
    }),
    { numRuns: 2000 },
  );
});

test("commands: no argument can smuggle a line break into a command", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), (value) => {
      for (const build of [commands.mailFrom, commands.rcptTo, commands.ehlo]) {
        try {
          const line = build(value);
          assert.doesNotMatch(line, /[\r\n\0]/);
        } catch (error) {
          assert.ok(error instanceof TypeError);
        }
      }
    }),
  );
});

test("parseEnhancedStatus reads exactly what the RFC 3463 pattern matches", () => {
  // The model: the pattern the parser replaced, `class.subject.detail` then a space or the end.
  const model = (text: string, code: number) => {
    const match = /^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)/.exec(text);
    if (!match || Number(match[1]) !== Math.floor(code / 100)) return undefined;
    const status = { class: Number(match[1]), subject: Number(match[2]), detail: Number(match[3]) };
    return { status, rest: text.slice(match[0].length) };
  };
  const pieces = fc.constantFrom("2", "4", "5", "0", "9", "12", "123", "1234", ".", " ", "x", "\t");
  fc.assert(
    fc.property(
      fc.array(pieces, { maxLength: 12 }).map((parts) => parts.join("")),
      fc.constantFrom(250, 354, 451, 550),
      (text, code) => assert.deepEqual(parseEnhancedStatus(text, code), model(text, code)),
    ),
    { numRuns: 20_000 },
  );
});
