import assert from "node:assert/strict";
import { test } from "../_helpers/test.ts";
import { parseAttach, parseCommandLine, parseServer } from "../../src/cli/_args.ts";
import {
  EXIT_AUTH,
  EXIT_DATA,
  EXIT_INTERNAL,
  EXIT_INTERRUPTED,
  EXIT_NO_INPUT,
  EXIT_PROTOCOL,
  EXIT_REJECTED,
  EXIT_TEMPORARY,
  EXIT_TLS,
  EXIT_UNAVAILABLE,
  EXIT_USAGE,
  exitCodeFor,
  UsageError,
} from "../../src/cli/exit_codes.ts";
import {
  SmtpAuthError,
  SmtpConnectionError,
  SmtpProtocolError,
  SmtpRecipientsError,
  SmtpReplyError,
  SmtpTimeoutError,
  SmtpTlsError,
  SmtpUnsupportedError,
} from "../../mod.ts";

test("parseServer() reads host, host:port and bracketed IPv6", () => {
  assert.deepEqual(parseServer("smtp.example.com"), { hostname: "smtp.example.com" });
  assert.deepEqual(parseServer("smtp.example.com:465"), {
    hostname: "smtp.example.com",
    port: 465,
  });
  assert.deepEqual(parseServer("[::1]:2525"), { hostname: "::1", port: 2525 });
  assert.deepEqual(parseServer("[::1]"), { hostname: "::1" });
  assert.deepEqual(parseServer("2001:db8::1"), { hostname: "2001:db8::1" });
  for (const bad of ["", ":25", "host:0", "host:70000", "host:2x", "[::1", "[::1]25", "a b"]) {
    assert.throws(() => parseServer(bad), UsageError, bad);
  }
});

test("parseAttach() reads type, cid and name parameters", () => {
  assert.deepEqual(parseAttach("a.pdf"), { path: "a.pdf" });
  assert.deepEqual(parseAttach("logo.png;cid=logo;type=image/png;name=Logo.png"), {
    path: "logo.png",
    contentId: "logo",
    contentType: "image/png",
    filename: "Logo.png",
  });
  assert.throws(() => parseAttach("a.pdf;size=3"), /unknown parameter "size"/);
  assert.throws(() => parseAttach("a.pdf;cid"), UsageError);
  assert.throws(() => parseAttach(";type=x"), UsageError);
});

test("parseCommandLine() takes the server and user from the environment", () => {
  const config = parseCommandLine(["send", "--to", "a@example.com", "--timeout", "2.5"], {
    POSTIE_SERVER: "mail.example.com:587",
    POSTIE_USER: "me",
  });
  assert.equal(config.command, "send");
  if (config.command !== "send") return;
  assert.deepEqual(config.server, { hostname: "mail.example.com", port: 587 });
  assert.equal(config.user, "me");
  assert.equal(config.timeoutMs, 2500);
  const flag = parseCommandLine(["send", "--server", "other.example"], {
    POSTIE_SERVER: "mail.example.com",
  });
  assert.deepEqual(flag.command === "send" && flag.server, { hostname: "other.example" });
});

test("parseCommandLine() refuses bad values and misplaced options", () => {
  const env = {};
  const bad: [string[], RegExp][] = [
    [["send", "--tls", "ssl"], /Invalid --tls "ssl"/],
    [["send", "--timeout", "0"], /Invalid --timeout "0"/],
    [["send", "--timeout=-1"], /Invalid --timeout "-1"/],
    [["send", "--auth-mechanism", "NTLM"], /Invalid --auth-mechanism "NTLM"/],
    [["send", "--header", "no colon"], /Invalid --header/],
    [["send", "--password", "x"], /Unknown option '--password'/],
    [["check", "--to", "a@example.com"], /--to is an option of send, not of check/],
    [["send", "stray"], /Unexpected argument "stray"/],
    [["mail"], /Unknown command "mail"/],
    [[], /Missing command/],
  ];
  for (const [args, pattern] of bad) {
    assert.throws(() => parseCommandLine(args, env), pattern, args.join(" "));
  }
  assert.deepEqual(parseCommandLine(["--help"], env), { command: "help" });
  assert.deepEqual(parseCommandLine(["check", "-h"], env), { command: "help", topic: "check" });
});

test("exitCodeFor() maps each error class to its documented code", () => {
  const reply = (code: number) => ({ code, lines: ["text"] });
  const recipient = (code: number) => ({ address: "a@example.com", reply: reply(code) });
  const cases: [unknown, number][] = [
    [new UsageError("x"), EXIT_USAGE],
    [new TypeError("Invalid address"), EXIT_DATA],
    [new RangeError("Invalid port"), EXIT_DATA],
    [Object.assign(new Error("gone"), { code: "ENOENT" }), EXIT_NO_INPUT],
    [new SmtpRecipientsError("none", [], [recipient(550)]), EXIT_REJECTED],
    [new SmtpRecipientsError("none", [], [recipient(451), recipient(450)]), EXIT_TEMPORARY],
    [new SmtpRecipientsError("none", [], [recipient(451), recipient(550)]), EXIT_REJECTED],
    [new SmtpReplyError("x", "data", "DATA", reply(554)), EXIT_REJECTED],
    [new SmtpReplyError("x", "mail", "MAIL", reply(452)), EXIT_TEMPORARY],
    [new SmtpReplyError("x", "greeting", "(greeting)", reply(554)), EXIT_UNAVAILABLE],
    [new SmtpReplyError("x", "greeting", "(greeting)", reply(421)), EXIT_TEMPORARY],
    [new SmtpReplyError("x", "starttls", "STARTTLS", reply(501)), EXIT_TLS],
    [new SmtpAuthError("x", "AUTH PLAIN", reply(535)), EXIT_AUTH],
    [new SmtpAuthError("x", "AUTH PLAIN", reply(454)), EXIT_TEMPORARY],
    [new SmtpUnsupportedError("x", "auth", "AUTH"), EXIT_AUTH],
    [new SmtpUnsupportedError("x", "starttls", "STARTTLS"), EXIT_TLS],
    [new SmtpUnsupportedError("x", "mail", "SIZE"), EXIT_UNAVAILABLE],
    [new SmtpTlsError("x"), EXIT_TLS],
    [new SmtpConnectionError("x", "connect"), EXIT_UNAVAILABLE],
    [new SmtpTimeoutError("x", "greeting", 1000), EXIT_UNAVAILABLE],
    [new SmtpProtocolError("x", "greeting"), EXIT_PROTOCOL],
    [new Error("surprise"), EXIT_INTERNAL],
  ];
  for (const [error, code] of cases) {
    assert.equal(exitCodeFor(error), code, String(error));
  }
  assert.equal(exitCodeFor(new SmtpConnectionError("x", "data"), true), EXIT_INTERRUPTED);
});
