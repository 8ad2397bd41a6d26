import assert from "node:assert/strict";
import { openFile as runtimeOpenFile } from "../../src/transport/default.ts";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { test } from "../_helpers/test.ts";
import { composeMessage } from "../../src/mime/mod.ts";
import { collect, parse, pseudoRandomBytes, testOpenFile, UnevenByteStream } from "./_helpers.ts";
import {
  messageBytes,
  messageSize,
  type Part,
  type PartBody,
  streamMessage,
} from "../../src/mime/_multipart.ts";

const base = { from: "ann@example.com", to: "bob@example.com", text: "see attachment" } as const;
const CHUNK = 64 * 1024;

/** A stream of `count` fresh 64 KiB chunks, each stamped with its index; counts its pulls. */
function generated(count: number, onChunk: (chunk: Uint8Array) => void = () => {}) {
  const pattern = pseudoRandomBytes(CHUNK, 11);
  const state = { pulls: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (state.pulls === count) return controller.close();
      const chunk = pattern.slice();
      new DataView(chunk.buffer).setUint32(0, state.pulls);
      state.pulls++;
      onChunk(chunk);
      controller.enqueue(chunk);
    },
    cancel() {
      state.cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, state };
}

test("a 64 MB attachment streams through with flat memory and arrives intact", async () => {
  const count = 1024; // 64 MiB
  const inputHash = createHash("sha256");
  const { stream } = generated(count, (chunk) => inputHash.update(chunk));
  const composed = await composeMessage({
    ...base,
    attachments: [{ filename: "big.bin", content: stream }],
  });

  const outputHash = createHash("sha256");
  // heapUsed + external belong to this isolate; RSS would also count the tests that run in
  // parallel in other workers of the same process.
  const used = () => {
    const memory = Deno.memoryUsage();
    return memory.heapUsed + memory.external;
  };
  const baseline = used();
  let peak = baseline;
  let carry = "";
  let inAttachment = false;
  let pending = "";
  let chunks = 0;
  let small = 0;
  let total = 0;
  const reader = composed.body.getReader();
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks++;
    total += value.length;
    if (value.length < 16 * 1024) small++;
    const lines = (carry + new TextDecoder().decode(value)).split("\r\n");
    carry = lines.pop()!;
    for (const line of lines) {
      if (line === "Content-Disposition: attachment; filename=big.bin") inAttachment = true;
      else if (inAttachment && line.startsWith("--")) inAttachment = false;
      else if (inAttachment && line !== "") {
        assert.ok(line.length <= 76);
        pending += line;
      }
    }
    if (pending.length >= CHUNK) {
      const whole = pending.length - (pending.length % 4);
      outputHash.update(Buffer.from(pending.slice(0, whole), "base64"));
      pending = pending.slice(whole);
    }
    if (chunks % 64 === 0) peak = Math.max(peak, used());
  }
  outputHash.update(Buffer.from(pending, "base64"));
  assert.equal(carry, "");
  assert.equal(outputHash.digest("hex"), inputHash.digest("hex"));
  assert.ok(total > (count * CHUNK * 4) / 3, `only ${total} bytes`);
  assert.ok(small <= 1, `${small} of ${chunks} chunks were under 16 KiB`);
  const grown = (peak - baseline) / 2 ** 20;
  assert.ok(grown < 40, `memory grew by ${grown.toFixed(1)} MiB`);
});

test("the body is pulled: a source is read only as fast as the consumer reads", async () => {
  const { stream, state } = generated(100);
  const composed = await composeMessage({ ...base, attachments: [{ content: stream }] });
  assert.equal(state.pulls, 0, "nothing is read before the body is");
  const reader = composed.body.getReader();
  await reader.read();
  assert.ok(state.pulls <= 3, `${state.pulls} chunks were pulled for the first read`);
  await reader.cancel(new Error("stop"));
  assert.equal(state.cancelled, false, "the caller's stream is not cancelled behind its back");
  assert.equal(stream.locked, false, "it is released");
});

