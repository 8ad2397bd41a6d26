/**
 * The SMTP AUTH exchange (RFC 4954): choose a mechanism, send `AUTH`, answer challenges, check
 * the server's proof, and turn every failure into an error that carries no secret.
 *
 * @module
 */

import { SmtpAuthError, SmtpProtocolError, SmtpUnsupportedError } from "../errors.ts";
import type { SmtpReply } from "../types.ts";
import { assertString, fromBase64, printable, successData, text, toBase64 } from "./_codec.ts";
import { authHint } from "./_hints.ts";
import { cramMd5 } from "./cram_md5.ts";
import { digestMd5 } from "./digest_md5.ts";
import { login } from "./login.ts";
import { oauthBearer } from "./oauthbearer.ts";
import { plain } from "./plain.ts";
import { scramSha256 } from "./scram_sha_256.ts";
import type {
  AuthContext,
  AuthConversation,
  AuthOptions,
  PasswordMechanism,
  SaslMechanism,
  TokenAuth,
} from "./types.ts";
import { xoauth2 } from "./xoauth2.ts";

/**
 * The password mechanisms tried when the caller names none, strongest first. DIGEST-MD5 is
 * obsolete (RFC 6331) and used only when the caller names it.
 */
export const DEFAULT_PASSWORD_MECHANISMS: readonly PasswordMechanism[] = Object.freeze([
  "SCRAM-SHA-256",
  "CRAM-MD5",
  "PLAIN",
  "LOGIN",
]);

const PASSWORD_MECHANISMS: readonly string[] = [...DEFAULT_PASSWORD_MECHANISMS, "DIGEST-MD5"];

/** A server may send at most this many challenges in one exchange before the client gives up. */
export const MAX_CHALLENGES = 10;

/** RFC 4422 section 3.1: 1 to 20 characters of upper-case letters, digits, `-` and `_`. */
const MECHANISM_NAME = /^[A-Z0-9_-]{1,20}$/;

/** Failures after which a fresh OAuth2 token may help: the server refused the token itself. */
const tokenRefusals = new WeakSet<SmtpAuthError>();

/**
 * Authenticates over `conversation` and resolves with the server's `235` reply.
 *
 * Which mechanism:
 * - `{ sasl }`: that mechanism, when the server offers it.
 * - `{ username, password }`: the first of `mechanisms` (default SCRAM-SHA-256, CRAM-MD5, PLAIN,
 *   LOGIN) that the server offers. DIGEST-MD5 only when named.
 * - `{ username, token }`: XOAUTH2, or OAUTHBEARER when named or when the server offers only
 *   that. A token function is called with `{ refresh: false }`; when the server refuses that
 *   token (535, or a 5xx after an error challenge) it is called once with `{ refresh: true }`
 *   and the exchange runs once more. Never more.
 *
 * The exchange: `AUTH <name> <initial response>` (base64; `=` when empty) or `AUTH <name>`,
 * then one base64 response per `334` challenge, at most {@linkcode MAX_CHALLENGES}. Lines that
 * carry credentials are sent with `secret: true`. A mechanism that fails on the client side
 * (e.g. a wrong SCRAM nonce) cancels with `*` before the error is thrown. After `235` the
 * mechanism's `verify` checks the server's proof.
 *
 * @param conversation Sends a line and resolves with the server's reply.
 * @param auth The credentials, or a mechanism.
 * @param context What the server offered and where it is.
 * @returns The server's `235` reply.
 * @throws {SmtpAuthError} When the server refuses (its reply, and the command as `AUTH <name>`
 *   only), the mechanism fails on the client side (the reply to `*`), the server sends too
 *   many challenges, or the server's proof is wrong (the `235` reply). The message never holds
 *   a credential; it names a provider's fix for known Gmail and Office 365 refusals.
 * @throws {SmtpUnsupportedError} With `extension` `"AUTH"` when the server offers no mechanism
 *   the client may use; the message lists what it offers. Nothing was sent then.
 * @throws {SmtpProtocolError} When a challenge is not base64 (after cancelling with `*`).
 * @throws {TypeError} For bad credentials or mechanism names, before anything is sent.
 *
 * @example PLAIN with an initial response
 * ```ts
 * import { authenticate } from "@postie/smtp";
 * import assert from "node:assert/strict";
 *
 * const sent: string[] = [];
 * const reply = await authenticate(
 *   {
 *     exchange(line, options) {
 *       sent.push(options?.secret ? `${line} (secret)` : line);
 *       return Promise.resolve({ code: 235, lines: ["Authentication successful"] });
 *     },
 *   },
 *   { username: "me", password: "secret" },
 *   { offered: ["PLAIN", "LOGIN"], hostname: "mx.example", port: 587 },
 * );
 * assert.equal(reply.code, 235);
 * assert.deepEqual(sent, ["AUTH PLAIN AG1lAHNlY3JldA== (secret)"]);
 * ```
 */
