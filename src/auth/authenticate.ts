/**
 * The SMTP AUTH exchange (RFC 4954): choose a mechanism, send `AUTH`, answer challenges, and
 * turn every failure into an {@linkcode SmtpAuthError} that carries no secret.
 *
 * @module
 */

import { SmtpAuthError, SmtpProtocolError, SmtpUnsupportedError } from "../errors.ts";
import type { SmtpReply } from "../types.ts";
import { fromBase64, toBase64 } from "./_codec.ts";
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
} from "./types.ts";
import { xoauth2 } from "./xoauth2.ts";

/** Mechanisms tried for a password when the caller names none, strongest first. */
export const DEFAULT_PASSWORD_MECHANISMS: readonly PasswordMechanism[] = [
  "SCRAM-SHA-256",
  "CRAM-MD5",
  "PLAIN",
  "LOGIN",
];

/** A server may send at most this many challenges before the client gives up. */
const MAX_CHALLENGES = 10;

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

function unsupported(offered: readonly string[], wanted: readonly string[]): SmtpUnsupportedError {
  return new SmtpUnsupportedError(
    `No usable authentication mechanism: the server offers ${offered.join(", ") || "none"}, ` +
      `the client can use ${wanted.join(", ")}`,
    "auth",
    "AUTH",
  );
}

/**
 * Authenticates over `conversation`: picks the mechanism (the caller's `sasl`; for passwords
 * the strongest that both sides support; for tokens XOAUTH2 or OAUTHBEARER) and runs it.
 * A token provider is asked once more for a fresh token when the server refuses the first.
 *
 * @param conversation Sends a line and returns the reply.
 * @param auth The credentials.
 * @param context What the server offered and where it is.
 * @returns The server's 235 reply.
 * @throws {SmtpAuthError} When the server refuses, or the mechanism fails on the client side.
 * @throws {SmtpUnsupportedError} When no mechanism can be used.
 *
 * @example
 * ```ts
 * import { authenticate } from "@postie/smtp";
 * import assert from "node:assert/strict";
 *
 * const sent: string[] = [];
 * const reply = await authenticate(
 *   { exchange: (line) => (sent.push(line), Promise.resolve({ code: 235, lines: ["OK"] })) },
 *   { username: "me", password: "secret" },
 *   { offered: ["PLAIN", "LOGIN"], initialResponse: true, hostname: "mx.example", port: 587 },
 * );
 * assert.equal(reply.code, 235);
 * assert.deepEqual(sent, ["AUTH PLAIN AG1lAHNlY3JldA=="]);
 * ```
 */
export async function authenticate(
  conversation: AuthConversation,
  auth: AuthOptions,
  context: AuthContext,
): Promise<SmtpReply> {
  const offered = context.offered.map((m) => m.toUpperCase());
  if ("sasl" in auth) return await run(conversation, auth.sasl);
  if ("password" in auth) {
    const wanted = auth.mechanisms ?? DEFAULT_PASSWORD_MECHANISMS;
    const name = wanted.find((m) => offered.includes(m));
    if (!name) throw unsupported(offered, wanted);
    return await run(
      conversation,
      passwordMechanism(name, auth.username, auth.password, context),
    );
  }
  const name = auth.mechanism ??
    (!offered.includes("XOAUTH2") && offered.includes("OAUTHBEARER") ? "OAUTHBEARER" : "XOAUTH2");
  if (!offered.includes(name)) throw unsupported(offered, [name]);
  const provider = typeof auth.token === "function" ? auth.token : undefined;
  const token = (refresh: boolean) =>
    provider
      ? provider(context.signal ? { refresh, signal: context.signal } : { refresh })
      : Promise.resolve(auth.token as string);
  const mechanism = (value: string) =>
    name === "XOAUTH2"
      ? xoauth2(auth.username, value)
      : oauthBearer(auth.username, value, context.hostname, context.port);
  try {
    return await run(conversation, mechanism(await token(false)));
  } catch (error) {
    // A refused token may just have expired: ask the provider for a fresh one, once.
    if (!provider || !(error instanceof SmtpAuthError) || error.reply.code < 500) throw error;
    return await run(conversation, mechanism(await token(true)));
  }
}

/** Runs one SASL exchange. */
async function run(conversation: AuthConversation, mechanism: SaslMechanism) {
  const command = `AUTH ${mechanism.name}`;
  const fail = (message: string, reply: SmtpReply, cause?: unknown) => {
    const hint = authHint(reply);
    return new SmtpAuthError(
      hint ? `${message} (${hint})` : message,
      command,
      reply,
      cause === undefined ? undefined : { cause },
    );
  };
  const cancel = async (message: string, cause: unknown) => {
    const reply = await conversation.exchange("*");
    return fail(message, reply, cause);
  };

  const initial = await mechanism.start();
  let reply = initial === null ? await conversation.exchange(command) : await conversation.exchange(
    `${command} ${initial.length === 0 ? "=" : toBase64(initial)}`,
    { secret: initial.length > 0 },
  );
  let challenges = 0;
  while (reply.code === 334) {
    if (++challenges > MAX_CHALLENGES) {
      throw await cancel(`${mechanism.name} failed: too many challenges`, undefined);
    }
    let challenge: Uint8Array;
    try {
      challenge = fromBase64(reply.lines.join(""));
    } catch (error) {
      const cancelled = await cancel(`${mechanism.name} failed: malformed challenge`, error);
      throw new SmtpProtocolError(cancelled.message, "auth", { cause: error });
    }
    let response: Uint8Array;
    try {
      response = await mechanism.next(challenge);
    } catch (error) {
      throw await cancel(
        `${mechanism.name} failed on the client side: ${(error as Error).message}`,
        error,
      );
    }
    reply = await conversation.exchange(toBase64(response), { secret: true });
  }
  if (reply.code !== 235) {
    const detail = (mechanism as { error?: string }).error;
    throw fail(
      `Authentication with ${mechanism.name} failed${detail ? ` (server said ${detail})` : ""}`,
      reply,
    );
  }
  if (mechanism.verify) {
    try {
      await mechanism.verify(new Uint8Array());
    } catch (error) {
      throw fail(`${mechanism.name} failed: ${(error as Error).message}`, reply, error);
    }
  }
  return reply;
}
