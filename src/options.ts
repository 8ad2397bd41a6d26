/**
 * Options of {@linkcode SmtpClient} and {@linkcode sendMail}.
 *
 * @module
 */

import type { AuthOptions } from "./auth/types.ts";
import type { DkimOptions } from "./dkim/types.ts";
import type { TlsInfo, Transport } from "./transport/types.ts";
import type { Envelope } from "./types.ts";

/**
 * How the connection is secured.
 *
 * - `"implicit"`: TLS from the first byte (SMTPS, usually port 465).
 * - `"starttls"`: connect in clear, then require the `STARTTLS` upgrade before anything else is
 *   sent (usually ports 587 and 25). If the server does not offer it, the client fails.
 * - `"none"`: no encryption at all. Everything, including mail, travels in clear text: use it
 *   only on a trusted network or for local testing.
 */
export type TlsMode = "implicit" | "starttls" | "none";

/** TLS settings. Certificates and host names are always verified. */
export interface TlsOptions {
  /** PEM CA certificates to trust in addition to the system store (e.g. a private CA). */
  readonly caCerts?: readonly string[];
  /**
   * The host name the certificate must match, when it differs from `hostname` (e.g. when
   * connecting to an IP address).
   * @default {hostname}
   */
  readonly serverName?: string;
  /** A PEM client certificate and key for mutual TLS. */
  readonly clientCertificate?: { readonly cert: string; readonly key: string };
}

/** Time limits in milliseconds. Every network wait has one. */
export interface Timeouts {
  /** Opening the TCP connection and the TLS handshake. @default {15000} */
  readonly connectMs?: number;
  /** Waiting for the server's greeting. @default {30000} */
  readonly greetingMs?: number;
  /** Waiting for the reply to an ordinary command. @default {60000} */
  readonly commandMs?: number;
  /** Waiting for the reply to the end of the message data. @default {300000} */
  readonly dataEndMs?: number;
  /** The whole QUIT exchange; the socket is closed when it runs out. @default {5000} */
  readonly quitMs?: number;
  /**
   * The longest a whole send may take, on top of the limits of its single waits, so that a
   * server that answers every wait just in time cannot stretch it without end: from
   * `send()` to its result on a client (its retry included), each attempt in a pool; and the
   * whole opening of a connection (connect, TLS, greeting, EHLO, STARTTLS, AUTH). Allow for
   * the upload of the largest message over the slowest link it will take.
   * @default {900000}
   */
  readonly totalMs?: number;
}

/** One line of the SMTP dialogue, as given to {@linkcode ClientOptions.onTranscript}. */
export interface TranscriptEvent {
  /** Who sent it; `info` lines are the client's own notes (TLS established, etc.). */
  readonly direction: "client" | "server" | "info";
  /** The line, without CRLF; secrets are replaced by `[redacted]`. */
  readonly line: string;
  /** Milliseconds since the connection attempt started. */
  readonly elapsedMs: number;
  /** On the `info` event after a TLS handshake: what the runtime tells about the session. */
  readonly tls?: TlsInfo;
}

