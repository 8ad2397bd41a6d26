/**
 * Benchmark of the MIME builder: a message with one 50 MB attachment, composed and streamed by
 * postie's `composeMessage` and by nodemailer's MailComposer. Prints the throughput (MB of
 * attachment per second) and the peak RSS growth while the message streams.
 *
 *     deno run -A scripts/bench_mime.ts [--size-mb 50] [--source file|memory] [--runs 3]
 *
 * Each composer runs in a fresh subprocess, so that one's heap does not distort the other's RSS.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Buffer } from "node:buffer";
import type { Readable } from "node:stream";
import MailComposer from "nodemailer/lib/mail-composer";
import { composeMessage } from "../src/mime/mod.ts";
import { openFile } from "../src/transport/default.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    "size-mb": { type: "string", default: "50" },
    source: { type: "string", default: "file" },
    runs: { type: "string", default: "3" },
    impl: { type: "string" },
    path: { type: "string" },
  },
});
const sizeMb = Number(values["size-mb"]);
const size = sizeMb * 1024 * 1024;
const source = values.source === "memory" ? "memory" : "file";

interface Result {
  impl: string;
  ms: number;
  bytes: number;
  peakRssGrowth: number;
}

function testData(): Uint8Array {
  const data = new Uint8Array(size);
  const block = new Uint8Array(65536);
  for (let offset = 0; offset < size; offset += 65536) {
    crypto.getRandomValues(block);
    data.set(block.subarray(0, Math.min(65536, size - offset)), offset);
  }
  return data;
}

/** Reads a stream of chunks to its end, sampling RSS; returns bytes and peak RSS growth. */
async function drain(chunks: AsyncIterable<Uint8Array>, baseline: number) {
  let bytes = 0;
  let peak = baseline;
  let count = 0;
  for await (const chunk of chunks) {
    bytes += chunk.length;
    if (++count % 16 === 0) peak = Math.max(peak, Deno.memoryUsage().rss);
  }
  return { bytes, peakRssGrowth: Math.max(peak, Deno.memoryUsage().rss) - baseline };
}

async function runOne(impl: string, path: string): Promise<Result> {
  const data = source === "memory" ? testData() : undefined;
  const message = {
    from: "Bench <bench@example.com>",
    to: "bob@example.com",
    subject: "Benchmark",
    text: "A large attachment.",
  };
  const baseline = Deno.memoryUsage().rss;
  const start = performance.now();
  let drained: { bytes: number; peakRssGrowth: number };
  if (impl === "postie") {
    const composed = await composeMessage({
      ...message,
      attachments: [{ filename: "big.bin", content: data ?? { path } }],
    }, { openFile });
    drained = await drain(composed.body, baseline);
  } else {
    const composer = new MailComposer({
      ...message,
      attachments: [{
        filename: "big.bin",
        ...(data ? { content: Buffer.from(data.buffer) } : { path }),
      }],
    });
    const stream = composer.compile().createReadStream() as Readable;
    drained = await drain(stream as AsyncIterable<Uint8Array>, baseline);
  }
  return { impl, ms: performance.now() - start, ...drained };
}

if (values.impl) {
  // Child process: one measurement, printed as JSON.
  console.log(JSON.stringify(await runOne(values.impl, values.path!)));
} else {
  const path = await Deno.makeTempFile({ suffix: ".bin" });
  try {
    await Deno.writeFile(path, testData());
    console.log(
      `${sizeMb} MB attachment from ${source}, ${values.runs} runs each (best time, max RSS growth)`,
    );
    for (const impl of ["postie", "nodemailer"]) {
      const results: Result[] = [];
      for (let run = 0; run < Number(values.runs); run++) {
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            new URL(import.meta.url).pathname,
            `--impl=${impl}`,
            `--path=${path}`,
            `--size-mb=${sizeMb}`,
            `--source=${source}`,
          ],
          stderr: "inherit",
        });
        const { stdout, success } = await child.output();
        if (!success) throw new Error(`${impl} run failed`);
        results.push(JSON.parse(new TextDecoder().decode(stdout)));
      }
      const best = Math.min(...results.map((r) => r.ms));
      const rss = Math.max(...results.map((r) => r.peakRssGrowth));
      const out = results[0]!.bytes;
      console.log(
        `${impl.padEnd(10)} ${(sizeMb / (best / 1000)).toFixed(0).padStart(5)} MB/s  ` +
          `${best.toFixed(0).padStart(6)} ms  output ${(out / 2 ** 20).toFixed(1)} MiB  ` +
          `peak RSS growth ${(rss / 2 ** 20).toFixed(1)} MiB`,
      );
    }
  } finally {
    await Deno.remove(path);
  }
}
