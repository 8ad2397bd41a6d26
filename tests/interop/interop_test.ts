/**
 * Interoperability with a real MTA: Postfix with Dovecot SASL, started by
 * `tests/interop/setup.sh` on 127.0.0.1 (see that file for the three ports). Delivered mail is
 * read back from Postfix's Maildirs and parsed with mailparser, a MIME parser that is not ours,
 * and for header fidelity also with Python's `email` package (`policy.default`).
 *
 * When the MTA is not running, every test here is skipped loudly: it prints
 * `INTEROP SKIPPED: <reason>` and is reported as ignored, never as passed.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { simpleParser } from "mailparser";
import {
  type ClientOptions,
  type PasswordMechanism,
  sendMail,
  SmtpAuthError,
  SmtpClient,
  SmtpRecipientsError,
  SmtpReplyError,
  SmtpUnsupportedError,
  type TranscriptEvent,
} from "../../mod.ts";
import fc from "fast-check";
import { test } from "../_helpers/test.ts";
import { testCa } from "../_helpers/smtp_server.ts";
import {
  type Case,
  caseOf,
  compareMailparser,
  comparePython,
  generatedCase,
  messageOf,
  NAMED_CASES,
} from "../mime/_fidelity.ts";
import { PythonEmail } from "../mime/_python_email.ts";

/** What setup.sh wrote to `interop.json`. */
interface InteropEnv {
  hostname: string;
  ports: { starttls: number; implicit: number; submission: number };
  user: string;
  password: string;
  domain: string;
  maildir: string;
  messageSizeLimit: number;
  postfixLog: string;
  postfixVersion: string;
  dovecotVersion: string;
}

const stateDir = Deno.env.get("POSTIE_INTEROP_DIR") ?? "/tmp/postie-interop";

async function loadEnv(): Promise<{ env: InteropEnv } | { reason: string }> {
  const file = `${stateDir}/interop.json`;
  let env: InteropEnv;
  try {
    env = JSON.parse(await Deno.readTextFile(file));
  } catch {
    return {
      reason: `no MTA: ${file} is missing (run \`deno task test:interop\` or ` +
        "`bash tests/interop/setup.sh` first; setup.sh prints why it could not start one)",
    };
  }
  for (const [mode, port] of Object.entries(env.ports)) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    } catch (error) {
      return {
        reason: `${file} names ${mode} port ${port}, but nothing answers there (${
          (error as Error).message
        }): the MTA was stopped; run tests/interop/setup.sh again`,
      };
    }
  }
  return { env };
}

const loaded = await loadEnv();
const skipReason = "reason" in loaded ? loaded.reason : undefined;
const env = "env" in loaded ? loaded.env : undefined as unknown as InteropEnv;
if (env) {
  console.log(
    `interop: Postfix ${env.postfixVersion}, Dovecot ${env.dovecotVersion} on 127.0.0.1 ` +
      `ports ${env.ports.starttls} (STARTTLS), ${env.ports.implicit} (implicit TLS), ` +
      `${env.ports.submission} (submission)`,
  );
}

/** A test that needs the MTA: skipped loudly when it is not there. */
function interop(name: string, fn: () => Promise<void>): void {
  if (skipReason) {
    console.log(`INTEROP SKIPPED: ${name}: ${skipReason}`);
    test(`[interop] ${name}`, { ignore: true }, fn);
    return;
  }
  test(`[interop] ${name}`, fn);
}

/**
 * Options for one of the three ports, with the test CA and a transcript recorder. The recorded
 * transcript rides along as a property that is not enumerable: the client refuses fields it
 * does not know.
 */
function options(
  mode: keyof InteropEnv["ports"],
  extra: Partial<ClientOptions> = {},
): ClientOptions & { transcript: TranscriptEvent[] } {
  const transcript: TranscriptEvent[] = [];
  const clientOptions: ClientOptions = {
    hostname: env.hostname,
    port: env.ports[mode],
    tls: mode === "implicit" ? "implicit" : "starttls",
    tlsOptions: { caCerts: [testCa] },
    clientName: "client.postie.test",
    timeouts: { greetingMs: 10_000, commandMs: 10_000, dataEndMs: 20_000 },
    onTranscript: (event) => transcript.push(event),
    ...extra,
  };
  // Not enumerable: the client refuses fields it does not know, and this one is the test's.
  return Object.defineProperty(clientOptions, "transcript", { value: transcript }) as
    & ClientOptions
    & { transcript: TranscriptEvent[] };
}

