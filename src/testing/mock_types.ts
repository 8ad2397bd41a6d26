/**
 * What {@linkcode MockSmtpServer} is told and what it records: its options, fault rules, and
 * the messages it accepted.
 *
 * @module
 */

import type { ServerCertificate } from "../transport/listen.ts";
import type { TlsInfo } from "../transport/types.ts";
import type { MessageHeaders } from "./headers.ts";

/** Extensions the mock server announces in its EHLO reply, each on unless turned off. */
export type MockExtension =
  | "PIPELINING"
  | "SIZE"
  | "8BITMIME"
  | "SMTPUTF8"
  | "CHUNKING"
  | "DSN"
  | "ENHANCEDSTATUSCODES"
  | "STARTTLS";

/** A command (or step) that a {@linkcode FaultRule} applies to. */
export type MockCommand =
  | "CONNECT"
  | "EHLO"
  | "HELO"
  | "STARTTLS"
  | "AUTH"
  | "MAIL"
  | "RCPT"
  | "DATA"
  | "BDAT"
  | "MESSAGE"
  | "RSET"
  | "NOOP"
  | "QUIT";

/**
 * Something to do instead of (or before) the normal answer to a command. Rules are tried in
 * order; the first that matches applies.
 *
 * The `command` is a verb, or one of two steps: `CONNECT` (the greeting) and `MESSAGE` (the
 * reply after the message's content: DATA's final dot, or `BDAT ... LAST`). A `BDAT` rule
 * applies to each chunk's reply, after the chunk was read.
 *
 * @example Refuse one recipient, fail the first delivery with a 421
 * ```ts
 * import type { FaultRule } from "@postie/smtp/testing";
 *
 * const faults: FaultRule[] = [
 *   { command: "RCPT", match: "nobody@example.com", reply: "550 5.1.1 No such user" },
 *   { command: "MESSAGE", reply: "421 4.3.0 Try again later", times: 1 },
 * ];
 * ```
 */
export interface FaultRule {
  /** Which command or step. */
  readonly command: MockCommand;
  /**
   * Only when this matches: for `MAIL` and `RCPT` the address (a string compares without
   * regard to case), for `MESSAGE` the message as text, for other commands the text after the
   * verb. Absent: always.
   */
  readonly match?: string | RegExp;
  /**
   * The reply to send instead of the normal one, e.g. `"550 5.1.1 No such user"`; several
   * lines separated by `\n`. The command is not carried out (a BDAT chunk is still read). After
   * a 421 the server closes the connection.
   */
  readonly reply?: string;
  /** Wait this long first (then reply, drop, or go on as usual). */
  readonly delayMs?: number;
  /** Close the connection without a reply (after the delay, if any). */
  readonly drop?: boolean;
  /**
   * How many times the rule applies, over all connections; then it is spent.
   * @default {Infinity}
   */
  readonly times?: number;
}

/** Options of {@linkcode MockSmtpServer}. */
export interface MockSmtpServerOptions {
  /**
   * The name in the greeting and EHLO reply.
   * @default {"mock.postie.test"}
   */
  readonly hostname?: string;
  /**
   * Accounts for AUTH PLAIN and LOGIN: user name to password. AUTH is announced only when
   * there is at least one.
   * @default {{}}
   */
  readonly users?: Readonly<Record<string, string>>;
  /**
   * Whether MAIL needs a login first (530 otherwise).
   * @default {true when `users` has an account}
   */
  readonly requireAuth?: boolean;
  /**
   * Whether MAIL and AUTH need TLS first (530 otherwise).
   * @default {false}
   */
  readonly requireTls?: boolean;
  /**
   * Extensions to leave out of the EHLO reply (`false`). STARTTLS is announced in memory
   * (simulated) and on a port when a `certificate` is given, until TLS is on.
   * @default {every extension on}
   */
  readonly extensions?: Readonly<Partial<Record<MockExtension, boolean>>>;
  /**
   * The SIZE limit in bytes; a larger message is refused with 552.
   * @default {10485760}
   */
  readonly maxSize?: number;
  /** Replies to change, delays, dropped connections. @default {[]} */
  readonly faults?: readonly FaultRule[];
  /**
   * The certificate for STARTTLS and implicit TLS on a port ({@linkcode MockSmtpServer.listen}).
   * In memory, TLS is simulated and needs none.
   */
  readonly certificate?: ServerCertificate;
}

/** The envelope of a received message, with the parameters of MAIL and RCPT. */
export interface ReceivedEnvelope {
  /** The MAIL FROM address (empty for `<>`). */
  readonly from: string;
  /** The accepted RCPT TO addresses, in order. */
  readonly to: readonly string[];
  /** MAIL FROM parameters by upper-case name, e.g. `{ SIZE: "123", BODY: "8BITMIME" }`; a flag is `true`. */
  readonly mailParameters: Readonly<Record<string, string | true>>;
  /** Each accepted recipient's RCPT TO parameters (e.g. `NOTIFY`, `ORCPT`), in order. */
  readonly recipientParameters: readonly Readonly<Record<string, string | true>>[];
}

/** A message that {@linkcode MockSmtpServer} accepted. */
export interface ReceivedMessage {
  /** Envelope and parameters. */
  readonly envelope: ReceivedEnvelope;
  /** The message as received: dot-stuffing removed, line ends as sent, no final dot. */
  readonly raw: Uint8Array;
  /** `raw` decoded as UTF-8. */
  readonly text: string;
  /** The header section, parsed. */
  readonly headers: MessageHeaders;
  /** How the content came: DATA or BDAT. */
  readonly method: "DATA" | "BDAT";
  /** The TLS session it came over (simulated in memory), or `undefined` in clear text. */
  readonly tls: TlsInfo | undefined;
  /** The login it came under, or `undefined` without AUTH. */
  readonly auth: { readonly mechanism: string; readonly username: string } | undefined;
  /** The name the client gave in EHLO or HELO. */
  readonly clientName: string;
  /** Which connection it came on: 1 for the first the server accepted. */
  readonly connection: number;
}

/** Where {@linkcode MockSmtpServer.listen} listens. */
export interface MockListenOptions {
  /**
   * The address to bind.
   * @default {"127.0.0.1"}
   */
  readonly hostname?: string;
  /**
   * The port; 0 picks a free one.
   * @default {0}
   */
  readonly port?: number;
  /**
   * TLS from the first byte (needs `certificate`); otherwise STARTTLS is offered when there
   * is a certificate.
   * @default {false}
   */
  readonly implicitTls?: boolean;
}

/** The address a listening {@linkcode MockSmtpServer} is bound to. */
export interface MockServerAddress {
  /** The bound address, e.g. `127.0.0.1`. */
  readonly hostname: string;
  /** The bound port. */
  readonly port: number;
}
