/**
 * `enqueue()` reads `{ path }` attachments the way the pool would send them: through the
 * transport's own file opener when it has one (a Workers transport refuses files there).
 */

import assert from "node:assert/strict";
import { denoKvStore, Outbox } from "../../src/outbox/mod.ts";
import { MockSmtpServer } from "../../src/testing/mod.ts";
import type { Transport } from "../../src/transport/types.ts";
import type { FileOpener } from "../../src/file_opener.ts";
import { test } from "../_helpers/test.ts";

/** The mock server's transport with a file opener of its own. */
function withOpener(server: MockSmtpServer, openFile: FileOpener): Transport {
  return {
    connect: (options) => server.transport.connect(options),
    connectTls: (options) => server.transport.connectTls(options),
    startTls: (connection, options) => server.transport.startTls(connection, options),
    openFile,
  };
}

test("enqueue() opens attachment files through the transport's opener", async () => {
  await using server = new MockSmtpServer();
  using kv = await Deno.openKv(":memory:");
  const opened: string[] = [];
  const transport = withOpener(server, (path) => {
    opened.push(path);
    return Promise.resolve(ReadableStream.from([new TextEncoder().encode("file body")]));
  });
  const outbox = new Outbox({
    smtp: { hostname: "smtp.example.com", transport },
    store: denoKvStore(kv),
  });
  const id = await outbox.enqueue({
    from: "me@example.com",
    to: "you@example.com",
    subject: "Report",
    text: "attached",
    attachments: [{ path: "/nowhere/report.txt" }],
  });
  outbox.start();
  await outbox.drain();
  await outbox.close();
  assert.deepEqual(opened, ["/nowhere/report.txt"]);
  assert.equal((await outbox.status(id))?.state, "sent");
  assert.match(server.messages[0]!.text, /ZmlsZSBib2R5/); // "file body" in base64
});

test("enqueue() rejects at once when the transport refuses files", async () => {
  await using server = new MockSmtpServer();
  using kv = await Deno.openKv(":memory:");
  const transport = withOpener(
    server,
    () => Promise.reject(new Error("this runtime has no file system")),
  );
  const outbox = new Outbox({
    smtp: { hostname: "smtp.example.com", transport },
    store: denoKvStore(kv),
  });
  await assert.rejects(
    outbox.enqueue({
      from: "me@example.com",
      to: "you@example.com",
      subject: "Report",
      text: "attached",
      attachments: [{ path: "/nowhere/report.txt" }],
    }),
    /report\.txt.*no file system/,
  );
  assert.deepEqual(await outbox.list({}), []);
  assert.equal(server.messages.length, 0);
});
