/**
 * Files with `node:fs`: the opener for `{ path }` attachments, and a byte stream over an open file.
 *
 * @module
 */

import type { FileHandle } from "node:fs/promises";
import { open } from "node:fs/promises";
import type { OpenedFile } from "./types.ts";

/** Size of the chunks read from files. */
const FILE_CHUNK_SIZE = 512 * 1024;

/** A pull-based byte stream over an open file; the file is closed at the end, on error and on cancel. */
function fileStream(handle: FileHandle): ReadableStream<Uint8Array> {
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await handle.close();
  };
  // A byte stream: a reader that brings its own buffer (the MIME composer does) gets the file
  // read straight into it; others get a fresh chunk of FILE_CHUNK_SIZE per read.
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: FILE_CHUNK_SIZE,
    async pull(controller) {
      const request = controller.byobRequest!;
      const view = request.view!;
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(
          new Uint8Array(view.buffer, view.byteOffset, view.byteLength),
          0,
          view.byteLength,
          null,
        ));
      } catch (error) {
        await close().catch(() => {});
        throw error;
      }
      if (bytesRead === 0) {
        await close();
        controller.close();
        request.respond(0);
        return;
      }
      request.respond(bytesRead);
    },
    async cancel() {
      await close();
    },
  }, { highWaterMark: 0 });
}

/** Opens a file with `node:fs`; rejects when it is missing, not a file, or unreadable. */
export const nodeOpenFile = async (path: string): Promise<OpenedFile> => {
  const handle = await open(path, "r");
  let size: number;
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new TypeError(`Not a file: ${path}`);
    size = info.size;
  } catch (error) {
    await handle.close();
    throw error;
  }
  return { stream: fileStream(handle), size };
};