export async function authenticate(
  conversation: AuthConversation,
  auth: AuthOptions,
  context: AuthContext,
): Promise<SmtpReply> {
  if (typeof auth !== "object" || auth === null) {
    throw new TypeError("Invalid auth: must be an object");
  }
  const offered = context.offered.map((m) => m.toUpperCase());
  if ("sasl" in auth) {
    const mechanism = auth.sasl;
    if (typeof mechanism?.name !== "string" || !MECHANISM_NAME.test(mechanism.name)) {
      throw new TypeError(
        "Invalid sasl mechanism: its name must be 1 to 20 of A-Z, 0-9, '-' and '_'",
      );
    }
    if (!offered.includes(mechanism.name)) throw unsupported(offered, [mechanism.name]);
    return await run(conversation, mechanism, context);
  }
  if ("password" in auth) {
    assertString(auth.username, "username");
    assertString(auth.password, "password");
    const wanted = auth.mechanisms ?? DEFAULT_PASSWORD_MECHANISMS;
    if (wanted.length === 0) throw new TypeError("Invalid mechanisms: must not be empty");
    for (const name of wanted) {
      if (!PASSWORD_MECHANISMS.includes(name)) {
        throw new TypeError(
          `Invalid mechanisms: unknown password mechanism ${JSON.stringify(name)}, expected ` +
            PASSWORD_MECHANISMS.join(", "),
        );
      }
    }
    const name = wanted.find((m) => offered.includes(m));
    if (!name) throw unsupported(offered, wanted);
    const mechanism = passwordMechanism(name, auth.username, auth.password, context);
    return await run(conversation, mechanism, context);
  }
  if ("token" in auth) return await withToken(conversation, auth, offered, context);
  throw new TypeError(
    "Invalid auth: expected { username, password }, { username, token } or { sasl }",
  );
}

function passwordMechanism(
  name: PasswordMechanism,
  username: string,
  password: string,
  context: AuthContext,
): SaslMechanism {
  switch (name) {
    case "SCRAM-SHA-256":
      return scramSha256(username, password);
    case "CRAM-MD5":
      return cramMd5(username, password);
    case "PLAIN":
      return plain(username, password);
    case "LOGIN":
      return login(username, password);
    case "DIGEST-MD5":
      return digestMd5(username, password, context.hostname);
  }
}

/** XOAUTH2 or OAUTHBEARER, with one refresh of a token function's token. */
async function withToken(
  conversation: AuthConversation,
  auth: TokenAuth,
  offered: readonly string[],
  context: AuthContext,
): Promise<SmtpReply> {
  assertString(auth.username, "username");
  if (
    auth.mechanism !== undefined && auth.mechanism !== "XOAUTH2" && auth.mechanism !== "OAUTHBEARER"
  ) {
    throw new TypeError(
      `Invalid mechanism: ${JSON.stringify(auth.mechanism)}, expected XOAUTH2 or OAUTHBEARER`,
    );
  }
  if (typeof auth.token !== "string" && typeof auth.token !== "function") {
    throw new TypeError("Invalid token: must be a string or a function that returns one");
  }
  const name = auth.mechanism ??
    (!offered.includes("XOAUTH2") && offered.includes("OAUTHBEARER") ? "OAUTHBEARER" : "XOAUTH2");
  if (!offered.includes(name)) throw unsupported(offered, [name]);
  const provider = typeof auth.token === "function" ? auth.token : undefined;
  const token = async (refresh: boolean): Promise<string> => {
    if (!provider) return auth.token as string;
    const value = await provider(
      context.signal ? { refresh, signal: context.signal } : { refresh },
    );
    if (typeof value !== "string" || value === "") {
      throw new TypeError("Invalid token: the token function must resolve with a non-empty string");
    }
    return value;
  };
  const mechanism = (value: string): SaslMechanism =>
    name === "XOAUTH2"
      ? xoauth2(auth.username, value)
      : oauthBearer(auth.username, value, context.hostname, context.port);
  try {
    return await run(conversation, mechanism(await token(false)), context);
  } catch (error) {
    // A refused token may just have expired: ask the provider for a fresh one, once.
    if (!provider || !(error instanceof SmtpAuthError) || !tokenRefusals.has(error)) throw error;
    return await run(conversation, mechanism(await token(true)), context);
  }
}

