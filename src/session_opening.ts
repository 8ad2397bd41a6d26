/**
 * Opening a session: connect (TLS from the first byte, or in clear), read the greeting, EHLO
 * with the HELO fallback, the required STARTTLS upgrade and EHLO again, then AUTH; and ending
 * one with QUIT. Every step is bounded by its timeout and by `timeouts.totalMs`, and the socket
 * is closed on every failure.
 *
 * @module
 */

import { authenticate } from "./auth/mod.ts";
import type { AuthConversation } from "./auth/types.ts";
import { checkPlaintextAuth, defaultClientName, type ResolvedOptions } from "./client_options.ts";
import {
  SmtpProtocolError,
  SmtpReplyError,
  SmtpTimeoutError,
  SmtpUnsupportedError,
} from "./errors.ts";
import { Capabilities } from "./protocol/capabilities.ts";
import * as commands from "./protocol/_commands.ts";
import { DEFAULT_REPLY_LIMITS } from "./protocol/_reply_reader.ts";
import { Session, type TotalDeadline, totalDeadline, type Wait } from "./protocol/_session.ts";
import { tlsError } from "./tls_problems.ts";
import type { Connection } from "./transport/types.ts";
import type { SmtpReply } from "./types.ts";

export function isPositive(reply: SmtpReply): boolean {
  return reply.code >= 200 && reply.code < 300;
}

export async function quitSession(session: Session, options: ResolvedOptions): Promise<void> {
  if (session.closed) return;
  try {
    await session.command({ line: "QUIT" }, { phase: "quit", timeoutMs: options.timeouts.quitMs });
  } catch {
    // The server misbehaved or vanished: nothing left to do but close.
  } finally {
    session.close();
  }
}

/** Opens and prepares a session; closes the socket on every failure. */
export async function open(
  options: ResolvedOptions,
  signal: AbortSignal | undefined,
  sendTotal?: TotalDeadline,
): Promise<{ session: Session; capabilities: Capabilities }> {
  const { transport, timeouts } = options;
  const ownTotal = totalDeadline(timeouts.totalMs);
  const total = sendTotal && sendTotal.at < ownTotal.at ? sendTotal : ownTotal;
  const connection = await connectTransport(options, signal, total);
  const session = new Session(connection, {
    limits: { ...DEFAULT_REPLY_LIMITS, ...options.options.limits },
    onTranscript: options.options.onTranscript,
  });
  try {
    if (connection.tls) session.info(tlsLine(options, connection), connection.tls);
    const greeting = await readGreeting(session, options, signal, total);
    if (greeting.code !== 220) {
      throw new SmtpReplyError("Server refused the session", "greeting", "(greeting)", greeting);
    }
    const clientName = options.clientName ?? defaultClientName(transport, connection);
    let capabilities = await hello(session, clientName, options, signal, total);

    if (options.tls === "starttls") {
      if (!capabilities.has("STARTTLS")) {
        throw new SmtpUnsupportedError(
          `Server ${options.hostname}:${options.port} does not offer STARTTLS, and tls is ` +
            `"starttls": refusing to continue in clear text (use tls: "implicit" if the port ` +
            `expects TLS from the start)`,
          "starttls",
          "STARTTLS",
        );
      }
      const wait: Wait = { phase: "starttls", timeoutMs: timeouts.commandMs, signal, total };
      const reply = await session.command({ line: "STARTTLS" }, wait);
      if (reply.code !== 220) {
        throw new SmtpReplyError("STARTTLS refused", "starttls", "STARTTLS", reply);
      }
      if (session.buffered > 0) {
        throw new SmtpProtocolError(
          "Server sent data after its STARTTLS reply and before the TLS handshake (possible " +
            "response injection): refusing to continue",
          "starttls",
        );
      }
      const secured = await transport.startTls(session.connection, {
        serverName: options.serverName,
        ...(options.caCerts ? { caCerts: options.caCerts } : {}),
        ...(options.clientCertificate ? { clientCertificate: options.clientCertificate } : {}),
        signal: AbortSignal.any([
          AbortSignal.timeout(remainingMs(timeouts.connectMs, total)),
          ...(signal ? [signal] : []),
        ]),
      }).catch((error) => {
        throw tlsError(error, options, remainingMs(timeouts.connectMs, total), signal);
      });
      session.replaceConnection(secured);
      session.info(tlsLine(options, secured), secured.tls);
      capabilities = await hello(session, clientName, options, signal, total);
    }

    if (options.auth) {
      await authenticateSession(session, capabilities, options, signal, total);
    }
    return { session, capabilities };
  } catch (error) {
    if (!signal?.aborted && endsCleanly(error, session)) {
      // Said, not awaited: the error is reported at once, whatever the server does next.
      await session.write([{ line: "QUIT" }], { phase: "quit", timeoutMs: timeouts.quitMs })
        .catch(() => {});
    }
    session.close();
    if (signal?.aborted) throw signal.reason;
    throw error;
  }
}

/**
 * Whether the session is in step after `error`, so that it can end with QUIT (RFC 5321 asks
 * for it after a refused greeting; servers log a login failure without QUIT as a dropped
 * connection): the server's last word was a final reply other than 421, or the client refused
 * to go on before sending anything more.
 */
function endsCleanly(error: unknown, session: Session): boolean {
  if (session.closed || session.buffered > 0) return false;
  if (error instanceof SmtpReplyError) {
    const { code } = error.reply;
    return code !== 421 && Math.floor(code / 100) !== 3;
  }
  return error instanceof SmtpUnsupportedError;
}

