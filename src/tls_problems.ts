/**
 * Connect and TLS failures explained: what a certificate problem means and what fixes it, and
 * the hints for the usual mix-ups (implicit TLS on a STARTTLS port).
 *
 * @module
 */

import { SmtpTimeoutError, SmtpTlsError } from "./errors.ts";
import type { ResolvedOptions } from "./client_options.ts";

function isCertificateProblem(error: unknown): boolean {
  const text = String(error instanceof Error ? `${error.message} ${error.cause ?? ""}` : error);
  return /certif|issuer|expired|self.signed|not valid for|UnknownIssuer|NotValidForName|CaUsedAsEndEntity/i
    .test(text);
}

/** Says in words what a certificate failure means and what to do about it. */
function explainCertificateProblem(error: SmtpTlsError, options: ResolvedOptions): string {
  const text = `${error.message} ${String(error.cause ?? "")}`;
  const server = `The certificate of ${options.hostname}:${options.port}`;
  if (/expired|NotValidYet|not yet valid/i.test(text)) {
    return `${server} has expired or is not yet valid`;
  }
  if (/NotValidForName|not valid for|hostname|altnames/i.test(text)) {
    return `${server} is not valid for "${options.serverName}" (set tlsOptions.serverName when ` +
      `connecting by IP address)`;
  }
  if (/CaUsedAsEndEntity/.test(text)) {
    // rustls checks this before trust: adding the certificate to caCerts cannot help.
    return `${server} is a CA certificate (basicConstraints CA:TRUE, what \`openssl req -x509\` ` +
      `makes of a self-signed one by default) presented as the server's own, which Deno's TLS ` +
      `(rustls) refuses even when it is in tlsOptions.caCerts (Node accepts it there); give the ` +
      `server a leaf certificate signed by that CA, or a certificate with basicConstraints CA:FALSE`;
  }
  if (/self.signed/i.test(text)) {
    return `${server} is self-signed (trust it with tlsOptions.caCerts)`;
  }
  return `${server} is not signed by a trusted CA (add the CA with tlsOptions.caCerts)`;
}

/** Classifies a connect or handshake failure and adds the hint for the usual mistakes. */
export function tlsError(
  error: unknown,
  options: ResolvedOptions,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): unknown {
  if (signal?.aborted) return signal.reason;
  if (error instanceof DOMException && error.name === "TimeoutError") {
    return new SmtpTimeoutError(
      `Timed out after ${timeoutMs} ms connecting to ${options.hostname}:${options.port}`,
      "connect",
      timeoutMs,
    );
  }
  if (error instanceof SmtpTlsError && isCertificateProblem(error)) {
    return new SmtpTlsError(`${explainCertificateProblem(error, options)}: ${error.message}`, {
      cause: error,
    });
  }
  if (error instanceof SmtpTlsError && options.tls === "implicit") {
    return new SmtpTlsError(
      `${error.message}. The server may not speak TLS on port ${options.port} before its ` +
        `greeting: port 587 (and 25) usually needs tls: "starttls"`,
      { cause: error },
    );
  }
  return error;
}