function credentials(mechanisms?: PasswordMechanism[]) {
  return {
    username: env.user,
    password: env.password,
    ...(mechanisms ? { mechanisms } : {}),
  };
}

const client = (t: TranscriptEvent[]) =>
  t.filter((e) => e.direction === "client").map((e) => e.line);
const server = (t: TranscriptEvent[]) =>
  t.filter((e) => e.direction === "server").map((e) => e.line);

/** A fresh token that marks one test's message, so that tests can share the Maildirs. */
function token(): string {
  return crypto.randomUUID();
}

/** Waits until Postfix delivered a message containing `mark` into `mailbox`; returns it. */
async function delivered(mailbox: string, mark: string, timeoutMs = 15_000): Promise<Uint8Array> {
  const folder = `${env.maildir}/${mailbox}/new`;
  const deadline = Date.now() + timeoutMs;
  while (true) {
    try {
      for await (const entry of Deno.readDir(folder)) {
        const bytes = await Deno.readFile(`${folder}/${entry.name}`);
        if (new TextDecoder().decode(bytes).includes(mark)) return bytes;
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    if (Date.now() > deadline) {
      const log = await Deno.readTextFile(env.postfixLog).catch(() => "");
      throw new Error(
        `No message marked ${mark} in ${folder} after ${timeoutMs} ms; Postfix log tail:\n` +
          log.split("\n").slice(-15).join("\n"),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Messages in `mailbox` that contain `mark`, counted now. */
async function countDelivered(mailbox: string, mark: string): Promise<number> {
  let count = 0;
  try {
    for await (const entry of Deno.readDir(`${env.maildir}/${mailbox}/new`)) {
      const text = await Deno.readTextFile(`${env.maildir}/${mailbox}/new/${entry.name}`);
      if (text.includes(mark)) count++;
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return count;
}

/** Random bytes (getRandomValues gives at most 64 KiB per call). */
function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i += 65536) {
    crypto.getRandomValues(bytes.subarray(i, Math.min(length, i + 65536)));
  }
  return bytes;
}

function parse(bytes: Uint8Array) {
  return simpleParser(Buffer.from(bytes));
}

function rawMessage(mark: string, to = "alice@postie.test", extra = ""): string {
  return `From: Postie Test <sender@postie.test>\r\nTo: ${to}\r\n` +
    `Subject: interop ${mark}\r\nMessage-ID: <${mark}@client.postie.test>\r\n${extra}\r\n` +
    `Hello from postie.\r\n.a line that starts with a dot\r\n..and one with two\r\n`;
}

/** Asserts that MAIL FROM, the RCPTs and the first BDAT went out before the server's replies. */
function assertPipelined(transcript: TranscriptEvent[]): void {
  const mail = transcript.findIndex((e) => /^> MAIL FROM:|^MAIL FROM:/.test(e.line));
  assert.ok(mail >= 0, "no MAIL FROM in the transcript");
  const nextServer = transcript.findIndex((e, i) => i > mail && e.direction === "server");
  const rcpt = transcript.findIndex((e, i) => i > mail && /RCPT TO:/.test(e.line));
  assert.ok(rcpt > mail && rcpt < nextServer, "RCPT TO was not sent before MAIL's reply");
}

// --- every security mode ------------------------------------------------------------------------

interop("STARTTLS port: a composed message arrives intact (mailparser)", async () => {
  const mark = token();
  const opts = options("starttls");
  const pdf = randomBytes(20_000);
  const result = await sendMail(opts, {
    from: { name: "Zoë Sender", address: "sender@postie.test" },
    to: [{ name: "Alice", address: "alice@postie.test" }],
    subject: `Grüße aus Tōkyō ${mark}`,
    text: "Hello Alice,\n\nthis went through Postfix. Ünïcödé and a long line: " +
      "x".repeat(300) + "\n.dot\n",
    html: `<p>Hello <b>Alice</b> ✓ ${mark}</p>`,
    attachments: [
      { filename: "report.bin", content: pdf, contentType: "application/octet-stream" },
      { filename: "notes été.txt", content: "plain attachment\n" },
    ],
    headers: { "X-Postie-Mark": mark },
  });
  assert.equal(result.accepted.length, 1);
  assert.equal(result.reply.code, 250);
  assert.match(result.reply.lines.join(" "), /queued as/);

  const mail = await parse(await delivered("alice", mark));
  assert.equal(mail.subject, `Grüße aus Tōkyō ${mark}`);
  assert.deepEqual(mail.from?.value, [{ name: "Zoë Sender", address: "sender@postie.test" }]);
  assert.equal(
    mail.text?.replace(/\n$/, ""),
    "Hello Alice,\n\nthis went through Postfix. " +
      "Ünïcödé and a long line: " + "x".repeat(300) + "\n.dot",
  );
  assert.equal(mail.html, `<p>Hello <b>Alice</b> ✓ ${mark}</p>`);
  assert.equal(mail.headers.get("x-postie-mark"), mark);
  assert.equal(mail.messageId, result.messageId);
  assert.equal(mail.attachments.length, 2);
  assert.equal(mail.attachments[0]!.filename, "report.bin");
  assert.deepEqual(new Uint8Array(mail.attachments[0]!.content), pdf);
  assert.equal(mail.attachments[1]!.filename, "notes été.txt");
  assert.equal(mail.attachments[1]!.content.toString(), "plain attachment\n");
  // Postfix's Received header shows that the message came over TLS.
  assert.match(String(mail.headers.get("received")), /with ESMTPS/);
  const lines = client(opts.transcript);
  assert.ok(lines.includes("STARTTLS"));
  assert.ok(lines.includes("QUIT"));
});

interop("STARTTLS port: AUTH is offered only after TLS, and login works there", async () => {
  const mark = token();
  const opts = options("starttls", { auth: credentials() });
  const result = await sendMail(opts, {
    raw: rawMessage(mark),
    envelope: { from: "sender@postie.test", to: ["alice@postie.test"] },
  });
  assert.equal(result.accepted.length, 1);
  const replies = server(opts.transcript);
  const ehlos = replies.filter((line) => /^250[- ]mail\.postie\.test/.test(line));
  assert.equal(ehlos.length, 2, replies.join("\n"));
  const tlsAt = opts.transcript.findIndex((e) => e.direction === "info" && /^TLS/.test(e.line));
  const authBefore = opts.transcript.slice(0, tlsAt).some((e) => /^250[- ]AUTH/.test(e.line));
  const authAfter = opts.transcript.slice(tlsAt).some((e) => /^250[- ]AUTH/.test(e.line));
  assert.equal(authBefore, false, "Postfix offered AUTH before TLS");
  assert.equal(authAfter, true, "Postfix did not offer AUTH after TLS");
  // The default preference picks the strongest mechanism Dovecot offers.
  assert.ok(client(opts.transcript).some((line) => /^AUTH SCRAM-SHA-256\b/.test(line)));
  const mail = await parse(await delivered("alice", mark));
  assert.match(String(mail.headers.get("received")), /Authenticated sender: alice@postie\.test/);
});

interop("implicit TLS port: SmtpClient sends, NOOP and RSET work, QUIT is answered", async () => {
  const mark = token();
  const opts = options("implicit");
  const smtp = await SmtpClient.connect(opts);
  try {
    assert.ok(smtp.tls, "no TLS details on an implicit TLS connection");
    assert.equal((await smtp.noop()).code, 250);
    await smtp.reset();
    const result = await smtp.send({
      raw: rawMessage(mark),
      envelope: { from: "sender@postie.test", to: ["alice@postie.test"] },
    });
    assert.equal(result.reply.code, 250);
  } finally {
    await smtp.quit();
  }
  assert.equal(smtp.connected, false);
  assert.ok(server(opts.transcript).some((line) => /^221/.test(line)), "no 221 to QUIT");
  assert.equal(client(opts.transcript).includes("STARTTLS"), false);
  const bytes = await delivered("alice", mark);
  const text = new TextDecoder().decode(bytes);
  // Dot lines arrive exactly as written: stuffing on the way out, unstuffing by Postfix.
  assert.match(text, /\n\.a line that starts with a dot\r?\n\.\.and one with two\r?\n/);
  assert.match(text, /with ESMTPS/);
});

interop('STARTTLS port in plain mode (tls: "none"): delivers without TLS', async () => {
  const mark = token();
  const opts = options("starttls", { tls: "none" });
  const result = await sendMail(opts, {
    raw: rawMessage(mark),
    envelope: { from: "sender@postie.test", to: ["alice@postie.test"] },
  });
  assert.equal(result.reply.code, 250);
  assert.equal(client(opts.transcript).includes("STARTTLS"), false);
  const mail = await parse(await delivered("alice", mark));
  const received = String(mail.headers.get("received"));
  assert.match(received, /with ESMTP id/);
  assert.doesNotMatch(received, /ESMTPS/);
});

interop(
  "plain mode with credentials: Postfix hides AUTH without TLS; no login, no MAIL",
  async () => {
    const opts = options("starttls", {
      tls: "none",
      auth: credentials(),
      allowPlaintextAuth: [env.hostname],
    });
    const error = await SmtpClient.connect(opts).then(
      async (smtp) => {
        await smtp.quit();
        return undefined;
      },
      (error: unknown) => error,
    );
    assert.ok(error instanceof SmtpUnsupportedError, `expected SmtpUnsupportedError, got ${error}`);
    assert.equal(error.extension, "AUTH");
    assert.equal(client(opts.transcript).some((line) => /^(AUTH|MAIL)/.test(line)), false);
  },
);

interop("submission port: TLS and AUTH, then delivery", async () => {
  const mark = token();
  const opts = options("submission", { auth: credentials() });
  const result = await sendMail(opts, {
    raw: rawMessage(mark),
    envelope: { from: "alice@postie.test", to: ["bob@postie.test"] },
  });
  assert.equal(result.accepted.length, 1);
  const mail = await parse(await delivered("bob", mark));
  assert.match(String(mail.headers.get("received")), /Authenticated sender: alice@postie\.test/);
  assert.match(String(mail.headers.get("received")), /with ESMTPSA/);
});

interop("submission port: mail without AUTH is refused per recipient", async () => {
  const opts = options("submission");
  await assert.rejects(
    sendMail(opts, {
      raw: rawMessage(token(), "bob@postie.test"),
      envelope: { from: "alice@postie.test", to: ["bob@postie.test"] },
    }),
    (error: unknown) => {
      assert.ok(error instanceof SmtpRecipientsError, String(error));
      assert.equal(error.rejected[0]!.address, "bob@postie.test");
      assert.equal(error.rejected[0]!.reply.code, 554);
      assert.deepEqual(error.rejected[0]!.reply.enhancedStatus, {
        class: 5,
        subject: 7,
        detail: 1,
      });
      return true;
    },
  );
});

// --- SASL mechanisms ------------------------------------------------------------------------------

for (const mechanism of ["SCRAM-SHA-256", "CRAM-MD5", "DIGEST-MD5", "PLAIN", "LOGIN"] as const) {
  interop(`submission port: AUTH ${mechanism} against Dovecot`, async () => {
    const mark = token();
    const opts = options("submission", { auth: credentials([mechanism]) });
    const smtp = await SmtpClient.connect(opts);
    try {
      assert.ok(smtp.capabilities.has("AUTH"));
      await smtp.send({
        raw: rawMessage(mark, "bob@postie.test"),
        envelope: { from: "alice@postie.test", to: ["bob@postie.test"] },
      });
    } finally {
      await smtp.quit();
    }
    const auth = client(opts.transcript).filter((line) => line.startsWith("AUTH "));
    assert.equal(auth.length, 1, client(opts.transcript).join("\n"));
    assert.match(auth[0]!, new RegExp(`^AUTH ${mechanism}\\b`));
    assert.ok(server(opts.transcript).some((line) => /^235/.test(line)), "no 235 reply");
    // The password never shows in the transcript, in clear or in base64.
    const all = opts.transcript.map((e) => e.line).join("\n");
    assert.equal(all.includes(env.password), false);
    assert.equal(all.includes(btoa(`\0${env.user}\0${env.password}`)), false);
    assert.equal(all.includes(btoa(env.password)), false);
    await delivered("bob", mark);
  });
}

interop("a wrong password fails with SmtpAuthError and closes the connection", async () => {
  for (const mechanism of ["SCRAM-SHA-256", "CRAM-MD5", "DIGEST-MD5", "PLAIN", "LOGIN"] as const) {
    const opts = options("submission", {
      auth: { username: env.user, password: "not the password", mechanisms: [mechanism] },
    });
    await assert.rejects(SmtpClient.connect(opts), (error: unknown) => {
      assert.ok(error instanceof SmtpAuthError, `${mechanism}: ${error}`);
      assert.equal(error.code, 535, mechanism);
      assert.equal(error.phase, "auth");
      assert.equal(String(error.message).includes("not the password"), false);
      assert.equal(error.command.includes("not the password"), false);
      return true;
    });
    assert.equal(client(opts.transcript).some((line) => /^MAIL/.test(line)), false);
    assert.equal(opts.transcript.some((e) => e.line.includes("not the password")), false);
  }
});

// --- extensions -------------------------------------------------------------------------------------

interop("PIPELINING and CHUNKING: envelope and BDAT in one go, read back intact", async () => {
  const mark = token();
  const opts = options("starttls");
  const smtp = await SmtpClient.connect(opts);
  try {
    for (const extension of ["PIPELINING", "CHUNKING", "8BITMIME", "SMTPUTF8", "DSN", "SIZE"]) {
      assert.ok(smtp.capabilities.has(extension), `Postfix does not offer ${extension}`);
    }
    assert.equal(smtp.capabilities.maxSize, env.messageSizeLimit);
    await smtp.send({
      raw: rawMessage(mark, "alice@postie.test, bob@postie.test"),
      envelope: { from: "sender@postie.test", to: ["alice@postie.test", "bob@postie.test"] },
    });
  } finally {
    await smtp.quit();
  }
  const lines = opts.transcript.map((e) => e.line);
  assert.ok(lines.some((line) => /BDAT \d+ LAST/.test(line)), lines.join("\n"));
  assert.equal(client(opts.transcript).includes("DATA"), false);
  assertPipelined(opts.transcript);
  for (const mailbox of ["alice", "bob"]) {
    const text = new TextDecoder().decode(await delivered(mailbox, mark));
    assert.match(text, /\n\.a line that starts with a dot\r?\n\.\.and one with two\r?\n/);
  }
});

interop("PIPELINING with DATA when chunking is off: dot-stuffing survives Postfix", async () => {
  const mark = token();
  const opts = options("starttls", { chunking: false });
  const body = ".\r\n..\r\n.x\r\nend";
  await sendMail(opts, {
    raw: rawMessage(mark, "alice@postie.test", "X-Body: dots\r\n").replace(
      "Hello from postie.\r\n",
      `${body}\r\n`,
    ),
    envelope: { from: "sender@postie.test", to: ["alice@postie.test"] },
  });
  assert.ok(client(opts.transcript).includes("DATA"));
  assertPipelined(opts.transcript);
  const mail = await parse(await delivered("alice", mark));
  assert.ok(String(mail.text).startsWith(".\n..\n.x\nend\n"), JSON.stringify(mail.text));
});

interop("a large message goes out in several BDAT chunks and arrives byte for byte", async () => {
  const mark = token();
  const opts = options("starttls");
  const attachment = randomBytes(600_000);
  const result = await sendMail(opts, {
    from: "sender@postie.test",
    to: "alice@postie.test",
    subject: `big ${mark}`,
    text: "see attachment",
    attachments: [{ filename: "random.bin", content: attachment }],
  });
  assert.equal(result.reply.code, 250);
  const bdats = opts.transcript.filter((e) => /BDAT \d+/.test(e.line));
  assert.ok(bdats.length >= 2, bdats.map((e) => e.line).join("\n"));
  const mail = await parse(await delivered("alice", mark));
  assert.deepEqual(new Uint8Array(mail.attachments[0]!.content), attachment);
});

interop("several queued sends on one connection are all delivered", async () => {
  const marks = Array.from({ length: 5 }, token);
  const smtp = await SmtpClient.connect(options("implicit"));
  try {
    const results = await Promise.all(marks.map((mark) =>
      smtp.send({
        raw: rawMessage(mark),
        envelope: { from: "sender@postie.test", to: ["alice@postie.test"] },
      })
    ));
    assert.deepEqual(results.map((r) => r.reply.code), [250, 250, 250, 250, 250]);
    // Each send got its own queue id.
    assert.equal(new Set(results.map((r) => r.reply.lines.join(" "))).size, 5);
  } finally {
    await smtp.quit();
  }
  for (const mark of marks) await delivered("alice", mark);
});

interop("SIZE: a known-size message over the limit is refused before MAIL FROM", async () => {
  const opts = options("starttls");
  const smtp = await SmtpClient.connect(opts);
  try {
    const big = new Uint8Array(env.messageSizeLimit + 1).fill(0x61);
    big.set(new TextEncoder().encode("Subject: too big\r\n\r\n"));
    await assert.rejects(
      smtp.send({ raw: big, envelope: { from: "sender@postie.test", to: ["alice@postie.test"] } }),
      (error: unknown) => error instanceof SmtpUnsupportedError && error.extension === "SIZE",
    );
    assert.equal(client(opts.transcript).some((line) => /^MAIL/.test(line)), false);
    assert.equal(smtp.connected, true);
  } finally {
    await smtp.quit();
  }
});

interop("SIZE: Postfix refuses a streamed message over the limit; the client goes on", async () => {
  const mark = token();
  const opts = options("starttls");
  const smtp = await SmtpClient.connect(opts);
  try {
    let sent = 0;
    const line = new TextEncoder().encode("y".repeat(998) + "\r\n");
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(`Subject: too big ${mark}\r\n\r\n`));
      },
      pull(controller) {
        if (sent++ >= 1500) return controller.close();
        controller.enqueue(line);
      },
    });
    await assert.rejects(
      smtp.send({ raw: body, envelope: { from: "sender@postie.test", to: ["alice@postie.test"] } }),
      (error: unknown) => {
        assert.ok(error instanceof SmtpReplyError, String(error));
        assert.equal(error.code, 552);
        assert.deepEqual(error.reply.enhancedStatus, { class: 5, subject: 3, detail: 4 });
        assert.equal(error.phase, "data");
        return true;
      },
    );
    // The same connection still delivers the next message.
    const next = token();
    await smtp.send({
      raw: rawMessage(next),
      envelope: { from: "sender@postie.test", to: ["alice@postie.test"] },
    });
    await delivered("alice", next);
  } finally {
    await smtp.quit();
  }
  assert.equal(await countDelivered("alice", `too big ${mark}`), 0);
});

interop("SMTPUTF8: an internationalised recipient and sender are delivered", async () => {
  const mark = token();
  const opts = options("starttls");
  const result = await sendMail(opts, {
    from: "zoë@postie.test",
    to: "josé@postie.test",
    subject: `utf8 ${mark}`,
    text: "Hola José",
  });
  assert.deepEqual(result.accepted.map((r) => r.address), ["josé@postie.test"]);
  const mail = client(opts.transcript).find((line) => line.startsWith("MAIL FROM:"));
  assert.match(mail ?? "", /^MAIL FROM:<zoë@postie\.test>.* SMTPUTF8/);
  const parsed = await parse(await delivered("jose", mark));
  assert.equal(parsed.text?.trim(), "Hola José");
  assert.equal(
    (parsed.headers.get("delivered-to") as { text?: string } | undefined)?.text,
    "josé@postie.test",
  );
  assert.equal(parsed.from?.value[0]?.address, "zoë@postie.test");
});

interop("8BITMIME: UTF-8 text goes as 8bit with BODY=8BITMIME and arrives intact", async () => {
  const mark = token();
  const opts = options("implicit");
  const text = `Ça marche très bien — 日本語のテキスト ${mark}\n`.repeat(3);
  await sendMail(opts, {
    from: "sender@postie.test",
    to: "alice@postie.test",
    subject: mark,
    text,
  });
  const mail = client(opts.transcript).find((line) => line.startsWith("MAIL FROM:"));
  assert.match(mail ?? "", /BODY=8BITMIME/);
  const parsed = await parse(await delivered("alice", mark));
  assert.equal(parsed.text, text);
});

interop("a rejected recipient is reported per recipient; the others get the message", async () => {
  const mark = token();
  const opts = options("starttls");
  const result = await sendMail(opts, {
    raw: rawMessage(mark),
    envelope: {
      from: "sender@postie.test",
      to: ["alice@postie.test", "nobody@postie.test", "bob@postie.test"],
    },
  });
  assert.deepEqual(result.accepted.map((r) => r.address), ["alice@postie.test", "bob@postie.test"]);
  assert.equal(result.rejected.length, 1);
  const [rejected] = result.rejected;
  assert.equal(rejected!.address, "nobody@postie.test");
  assert.equal(rejected!.reply.code, 550);
  assert.deepEqual(rejected!.reply.enhancedStatus, { class: 5, subject: 1, detail: 1 });
  assert.match(rejected!.reply.lines.join(" "), /User unknown/);
  await delivered("alice", mark);
  await delivered("bob", mark);
});

interop("every recipient unknown: SmtpRecipientsError and nothing is queued", async () => {
  const opts = options("starttls");
  await assert.rejects(
    sendMail(opts, {
      raw: rawMessage(token()),
      envelope: { from: "sender@postie.test", to: ["nobody@postie.test", "ghost@postie.test"] },
    }),
    (error: unknown) =>
      error instanceof SmtpRecipientsError && error.rejected.length === 2 &&
      error.accepted.length === 0,
  );
  assert.equal(
    opts.transcript.some((e) => /^250[- ]2\.0\.0 Ok: queued/.test(e.line)),
    false,
  );
});

interop("DSN: NOTIFY=SUCCESS and ENVID produce a delivery report for the sender", async () => {
  const mark = token();
  const envid = `postie-${mark}`;
  const opts = options("starttls");
  await sendMail(opts, {
    raw: rawMessage(mark),
    envelope: { from: "sender@postie.test", to: ["alice@postie.test"] },
  }, { dsn: { notify: ["SUCCESS", "FAILURE"], ret: "HDRS", envid, orcpt: true } });
  const mail = client(opts.transcript).find((line) => line.startsWith("MAIL FROM:"));
  assert.match(mail ?? "", /RET=HDRS/);
  assert.match(mail ?? "", new RegExp(`ENVID=${envid}`));
  const rcpt = client(opts.transcript).find((line) => line.startsWith("RCPT TO:"));
  assert.match(rcpt ?? "", /NOTIFY=SUCCESS,FAILURE/);
  assert.match(rcpt ?? "", /ORCPT=rfc822;alice@postie\.test/);
  await delivered("alice", mark);
  const report = new TextDecoder().decode(await delivered("sender", envid));
  assert.match(report, /multipart\/report; report-type=delivery-status/);
  assert.match(report, new RegExp(`Original-Envelope-Id: ${envid}`));
  assert.match(report, /Action: delivered/);
  assert.match(report, /Original-Recipient: rfc822; ?alice@postie\.test/);
});

// --- recipient limits -----------------------------------------------------------------------------

const lists = Array.from({ length: 12 }, (_, i) => `list${String(i + 1).padStart(2, "0")}`);

interop(
  "recipient limit: one message to 12 recipients, 5 per transaction, one copy each",
  async () => {
    const mark = token();
    const opts = options("starttls");
    const file = await Deno.makeTempFile({ prefix: "postie-interop-" });
    try {
      // Over 256 KiB with the file: streamed, so composed again, byte for byte, per transaction.
      await Deno.writeFile(file, randomBytes(300 * 1024));
      const to = lists.map((name) => `${name}@${env.domain}`);
      const result = await sendMail(opts, {
        from: "sender@postie.test",
        to: to.slice(0, 6),
        bcc: to.slice(6),
        subject: `many ${mark}`,
        text: `One message for twelve. ${mark}`,
        attachments: [{ filename: "data.bin", content: { path: file } }],
      });
      assert.deepEqual(result.accepted.map((r) => r.address), to);
      assert.deepEqual(result.rejected, []);
      assert.match(result.reply.lines.join(" "), /queued as/);
      // Three transactions on one connection: Postfix deferred the rest twice.
      const commands = client(opts.transcript);
      assert.equal(commands.filter((line) => line.startsWith("MAIL FROM:")).length, 3);
      assert.equal(commands.filter((line) => line.startsWith("RCPT TO:")).length, 12 + 7 + 2);
      const deferrals = server(opts.transcript).filter((line) => /^452 4\.5\.3 /.test(line));
      assert.equal(deferrals.length, 7 + 2);

      const copies = await Promise.all(lists.map((name) => delivered(name, mark)));
      const texts = copies.map((bytes) => new TextDecoder().decode(bytes));
      // What postie sent starts at its From header (Postfix puts its own fields above it).
      const sent = texts.map((text) => text.slice(text.indexOf("\nFrom: ") + 1));
      for (const text of sent) assert.equal(text, sent[0]);
      const mail = await parse(copies[0]!);
      assert.equal(mail.messageId, result.messageId);
      assert.deepEqual(
        new Uint8Array(mail.attachments[0]!.content),
        await Deno.readFile(file),
      );
      // Exactly one copy each, also a moment later.
      await new Promise((resolve) => setTimeout(resolve, 300));
      for (const name of lists) assert.equal(await countDelivered(name, mark), 1, name);
    } finally {
      await Deno.remove(file);
    }
  },
);

interop("recipient limit: a caller's stream goes once; Postfix's 452 is the refusal", async () => {
  const mark = token();
  const opts = options("starttls");
  const to = lists.slice(0, 7).map((name) => `${name}@${env.domain}`);
  const bytes = new TextEncoder().encode(rawMessage(mark, to.join(", ")));
  const result = await sendMail(opts, {
    raw: new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes);
        controller.close();
      },
    }),
    envelope: { from: "sender@postie.test", to },
  });
  assert.deepEqual(result.accepted.map((r) => r.address), to.slice(0, 5));
  assert.deepEqual(result.rejected.map((r) => r.address), to.slice(5));
  for (const { reply } of result.rejected) {
    assert.equal(reply.code, 452);
    assert.deepEqual(reply.enhancedStatus, { class: 4, subject: 5, detail: 3 });
    assert.match(reply.lines.join(" "), /too many recipients/);
  }
  for (const name of lists.slice(0, 5)) await delivered(name, mark);
  assert.equal(client(opts.transcript).filter((line) => line.startsWith("MAIL FROM:")).length, 1);
});