function tlsLine(options: ResolvedOptions, connection: Connection): string {
  const tls = connection.tls ?? {};
  const details = [tls.protocol, tls.cipher, tls.peerSubject].filter(Boolean).join(", ");
  return `TLS established with ${options.serverName}, certificate verified` +
    (details ? ` (${details})` : "");
}

/** `ms`, or less when the operation's total deadline comes sooner. */
function remainingMs(ms: number, total: TotalDeadline): number {
  return Math.max(1, Math.min(ms, Math.round(total.at - performance.now())));
}

async function connectTransport(
  options: ResolvedOptions,
  signal: AbortSignal | undefined,
  total: TotalDeadline,
): Promise<Connection> {
  const { transport } = options;
  const timeoutMs = remainingMs(options.timeouts.connectMs, total);
  const deadline = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([signal, deadline]) : deadline;
  try {
    if (options.tls === "implicit") {
      return await transport.connectTls({
        hostname: options.hostname,
        port: options.port,
        ...(options.path !== undefined ? { path: options.path } : {}),
        serverName: options.serverName,
        ...(options.caCerts ? { caCerts: options.caCerts } : {}),
        ...(options.clientCertificate ? { clientCertificate: options.clientCertificate } : {}),
        signal: combined,
      });
    }
    return await transport.connect({
      hostname: options.hostname,
      port: options.port,
      ...(options.path !== undefined ? { path: options.path } : {}),
      signal: combined,
    });
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw tlsError(error, options, timeoutMs, signal);
  }
}

async function readGreeting(
  session: Session,
  options: ResolvedOptions,
  signal: AbortSignal | undefined,
  total: TotalDeadline,
): Promise<SmtpReply> {
  try {
    return await session.read({
      phase: "greeting",
      timeoutMs: options.timeouts.greetingMs,
      signal,
      total,
    });
  } catch (error) {
    if (error instanceof SmtpTimeoutError && options.tls !== "implicit") {
      throw new SmtpTimeoutError(
        `${error.message} for the greeting. If port ${options.port} expects TLS from the ` +
          `start (usually port 465), use tls: "implicit"`,
        "greeting",
        error.timeoutMs,
        { cause: error },
      );
    }
    if (error instanceof SmtpProtocolError && options.tls !== "implicit") {
      throw new SmtpProtocolError(
        `${error.message}. If port ${options.port} expects TLS from the start (usually port ` +
          `465), use tls: "implicit"`,
        "greeting",
        { cause: error },
      );
    }
    throw error;
  }
}

/** EHLO, falling back to HELO when the server does not know EHLO. */
async function hello(
  session: Session,
  clientName: string,
  options: ResolvedOptions,
  signal: AbortSignal | undefined,
  total: TotalDeadline,
): Promise<Capabilities> {
  const wait: Wait = { phase: "ehlo", timeoutMs: options.timeouts.commandMs, signal, total };
  const lmtp = options.protocol === "lmtp";
  const ehlo = lmtp ? commands.lhlo(clientName) : commands.ehlo(clientName);
  const reply = await session.command({ line: ehlo }, wait);
  if (isPositive(reply)) return Capabilities.fromEhlo(reply);
  if (lmtp) throw new SmtpReplyError("Server refused LHLO", "ehlo", ehlo, reply);
  if (reply.code === 500 || reply.code === 502) {
    const helo = commands.helo(clientName);
    const heloReply = await session.command({ line: helo }, wait);
    if (isPositive(heloReply)) {
      return Capabilities.none(heloReply.lines[0]?.split(/\s+/, 1)[0] ?? "");
    }
    throw new SmtpReplyError("Server refused HELO", "ehlo", helo, heloReply);
  }
  throw new SmtpReplyError("Server refused EHLO", "ehlo", ehlo, reply);
}

/** Logs in: picks a mechanism and runs the SASL exchange over the session. */
async function authenticateSession(
  session: Session,
  capabilities: Capabilities,
  options: ResolvedOptions,
  signal: AbortSignal | undefined,
  total: TotalDeadline,
): Promise<void> {
  const auth = options.auth!;
  if (!session.connection.tls) checkPlaintextAuth(options.options);
  if (capabilities.authMechanisms.length === 0) {
    throw new SmtpUnsupportedError(
      `Server ${options.hostname} does not offer AUTH${
        session.connection.tls ? "" : " (many servers offer it only after STARTTLS)"
      }: remove the credentials or use another port`,
      "auth",
      "AUTH",
    );
  }
  const wait: Wait = { phase: "auth", timeoutMs: options.timeouts.commandMs, signal, total };
  const conversation: AuthConversation = {
    async exchange(line, { secret = false } = {}) {
      const display = secret ? redactAuthLine(line) : line;
      return await session.command({ line, display }, wait);
    },
  };
  await authenticate(conversation, auth, {
    offered: capabilities.authMechanisms,
    initialResponse: true,
    hostname: options.serverName,
    port: options.port,
    ...(signal ? { signal } : {}),
  });
}

/** `AUTH PLAIN dGVzdA==` becomes `AUTH PLAIN [redacted]`; any other secret line `[redacted]`. */
function redactAuthLine(line: string): string {
  const match = /^AUTH\s+(\S+)/i.exec(line);
  return match ? `AUTH ${match[1]} [redacted]` : "[redacted]";
}