function unsupported(offered: readonly string[], wanted: readonly string[]): SmtpUnsupportedError {
  const digest = offered.includes("DIGEST-MD5") && !wanted.includes("DIGEST-MD5") &&
      wanted.some((m) => PASSWORD_MECHANISMS.includes(m))
    ? " (DIGEST-MD5 is used only when named in mechanisms)"
    : "";
  return new SmtpUnsupportedError(
    `No usable authentication mechanism: the server offers ${offered.join(", ") || "none"}, ` +
      `the client would use ${wanted.join(", ")}${digest}`,
    "auth",
    "AUTH",
  );
}

/** Runs one SASL exchange. */
async function run(
  conversation: AuthConversation,
  mechanism: SaslMechanism,
  context: AuthContext,
): Promise<SmtpReply> {
  const name = mechanism.name;
  const command = `AUTH ${name}`;
  const send = (line: string, secret: boolean): Promise<SmtpReply> => {
    context.signal?.throwIfAborted();
    return conversation.exchange(line, secret ? { secret: true } : undefined);
  };
  const fail = (message: string, reply: SmtpReply, details: string[], cause?: unknown) => {
    const error = new SmtpAuthError(
      message,
      command,
      reply,
      cause === undefined ? undefined : { cause },
    );
    const hint = authHint(reply, context.hostname);
    if (hint) details.push(`hint: ${hint}`);
    if (details.length > 0) error.message += ` (${details.join("; ")})`;
    return error;
  };
  /** Cancels the exchange with `*` and returns the error to throw. */
  const cancel = async (message: string, cause?: unknown): Promise<SmtpAuthError> =>
    fail(message, await send("*", false), [], cause);

  const initial = await mechanism.start();
  let pending: Uint8Array | undefined;
  let reply: SmtpReply;
  if (initial === null) {
    reply = await send(command, false);
  } else if (context.initialResponse ?? true) {
    reply = await send(
      `${command} ${initial.length === 0 ? "=" : toBase64(initial)}`,
      initial.length > 0,
    );
  } else {
    // No SASL-IR: the initial response answers the server's first (empty) challenge.
    pending = initial;
    reply = await send(command, false);
  }

  let challenges = 0;
  let lastChallenge: Uint8Array | undefined;
  while (reply.code === 334) {
    if (++challenges > MAX_CHALLENGES) {
      throw await cancel(`${name} failed: the server sent more than ${MAX_CHALLENGES} challenges`);
    }
    let challenge: Uint8Array;
    try {
      challenge = fromBase64(reply.lines.join(""));
    } catch (error) {
      await send("*", false);
      throw new SmtpProtocolError(`${name} failed: the server's challenge is not base64`, "auth", {
        cause: error,
      });
    }
    let response: Uint8Array;
    if (pending) {
      response = pending;
      pending = undefined;
    } else {
      try {
        response = await mechanism.next(challenge);
      } catch (error) {
        throw await cancel(`${name} failed on the client side: ${messageOf(error, name)}`, error);
      }
    }
    lastChallenge = challenge;
    reply = await send(toBase64(response), true);
  }

  if (reply.code !== 235) {
    // XOAUTH2 and OAUTHBEARER explain a refusal in a JSON challenge: worth showing.
    const details =
      challenges > 0 && lastChallenge && (name === "XOAUTH2" || name === "OAUTHBEARER")
        ? [`server said ${printable(text(lastChallenge))}`]
        : [];
    const error = fail(`Authentication with ${name} failed`, reply, details);
    if (reply.code === 535 || (challenges > 0 && reply.code >= 500 && reply.code < 600)) {
      tokenRefusals.add(error);
    }
    throw error;
  }
  if (mechanism.verify) {
    const data = successData(reply.lines.join("")) ?? lastChallenge ?? new Uint8Array();
    try {
      await mechanism.verify(data);
    } catch (error) {
      throw fail(
        `${name} failed: the server's proof did not verify: ${messageOf(error, name)}`,
        reply,
        [],
        error,
      );
    }
  }
  return reply;
}

/** The message of a mechanism's error, without the `NAME: ` prefix postie's mechanisms add. */
function messageOf(error: unknown, name: string): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.startsWith(`${name}: `) ? message.slice(name.length + 2) : message;
}