// --- header fidelity (issue 21) ------------------------------------------------------------------

/** The number of generated messages sent through Postfix, besides the named cases. */
const FIDELITY_GENERATED = Number(Deno.env.get("POSTIE_INTEROP_FIDELITY_RUNS") ?? "100");

/** Waits until `count` messages marked `mark` are in `mailbox`; returns them by index. */
async function deliveredBatch(
  mailbox: string,
  mark: string,
  count: number,
  timeoutMs = 60_000,
): Promise<Map<number, Uint8Array>> {
  const folder = `${env.maildir}/${mailbox}/new`;
  const found = new Map<number, Uint8Array>();
  const seen = new Set<string>();
  const pattern = new RegExp(`^Message-ID: <${mark}\\.(\\d+)@`, "im");
  const deadline = Date.now() + timeoutMs;
  while (found.size < count) {
    for await (const entry of Deno.readDir(folder)) {
      if (seen.has(entry.name)) continue;
      seen.add(entry.name);
      const bytes = await Deno.readFile(`${folder}/${entry.name}`);
      const match = pattern.exec(new TextDecoder().decode(bytes));
      if (match) found.set(Number(match[1]), bytes);
    }
    if (found.size >= count) break;
    if (Date.now() > deadline) {
      throw new Error(`Only ${found.size} of ${count} messages marked ${mark} arrived`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return found;
}

interop(
  "header fidelity: named and generated values arrive exactly through Postfix (mailparser and Python)",
  async () => {
    const mark = token();
    const seed = Date.now() ^ (Math.random() * 2 ** 31);
    const items: [string, Case][] = [
      ...NAMED_CASES.map(([name, fields]): [string, Case] => [name, caseOf(fields)]),
      ...fc.sample(generatedCase, { numRuns: FIDELITY_GENERATED, seed }).map(
        (item, i): [string, Case] => [`generated case ${i} (seed ${seed})`, item],
      ),
    ];
    const smtp = await SmtpClient.connect(options("implicit"));
    try {
      const results = await Promise.all(
        items.map(([, item], i) =>
          smtp.send({ ...messageOf(item), messageId: `${mark}.${i}@client.postie.test` }, {
            envelope: { from: "sender@postie.test", to: ["alice@postie.test"] },
          })
        ),
      );
      assert.ok(results.every((r) => r.reply.code === 250));
    } finally {
      await smtp.quit();
    }
    const messages = await deliveredBatch("alice", mark, items.length);
    const python = PythonEmail.start();
    if ("reason" in python) console.log(`PYTHON CHECK SKIPPED (mailparser only): ${python.reason}`);
    const failures: string[] = [];
    try {
      for (const [i, [name, item]] of items.entries()) {
        const bytes = messages.get(i)!;
        const problems = await compareMailparser(item, bytes);
        if (!("reason" in python)) {
          for (const p of comparePython(item, await python.parse(bytes))) problems.push(p);
        }
        if (problems.length > 0) {
          failures.push(`${name}: ${JSON.stringify(problems)}\n${new TextDecoder().decode(bytes)}`);
        }
      }
    } finally {
      if (!("reason" in python)) await python.close();
    }
    assert.deepEqual(failures, []);
  },
);
