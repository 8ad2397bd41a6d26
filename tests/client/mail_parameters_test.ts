import assert from "node:assert/strict";
import { SmtpUnsupportedError } from "../../mod.ts";
import { mailCommands } from "../../src/mail_parameters.ts";
import type { PreparedMessage } from "../../src/outgoing.ts";
import { Capabilities } from "../../src/protocol/capabilities.ts";
import type { SendOptions } from "../../src/options.ts";
import { test } from "../_helpers/test.ts";

function caps(...extensions: string[]): Capabilities {
  return Capabilities.fromEhlo({ code: 250, lines: ["server.test", ...extensions] });
}

function message(overrides: Partial<PreparedMessage> = {}): PreparedMessage {
  return {
    from: "a@example.com",
    to: ["b@example.com"],
    body: new TextEncoder().encode("Subject: x\r\n\r\nbody\r\n"),
    ownsBody: false,
    eightBit: false,
    smtpUtf8: false,
    crlfLineEnds: false,
    binary: false,
    ...overrides,
  };
}

const plain = { chunking: true, tls: true };

const cases: {
  what: string;
  message?: Partial<PreparedMessage>;
  caps: string[];
  options?: SendOptions;
  mail?: [string, string | undefined][];
  rcpt?: [string, string][];
  chunking?: boolean;
  refused?: string;
}[] = [
  { what: "nothing offered: no parameters", caps: [], mail: [], chunking: false },
  { what: "SIZE is declared", caps: ["SIZE 1000"], mail: [["SIZE", "20"]] },
  { what: "over the SIZE limit", caps: ["SIZE 10"], refused: "SIZE" },
  {
    what: "8-bit with 8BITMIME",
    message: { eightBit: true },
    caps: ["8BITMIME"],
    mail: [["BODY", "8BITMIME"]],
  },
  { what: "8-bit without 8BITMIME", message: { eightBit: true }, caps: [], refused: "8BITMIME" },
  {
    what: "binary MIME with CHUNKING and BINARYMIME",
    message: { binary: true },
    caps: ["CHUNKING", "BINARYMIME"],
    mail: [["BODY", "BINARYMIME"]],
    chunking: true,
  },
  {
    what: "binary MIME without BINARYMIME",
    message: { binary: true },
    caps: ["CHUNKING"],
    refused: "BINARYMIME",
  },
  {
    what: "an internationalised address with SMTPUTF8",
    message: { to: ["jörg@example.com"] },
    caps: ["SMTPUTF8"],
    mail: [["SMTPUTF8", undefined]],
  },
  {
    what: "an internationalised address without SMTPUTF8",
    message: { to: ["jörg@example.com"] },
    caps: [],
    refused: "SMTPUTF8",
  },
  {
    what: "REQUIRETLS offered over TLS",
    caps: ["REQUIRETLS"],
    options: { requireTls: true },
    mail: [["REQUIRETLS", undefined]],
  },
  {
    what: "REQUIRETLS not offered",
    caps: [],
    options: { requireTls: true },
    refused: "REQUIRETLS",
  },
  {
    what: "DSN with every option",
    caps: ["DSN"],
    options: { dsn: { ret: "HDRS", envid: "id+1", notify: ["FAILURE", "DELAY"], orcpt: true } },
    mail: [["RET", "HDRS"], ["ENVID", "id+2B1"]],
    rcpt: [["NOTIFY", "FAILURE,DELAY"], ["ORCPT", "rfc822;b@example.com"]],
  },
  { what: "DSN not offered", caps: [], options: { dsn: { ret: "FULL" } }, refused: "DSN" },
];

for (const c of cases) {
  test(`mailCommands(): ${c.what}`, () => {
    const run = () => mailCommands(message(c.message), caps(...c.caps), plain, c.options ?? {});
    if (c.refused) {
      assert.throws(run, (error: unknown) => {
        assert.ok(error instanceof SmtpUnsupportedError);
        assert.equal(error.extension, c.refused);
        assert.equal(error.phase, "mail");
        return true;
      });
      return;
    }
    const commands = run();
    assert.deepEqual(commands.mailParams, c.mail ?? []);
    assert.deepEqual(commands.rcptParams("b@example.com"), c.rcpt ?? []);
    if (c.chunking !== undefined) assert.equal(commands.chunking, c.chunking);
  });
}

test("mailCommands(): REQUIRETLS is refused over a connection without TLS", () => {
  assert.throws(
    () =>
      mailCommands(message(), caps("REQUIRETLS"), { chunking: true, tls: false }, {
        requireTls: true,
      }),
    SmtpUnsupportedError,
  );
});

test("mailCommands(): chunking off in the options means DATA, and no binary MIME", () => {
  const off = { chunking: false, tls: true };
  assert.equal(mailCommands(message(), caps("CHUNKING"), off, {}).chunking, false);
  assert.throws(
    () => mailCommands(message({ binary: true }), caps("CHUNKING", "BINARYMIME"), off, {}),
    /chunking is off/,
  );
});

test("mailCommands(): an IDN domain goes as punycode without SMTPUTF8", () => {
  const commands = mailCommands(message({ to: ["b@bücher.example"] }), caps(), plain, {});
  assert.deepEqual(commands.to, ["b@xn--bcher-kva.example"]);
  assert.deepEqual(commands.mailParams, []);
});
