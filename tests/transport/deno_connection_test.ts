/**
 * The Deno transport's connection on its own (`src/transport/deno.ts`): vectored writes, and
 * aborts through the one listener it keeps on the signal its calls carry.
 */
import assert from "node:assert/strict";
import { SmtpConnectionError } from "../../mod.ts";
import { denoTransport } from "../../src/transport/deno.ts";
import { test } from "../_helpers/test.ts";

const MiB = 1024 * 1024;
const encoder = new TextEncoder();

/** A loopback listener that hands its one connection to `serve`. */
function listen(serve: (conn: Deno.Conn) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await listener.accept();
    try {
      await serve(conn);
    } finally {
      try {
        conn.close();
      } catch { /* closed */ }
    }
  })();
  return {
    port: listener.addr.port,
    async close() {
      listener.close();
      await served;
    },
  };
}

test("writev() sends the chunks in order, small ones together, large ones uncopied", async () => {
  let received: Uint8Array | undefined;
  const server = listen(async (conn) => {
    const parts: Uint8Array[] = [];
    for await (const chunk of conn.readable) parts.push(chunk);
    received = new Uint8Array(await new Blob(parts as BlobPart[]).arrayBuffer());
  });
  const connection = await denoTransport.connect({ hostname: "127.0.0.1", port: server.port });
  const head = encoder.encode("BDAT 3145729 LAST\r\n");
  const a = new Uint8Array(MiB).fill(0x61);
  const b = new Uint8Array(2 * MiB).fill(0x62);
  try {
    await connection.writev!([head, a, encoder.encode("-"), b]);
  } finally {
    connection.close();
    await server.close();
  }
  assert.ok(received);
  assert.equal(received.length, head.length + 3 * MiB + 1);
  assert.equal(
    new TextDecoder().decode(received.subarray(0, head.length)),
    "BDAT 3145729 LAST\r\n",
  );
  assert.equal(received[head.length + MiB - 1], 0x61);
  assert.equal(received[head.length + MiB], 0x2d);
  assert.equal(received[head.length + MiB + 1], 0x62);
  assert.equal(received.at(-1), 0x62);
});

test("an abort during read() closes the connection and rejects with the reason", async () => {
  const server = listen(async (conn) => {
    await conn.read(new Uint8Array(1)); // until the client closes
  });
  const connection = await denoTransport.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    const controller = new AbortController();
    const reason = new Error("enough");
    const pending = connection.read(controller.signal);
    setTimeout(() => controller.abort(reason), 20);
    await assert.rejects(pending, (error) => error === reason);
    assert.equal(connection.closed, true);
    assert.equal(await connection.read(), null);
  } finally {
    connection.close();
    await server.close();
  }
});

test("an abort while a write waits for the peer rejects with the reason; later writes fail", async () => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  const server = listen(async () => {
    await released; // reads nothing until the client gave up
  });
  const connection = await denoTransport.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    const controller = new AbortController();
    const reason = new Error("too slow");
    let settled = false;
    const pending = connection.writev!(
      [encoder.encode("BDAT 67108864\r\n"), new Uint8Array(64 * MiB)],
      controller.signal,
    ).finally(() => settled = true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(settled, false, "64 MiB to a peer that does not read must wait");
    controller.abort(reason);
    await assert.rejects(pending, (error) => error === reason);
    assert.equal(connection.closed, true);
    await assert.rejects(connection.write(encoder.encode("x")), SmtpConnectionError);
  } finally {
    connection.close();
    release();
    await server.close();
  }
});
