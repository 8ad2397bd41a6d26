/**
 * The SASL interface shared by every authentication mechanism, and the authentication options.
 *
 * @module
 */

import type { SmtpReply } from "../types.ts";

/**
 * One SASL mechanism (RFC 4422) as a client: an optional initial response, then one response
 * per server challenge. Implement it to add a mechanism the library lacks.
 *
 * @example A custom mechanism
 * ```ts
 * import type { SaslMechanism } from "@postie/smtp";
 *
 * const external: SaslMechanism = {
 *   name: "EXTERNAL",
 *   start: () => Promise.resolve(new Uint8Array()),
 *   next: () => Promise.reject(new Error("EXTERNAL expects no challenge")),
 * };
 * ```
 */
export interface SaslMechanism {
  /** The registered mechanism name, upper case, e.g. `PLAIN`. */
  readonly name: string;
  /**
   * The initial response, or `null` when the mechanism waits for the server's first challenge.
   * An empty array is a present but empty initial response (sent as `=`).
   */
  start(): Promise<Uint8Array | null>;
  /**
   * Answers one server challenge (already base64-decoded). Rejects when the challenge is wrong
   * (e.g. a SCRAM nonce that does not extend the client's); the exchange is then cancelled
   * with `*`.
   */
  next(challenge: Uint8Array): Promise<Uint8Array>;
  /**
   * Called after the server's `235` success reply, to check the server's own proof (the SCRAM
   * server signature, the DIGEST-MD5 `rspauth`). `success` is the data of the `235` reply when
   * its text is base64 of printable text (RFC 4422 "additional data with success"), else the
   * last `334` challenge (already answered with `next`), else empty. Rejects when the proof is
   * missing or wrong: the login then fails with an `SmtpAuthError` and the caller must not trust
   * the connection.
   */
  verify?(success: Uint8Array): Promise<void>;
}

/** The password mechanisms postie implements, strongest first. */
export type PasswordMechanism = "SCRAM-SHA-256" | "CRAM-MD5" | "PLAIN" | "LOGIN" | "DIGEST-MD5";

/**
 * Returns an OAuth2 access token. It is called with `refresh: false` before each login, and at
 * most once more with `refresh: true` when the server refused that token (a 535, or a 5xx after
 * XOAUTH2's or OAUTHBEARER's error challenge): fetch a new token then instead of a cached one.
 * A rejection is passed on to the caller unchanged.
 */
export type AccessTokenProvider = (
  request: { readonly refresh: boolean; readonly signal?: AbortSignal },
) => Promise<string>;

/** Log in with a user name and password. */
export interface PasswordAuth {
  /** The user name. */
  readonly username: string;
  /** The password. It never appears in transcripts, errors or logs. */
  readonly password: string;
  /**
   * The mechanisms to consider, in order of preference.
   * @default {["SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN"]} (DIGEST-MD5 only when named)
   */
  readonly mechanisms?: readonly PasswordMechanism[];
}

/** Log in with an OAuth2 access token (Gmail, Office 365). */
export interface TokenAuth {
  /** The user (mailbox) name. */
  readonly username: string;
  /** The access token, or a function that returns a fresh one. */
  readonly token: string | AccessTokenProvider;
  /**
   * The mechanism to use.
   * @default {"XOAUTH2"} or OAUTHBEARER when the server offers only that
   */
  readonly mechanism?: "XOAUTH2" | "OAUTHBEARER";
}

/** Log in with a caller-supplied SASL mechanism. */
export interface SaslAuth {
  /** The mechanism; the server must offer its name. */
  readonly sasl: SaslMechanism;
}

/** How to authenticate. */
export type AuthOptions = PasswordAuth | TokenAuth | SaslAuth;

/** The channel an authentication exchange runs over: one line out, one reply back. */
export interface AuthConversation {
  /**
   * Sends one command line (without CRLF) and resolves with the server's reply, whatever its
   * code. A `secret` line is redacted in transcripts and never appears in errors. Rejects only
   * when the connection fails (timeout, abort, closed); `authenticate` passes that on as is.
   */
  exchange(line: string, options?: { readonly secret?: boolean }): Promise<SmtpReply>;
}

/** What the authentication step knows about the session. */
export interface AuthContext {
  /** The mechanisms the server offered in its EHLO reply (compared case-insensitively). */
  readonly offered: readonly string[];
  /**
   * Whether to send the initial response on the `AUTH` line (RFC 4954 allows it for every
   * server). When false, `AUTH <name>` goes alone and the initial response answers the server's
   * empty `334` challenge.
   * @default {true}
   */
  readonly initialResponse?: boolean;
  /** The host name the client connected to (for DIGEST-MD5's digest-uri and OAUTHBEARER). */
  readonly hostname: string;
  /** The port the client connected to (OAUTHBEARER). */
  readonly port: number;
  /** Aborts the exchange: checked before every line and passed to a token function. */
  readonly signal?: AbortSignal;
}
