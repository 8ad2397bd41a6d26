import assert from "node:assert/strict";
import { SmtpClient } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { startFaultServer } from "../faults/_fault_server.ts";

const envelope = { from: "a@example.com", to: ["b@example.com"] };

test("DATA and BDAT deliver the same bytes for a raw message without a final line end", async () => {
  const received: string[] = [];
  for (const extensions of [["PIPELINING"], ["PIPELINING", "CHUNKING"]]) {
    await using server = startFaultServer({ extensions });
    const client = await SmtpClient.connect({
      hostname: "127.0.0.1",
      port: server.port,
      tls: "none",
    });
    for (const raw of ["Subject: x\r\n\r\nno final line end", "Subject: y\n\nbare\nLF"]) {
      await client.send({ raw, envelope });
    }
    await client.quit();
    await server.close();
    received.push(server.kept.map((m) => m.data).join("|"));
  }
  assert.equal(received[0], received[1]);
  assert.equal(
    received[0],
    "Subject: x\r\n\r\nno final line end\r\n|Subject: y\r\n\r\nbare\r\nLF\r\n",
  );
});