test("cancelling the body closes every attachment file, started or not", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const big = pseudoRandomBytes(512 * 1024);
    await Deno.writeFile(`${dir}/a.bin`, big);
    await Deno.writeFile(`${dir}/b.bin`, big);
    const attachments = [{ content: { path: `${dir}/a.bin` } }, {
      content: { path: `${dir}/b.bin` },
    }];
    // Started: the first file is being read.
    const started = await composeMessage({ ...base, attachments }, { openFile: testOpenFile });
    const reader = started.body.getReader();
    await reader.read();
    await reader.read();
    await reader.cancel();
    // Not started: the body is cancelled before anything is read (the runtime's opener).
    const unread = await composeMessage({ ...base, attachments }, { openFile: runtimeOpenFile });
    await unread.body.cancel();
    // The test's sanitizer fails it if a file is still open here.
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("an error in one source errors the body and closes the other files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/later.bin`, pseudoRandomBytes(1000));
    let pulls = 0;
    const failing = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulls++ === 0) controller.enqueue(pseudoRandomBytes(100));
        else controller.error(new Error("disk on fire"));
      },
    });
    const composed = await composeMessage({
      ...base,
      attachments: [{ content: failing }, { content: { path: `${dir}/later.bin` } }],
    }, { openFile: runtimeOpenFile });
    await assert.rejects(new Response(composed.body).arrayBuffer(), /disk on fire/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("a source that yields something other than bytes errors the body", async () => {
  const composed = await composeMessage({
    ...base,
    attachments: [{ content: ReadableStream.from(["text" as unknown as Uint8Array]) }],
  });
  await assert.rejects(new Response(composed.body).arrayBuffer(), /non-Uint8Array chunk/);
});

test("a small message held in memory serialises to the same bytes as its stream", async () => {
  const bytes = (text: string) => new TextEncoder().encode(text);
  const leaf = (headers: string, body: PartBody): Part => ({ headers, body });
  const trees: Part[] = [
    leaf("Content-Type: text/plain\r\n", { kind: "encoded", bytes: bytes("no final break") }),
    leaf("Content-Type: text/plain\r\n", { kind: "encoded", bytes: bytes("line\r\n") }),
    leaf("Content-Type: image/png\r\n", { kind: "base64", bytes: pseudoRandomBytes(200_000) }),
    {
      headers: "Content-Type: multipart/mixed; boundary=outer\r\n",
      boundary: "outer",
      children: [
        {
          headers: "Content-Type: multipart/alternative; boundary=inner\r\n",
          boundary: "inner",
          children: [
            leaf("Content-Type: text/plain\r\n", { kind: "encoded", bytes: bytes("text") }),
            leaf("Content-Type: text/html\r\n", { kind: "encoded", bytes: bytes("<p>html</p>") }),
          ],
        },
        leaf("Content-Type: application/pdf\r\n", { kind: "base64", bytes: new Uint8Array(0) }),
        leaf("Content-Type: application/pdf\r\n", { kind: "base64", bytes: pseudoRandomBytes(57) }),
      ],
    },
  ];
  for (const tree of trees) {
    const streamed = new Uint8Array(await new Response(streamMessage(tree)).arrayBuffer());
    assert.deepEqual(messageBytes(tree, Infinity), streamed);
    assert.equal(messageSize(tree), streamed.length);
  }
  assert.equal(messageBytes(trees[2]!, 100_000), undefined, "over the limit: streamed");
  const withStream = leaf("Content-Type: image/png\r\n", {
    kind: "base64-stream",
    stream: new ReadableStream(),
    owned: true,
  });
  assert.equal(messageBytes(withStream, Infinity), undefined, "a stream: streamed");
});

test("a byte stream (a file) is read into one reused buffer and arrives intact", async () => {
  const content = pseudoRandomBytes(3_000_000, 9);
  // Uneven reads, as from a file or a pipe.
  const source = new UnevenByteStream(content, (read) => 100_000 + (read % 7) * 9_999);
  const composed = await composeMessage({
    ...base,
    attachments: [{ filename: "file.bin", content: source.stream }],
  });
  const parsed = await parse(await collect(composed.body));
  assert.deepEqual(new Uint8Array(parsed.attachments[0]!.content), content);
  assert.ok(source.reads >= 20, `${source.reads} reads`);
});

test("a reader with its own buffer gets the message written into it, whatever its size", async () => {
  const content = pseudoRandomBytes(1_000_003, 5);
  const message = () => ({
    ...base,
    html: "<p>see attachment</p>",
    date: new Date(0),
    messageId: "<fixed@example.com>",
    attachments: [
      { filename: "a.bin", content: ReadableStream.from([content.slice(0, 70_001), content]) },
      { filename: "b.bin", content: content.subarray(0, 300_000) },
    ],
  });
  const expected = await collect((await composeMessage(message())).body);
  for (const size of [1, 77, 4096, 65_537, 262_144]) {
    const composed = await composeMessage(message());
    const reader = composed.body.getReader({ mode: "byob" });
    const out = new Uint8Array(expected.length + size);
    let buffer = new ArrayBuffer(size);
    let length = 0;
    let reads = 0;
    while (true) {
      const { done, value } = await reader.read(new Uint8Array(buffer));
      if (done) break;
      reads++;
      // One buffer throughout: the same memory comes back, filled.
      buffer = value.buffer as ArrayBuffer;
      out.set(value, length);
      length += value.length;
      if (length < expected.length) {
        assert.equal(value.length, size, "every read but the last is full");
      }
    }
    // Boundaries are random per composition: compare all but them.
    const text = (bytes: Uint8Array) =>
      new TextDecoder().decode(bytes).replaceAll(/postie_[0-9a-f]{24}/g, "B");
    assert.equal(text(out.subarray(0, length)), text(expected));
    assert.equal(reads, Math.ceil(expected.length / size));
  }
});

test("the size of a composed message is exact, file attachments included", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const sizes = [0, 1, 56, 57, 58, 1000, 700_001];
    const attachments = await Promise.all(sizes.map(async (size, i) => {
      const path = `${dir}/file-${i}.bin`;
      await Deno.writeFile(path, pseudoRandomBytes(size, i + 1));
      return { filename: `file-${i}.bin`, content: { path } };
    }));
    for (
      const message of [
        { ...base, attachments },
        { ...base, attachments: attachments.slice(-1) },
        { ...base, html: "<p>Hi</p>", subject: "Zoë", attachments: attachments.slice(0, 1) },
        { from: "ann@example.com", to: "bob@example.com", attachments: attachments.slice(3, 4) },
      ]
    ) {
      const composed = await composeMessage(message, { openFile: runtimeOpenFile });
      const bytes = await collect(composed.body);
      assert.equal(composed.size, bytes.length);
    }
    const unknown = await composeMessage({
      ...base,
      attachments: [{ filename: "s.bin", content: new Blob(["abc"]).stream() }],
    });
    assert.equal(unknown.size, undefined, "a caller's stream has no known size");
    await unknown.body.cancel();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
