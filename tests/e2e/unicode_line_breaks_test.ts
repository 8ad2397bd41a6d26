/**
 * An address with NEL (U+0085), LINE SEPARATOR (U+2028) or PARAGRAPH SEPARATOR (U+2029) is
 * refused with a `TypeError` before MAIL FROM, for raw messages (envelope), composed messages
 * (headers and envelope) and an envelope given in the send options; the connection stays
 * usable. A scripted server records every command it receives.
 */

import assert from "node:assert/strict";
import { SmtpClient } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { type EsmtpLog, serveEsmtp, startScriptedServer } from "../_helpers/scripted_server.ts";

const BREAKS = [["U+0085", "\u0085"], ["U+2028", "\u2028"], ["U+2029", "\u2029"]] as const;

for (const [code, char] of BREAKS) {
  test(`send() refuses an address with ${code} before MAIL FROM`, async () => {
    let log: EsmtpLog | undefined;
    await using server = startScriptedServer(async (conn) => {
      log = await serveEsmtp(conn, { extensions: ["PIPELINING", "SMTPUTF8", "8BITMIME"] });
    });
    await using client = await SmtpClient.connect({
      hostname: "127.0.0.1",
      port: server.port,
      tls: "none",
      clientName: "client.postie.test",
    });
    const bad = `a${char}b@example.com`;
    const raw = "From: a@example.com\r\nTo: b@example.com\r\n\r\nHi\r\n";
    const attempts = [
      () => client.send({ raw, envelope: { from: bad, to: ["b@example.com"] } }),
      () => client.send({ raw, envelope: { from: "a@example.com", to: [bad] } }),
      () => client.send({ from: bad, to: "b@example.com", text: "Hi" }),
      () => client.send({ from: "a@example.com", to: `"x${char}y"@example.com`, text: "Hi" }),
      () =>
        client.send({ from: "a@example.com", to: "b@example.com", text: "Hi" }, {
          envelope: { from: bad, to: ["b@example.com"] },
        }),
    ];
    for (const [i, attempt] of attempts.entries()) {
      await assert.rejects(async () => await attempt(), (error: unknown) => {
        assert.ok(error instanceof TypeError, `attempt ${i}: ${error}`);
        assert.match(error.message, /line break/);
        return true;
      });
    }
    const result = await client.send({ raw, envelope: { from: "a@example.com", to: ["b@x.y"] } });
    assert.equal(result.accepted.length, 1);
    await client.quit();
    await server.close();
    const sent = log!.commands.filter((line) => /^(MAIL|RCPT)/.test(line));
    assert.deepEqual(sent, ["MAIL FROM:<a@example.com>", "RCPT TO:<b@x.y>"]);
    assert.equal(log!.commands.some((line) => line.includes(char)), false);
  });
}
