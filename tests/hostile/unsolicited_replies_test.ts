/** Hostile and broken servers: replies nobody asked for. See tests/hostile/_helpers.ts for the shared tools. */

import assert from "node:assert/strict";
import { sendMail, SmtpProtocolError } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { startScriptedServer } from "../_helpers/scripted_server.ts";
import { check, clientCloses, envelope, plain, raw, rejection } from "./_helpers.ts";

// A reply that arrives before its command was sent would be taken as the answer to the next
// command, and the session would run one reply behind. The client refuses bytes that wait
// before any command that is not pipelined (the STARTTLS step does the same).
test(
  "a reply sent before EHLO (unsolicited): SmtpProtocolError, not a session one reply behind",
  async () => {
    await using server = startScriptedServer(async (conn) => {
      await conn.send("220 hostile.test ESMTP\r\n250 surprise\r\n");
      await clientCloses(conn);
    });
    const error = await rejection(
      sendMail(plain(server.port, { timeouts: { commandMs: 1000 } }), { raw, envelope }),
    );
    check(error, SmtpProtocolError, "ehlo");
    await server.close();
    assert.equal(server.connections.length, 1);
  },
);
