import assert from "node:assert/strict";
import { SmtpClient } from "../../src/client.ts";
import { SmtpPool } from "../../src/pool.ts";
import { MockSmtpServer } from "../../src/testing/mod.ts";
import { test } from "../_helpers/test.ts";

const message = {
  from: "a@example.com",
  to: ["b@example.com", "c@example.com"],
  subject: "Write-ahead",
  text: "Hello",
};

for (const chunking of [false, true]) {
  const method = chunking ? "BDAT" : "DATA";

  test(`beforeTerminator runs before the end of the message is written (${method})`, async () => {
    await using server = new MockSmtpServer({ extensions: { CHUNKING: chunking } });
    await using client = await SmtpClient.connect(server.clientOptions());
    const seen: number[] = [];
    const result = await client.send(message, {
      beforeTerminator: async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        seen.push(server.messages.length);
      },
    });
    assert.deepEqual(seen, [0]);
    assert.equal(result.accepted.length, 2);
    assert.equal(server.messages.length, 1);
    assert.equal(server.messages[0]!.method, method);
  });

  test(`a beforeTerminator that throws leaves the message not sent (${method})`, async () => {
    await using server = new MockSmtpServer({ extensions: { CHUNKING: chunking } });
    await using pool = new SmtpPool({ ...server.clientOptions(), retries: 0 });
    const refusal = new Error("store unavailable");
    await assert.rejects(
      pool.send(message, { beforeTerminator: () => Promise.reject(refusal) }),
      (error) => error === refusal,
    );
    assert.equal(server.messages.length, 0);
    // The pool's next send gets a fresh connection and goes through.
    const result = await pool.send(message);
    assert.equal(result.accepted.length, 2);
    assert.equal(server.messages.length, 1);
  });
}

test("beforeTerminator runs once per transaction when the server limits recipients", async () => {
  await using server = new MockSmtpServer({
    faults: [{
      command: "RCPT",
      match: "c@example.com",
      reply: "452 4.5.3 Too many recipients",
      times: 1,
    }],
  });
  await using client = await SmtpClient.connect(server.clientOptions());
  const before: number[] = [];
  const result = await client.send(message, {
    beforeTerminator: () => void before.push(server.messages.length),
  });
  assert.deepEqual(before, [0, 1]);
  assert.equal(result.accepted.length, 2);
});

test("send options refuse a beforeTerminator that is not a function", async () => {
  await using server = new MockSmtpServer();
  await using client = await SmtpClient.connect(server.clientOptions());
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => client.send(message, { beforeTerminator: "now" as any }),
    TypeError,
  );
});

for (const chunking of [false, true]) {
  const method = chunking ? "BDAT" : "DATA";

  test(`a throwing beforeTerminator behind a pipelined send: no copy of its message, the neighbour's outcome told truly (${method})`, async () => {
    await using server = new MockSmtpServer({ extensions: { CHUNKING: chunking } });
    await using client = await SmtpClient.connect(server.clientOptions());
    const refusal = new Error("store unavailable");
    const [first, second] = await Promise.allSettled([
      client.send({ ...message, subject: "first" }),
      client.send({ ...message, subject: "second" }, {
        beforeTerminator: () => Promise.reject(refusal),
      }),
    ]);
    assert.equal(second.status, "rejected");
    assert.equal((second as PromiseRejectedResult).reason, refusal);
    const subjects = server.messages.map((m) => m.headers.get("subject"));
    assert.ok(!subjects.includes("second"), "the refused message never arrives");
    if (first.status === "fulfilled") {
      assert.deepEqual(subjects, ["first"]);
    } else {
      // Its terminator went out before the connection closed: the server may hold it.
      assert.equal(first.reason.outcomeUnknown, true, String(first.reason));
      assert.ok(subjects.length <= 1);
    }
  });
}