/** How to connect to an SMTP server. */
export interface ClientOptions {
  /** The server's host name or IP address. */
  readonly hostname: string;
  /**
   * The TCP port.
   * @default {465 for tls "implicit", 587 for "starttls", 25 for "none"}
   */
  readonly port?: number;
  /**
   * How the connection is secured.
   * @default {"implicit" on port 465, "starttls" otherwise}
   */
  readonly tls?: TlsMode;
  /** TLS settings. */
  readonly tlsOptions?: TlsOptions;
  /**
   * The name sent with EHLO.
   * @default {the machine's host name when it is a valid domain, else an address literal}
   */
  readonly clientName?: string;
  /** Credentials; `false` or absent skips authentication even when the server offers it. */
  readonly auth?: AuthOptions | false;
  /**
   * Host names for which authentication over a connection without TLS is allowed, for local
   * testing. By default credentials are never sent in clear text.
   * @default {[]}
   */
  readonly allowPlaintextAuth?: readonly string[];
  /** Time limits. */
  readonly timeouts?: Timeouts;
  /**
   * Whether to pipeline commands when the server offers PIPELINING.
   * @default {true}
   */
  readonly pipelining?: boolean;
  /**
   * Whether to send with BDAT when the server offers CHUNKING.
   * @default {true}
   */
  readonly chunking?: boolean;
  /** Receives each command and reply line, with secrets redacted. */
  readonly onTranscript?: (event: TranscriptEvent) => void;
  /** The runtime seam; tests and proxies may supply their own. @default {the runtime's} */
  readonly transport?: Transport;
  /**
   * Reach the server through a proxy, given as a URL: `socks5://[user:pass@]host:port` (the
   * server's name resolved here), `socks5h://` (resolved by the proxy), `socks4://`,
   * `socks4a://[userid@]host:port`, or `http://[user:pass@]host:port` (an HTTP proxy's CONNECT
   * tunnel, with Basic authentication). TLS runs end to end through the tunnel and the
   * certificate is verified against the server's name, never the proxy's. The credentials
   * are secrets: errors name the proxy without them. It wraps `transport` when both are given.
   */
  readonly proxy?: string | URL;
  /**
   * Connect to this Unix domain socket instead of `hostname:port` (Deno and Node.js). `hostname`
   * still names the server: the certificate must be valid for it, and messages name it. A local
   * socket usually goes with `tls: "none"`; Deno cannot run TLS over a Unix socket
   * (`SmtpUnsupportedError`), Node.js can.
   */
  readonly path?: string;
  /**
   * `"lmtp"` speaks LMTP (RFC 2033) to a local delivery agent: `LHLO` instead of `EHLO`, and after
   * the data one reply per accepted recipient, so that `SendResult.accepted` and `rejected` are the
   * final delivery per recipient (a recipient refused then has that reply). Messages go with DATA
   * (never BDAT); commands are pipelined as usual.
   * @default {"smtp"}
   */
  readonly protocol?: "smtp" | "lmtp";
  /** Limits on what the server may send. */
  readonly limits?: ReplyLimits;
  /**
   * Signs every message with DKIM (one signer, or several: one `DKIM-Signature` each); see
   * `@postie/smtp/dkim`. A send can turn it off or replace it with its own `dkim`. The signers
   * are checked (keys included) before connecting.
   */
  readonly dkim?: DkimOptions;
}

/** Bounds on server replies, so that a hostile server cannot exhaust memory. */
export interface ReplyLimits {
  /** Longest reply line in bytes. @default {16384} */
  readonly maxLineLength?: number;
  /** Most lines in one reply. @default {1000} */
  readonly maxLines?: number;
}

/** Options of one send. */
export interface SendOptions {
  /** Aborts the send; the connection is closed. */
  readonly signal?: AbortSignal;
  /**
   * When true, a message that some (not all) recipients refused rejects with
   * `SmtpRecipientsError` after it was sent to the others. When false, the result lists them.
   * @default {false}
   */
  readonly rejectOnPartialFailure?: boolean;
  /**
   * The envelope to use instead of the one derived from the message (for a composed message:
   * `from` or `sender`, and every address of `to`, `cc` and `bcc`).
   */
  readonly envelope?: Envelope;
  /** Delivery status notification requests (RFC 3461); needs the server's DSN extension. */
  readonly dsn?: DsnOptions;
  /**
   * Ask every relay to use TLS for this message (RFC 8689 `REQUIRETLS`); fails with
   * `SmtpUnsupportedError` when the server does not offer it.
   * @default {false}
   */
  readonly requireTls?: boolean;
  /**
   * Signs this message with DKIM instead of as the client or pool says, or, with `false`, does
   * not sign it. See `@postie/smtp/dkim`.
   * @default {the client's or pool's `dkim`}
   */
  readonly dkim?: DkimOptions | false;
  /**
   * Called, and awaited, just before the bytes that end the message (DATA's final `.`, or
   * `BDAT ... LAST` with its chunk) are written, once per transaction: from then on the server
   * may hold the message. A durable queue records "maybe delivered" here (write-ahead), so that
   * a process that dies at any instant leaves a message that is either surely not sent or marked
   * as possibly delivered. When it throws, the end is not written, the connection is closed and
   * the send rejects with its error: the message was not sent. With pipelining, the next
   * message on the connection waits for it.
   */
  readonly beforeTerminator?: () => Promise<void> | void;
}

/** Delivery status notification requests (RFC 3461). */
export interface DsnOptions {
  /** Return the full message or only its headers in a failure report (`RET`). */
  readonly ret?: "FULL" | "HDRS";
  /**
   * An envelope identifier returned in reports (`ENVID`); printable ASCII, at most 100
   * characters once encoded as xtext (`+` and `=` take three each).
   */
  readonly envid?: string;
  /** When to report, per recipient (`NOTIFY`): `["NEVER"]` or any of the three others. */
  readonly notify?: readonly ("SUCCESS" | "FAILURE" | "DELAY")[] | readonly ["NEVER"];
  /**
   * Send each recipient's address as `ORCPT`: `rfc822;` and xtext (RFC 3461) for an ASCII
   * address, `utf-8;` and utf-8-addr-xtext (RFC 6533, `\x{F6}` for `ö`) for any other.
   * @default {false}
   */
  readonly orcpt?: boolean;
}
