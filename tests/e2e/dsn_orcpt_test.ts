/**
 * DSN parameters on the wire, as a scripted server receives them: ORCPT in the RFC 6533 form
 * for a non-ASCII recipient (`utf-8;` and `\x{HEX}` escapes, never `+`), in the RFC 3461 form
 * for an ASCII one, and ENVID's 100-character limit counted on the encoded value.
 */

import assert from "node:assert/strict";
import { SmtpClient } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { type EsmtpLog, serveEsmtp, startScriptedServer } from "../_helpers/scripted_server.ts";

const raw = "From: a@example.com\r\nTo: b@example.com\r\nSubject: DSN\r\n\r\nHi\r\n";

/** Connects to a scripted server offering DSN and SMTPUTF8, runs `fn`, returns the log. */
async function withServer(fn: (client: SmtpClient) => Promise<void>): Promise<EsmtpLog> {
  let log: EsmtpLog | undefined;
  await using server = startScriptedServer(async (conn) => {
    log = await serveEsmtp(conn, { extensions: ["PIPELINING", "DSN", "SMTPUTF8", "8BITMIME"] });
  });
  {
    await using client = await SmtpClient.connect({
      hostname: "127.0.0.1",
      port: server.port,
      tls: "none",
      clientName: "client.postie.test",
    });
    await fn(client);
    await client.quit();
  }
  await server.close();
  return log!;
}

test("ORCPT of a non-ASCII recipient is utf-8-addr-xtext on the RCPT line", async () => {
  const log = await withServer(async (client) => {
    const result = await client.send({
      raw,
      envelope: {
        from: "a@example.com",
        to: ["jörg+tag@example.com", "b+x@example.com", "用户@例子.广告"],
      },
    }, { dsn: { notify: ["FAILURE"], orcpt: true } });
    assert.equal(result.accepted.length, 3);
  });
  assert.deepEqual(log.commands.filter((line) => line.startsWith("RCPT")), [
    "RCPT TO:<jörg+tag@example.com> NOTIFY=FAILURE ORCPT=utf-8;j\\x{F6}rg\\x{2B}tag@example.com",
    "RCPT TO:<b+x@example.com> NOTIFY=FAILURE ORCPT=rfc822;b+2Bx@example.com",
    "RCPT TO:<用户@例子.广告> NOTIFY=FAILURE " +
    "ORCPT=utf-8;\\x{7528}\\x{6237}@\\x{4F8B}\\x{5B50}.\\x{5E7F}\\x{544A}",
  ]);
});

test("ENVID's 100-character limit applies to its xtext-encoded form", async () => {
  const fits = "id=" + "x".repeat(95); // 98 characters, 100 once `=` is `+3D`
  const tooLong = "=".repeat(34); // 34 characters, 102 once encoded
  const log = await withServer(async (client) => {
    assert.throws(
      () =>
        client.send({ raw, envelope: { from: "a@example.com", to: ["b@example.com"] } }, {
          dsn: { envid: tooLong },
        }),
      (error: unknown) => {
        assert.ok(error instanceof RangeError, String(error));
        assert.match(error.message, /dsn\.envid: longer than 100 characters once encoded/);
        return true;
      },
    );
    await client.send({ raw, envelope: { from: "a@example.com", to: ["b@example.com"] } }, {
      dsn: { envid: fits },
    });
  });
  assert.deepEqual(log.commands.filter((line) => line.startsWith("MAIL")), [
    `MAIL FROM:<a@example.com> ENVID=id+3D${"x".repeat(95)}`,
  ]);
});
