/** Hostile and broken servers: AUTH. See tests/hostile/_helpers.ts for the shared tools. */

import assert from "node:assert/strict";
import { SmtpAuthError, SmtpClient } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { testCa } from "../_helpers/smtp_server.ts";
import { greet, startScriptedServer } from "../_helpers/scripted_server.ts";
import { check, password, rejection, tlsCert } from "./_helpers.ts";

for (const mechanism of ["PLAIN", "LOGIN", "CRAM-MD5"] as const) {
  test(`endless 334 challenges to AUTH ${mechanism}: SmtpAuthError, bounded, socket closed`, async () => {
    const lines: string[] = [];
    let closed = false;
    await using server = startScriptedServer(async (conn) => {
      await greet(conn, [`AUTH ${mechanism}`]);
      while (true) {
        const line = await conn.readLine();
        if (line === null) {
          closed = true;
          return;
        }
        lines.push(line);
        if (lines.length > 100) throw new Error("the client keeps answering challenges");
        await conn.send("334 VXNlcm5hbWU6\r\n");
      }
    }, tlsCert);
    const error = await rejection(SmtpClient.connect({
      hostname: "localhost",
      port: server.port,
      tls: "implicit",
      tlsOptions: { caCerts: [testCa] },
      auth: { username: "user", password, mechanisms: [mechanism] },
    }));
    check(error, SmtpAuthError, "auth");
    assert.equal(String(error).includes(password), false);
    await server.close();
    assert.ok(closed, "the client kept the connection open");
    assert.ok(lines.length <= 12, `${lines.length} lines: ${lines.join(" | ")}`);
    assert.equal(lines.filter((line) => line.startsWith("AUTH")).length, 1);
    assert.equal(lines.some((line) => line.startsWith("MAIL")), false);
    assert.equal(server.connections.length, 1);
  });
}
