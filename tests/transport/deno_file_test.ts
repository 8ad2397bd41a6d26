import assert from "node:assert/strict";
import { denoOpenFile } from "../../src/transport/deno.ts";
import { test } from "../_helpers/test.ts";
import { pseudoRandomBytes } from "../mime/_helpers.ts";

async function withTempFile(bytes: Uint8Array, fn: (path: string) => Promise<void>) {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeFile(path, bytes);
    await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

test("denoOpenFile() streams a file of several chunks whole, and closes it at the end", async () => {
  const bytes = pseudoRandomBytes(1_300_000, 5);
  await withTempFile(bytes, async (path) => {
    const { stream, size } = await denoOpenFile(path);
    assert.equal(size, bytes.length);
    const read = new Uint8Array(await new Response(stream).arrayBuffer());
    assert.equal(read.length, bytes.length);
    assert.deepEqual(read, bytes);
  });
});

test("denoOpenFile() closes the file when the stream is cancelled", async () => {
  await withTempFile(pseudoRandomBytes(2_000_000, 6), async (path) => {
    const reader = (await denoOpenFile(path)).stream.getReader();
    const first = await reader.read();
    assert.equal(first.done, false);
    await reader.cancel();
  });
});

test("denoOpenFile() rejects a missing file and a folder, leaving nothing open", async () => {
  await assert.rejects(denoOpenFile("/nonexistent/postie-missing.bin"), Deno.errors.NotFound);
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(denoOpenFile(dir), /Not a file/);
  } finally {
    await Deno.remove(dir);
  }
});
