/**
 * The library's client options from the command line's: server, TLS, CA certificates, EHLO
 * name, timeouts, and the transcript printed as the dialogue goes.
 *
 * @module
 */

import type { AuthOptions } from "../auth/types.ts";
import type { ClientOptions, TranscriptEvent } from "../options.ts";
import type { CommonConfig } from "./_args.ts";
import type { LocalServer } from "./_io.ts";
import type { Out } from "./_output.ts";

/**
 * The client options for a run.
 *
 * @param config The parsed command line.
 * @param out Where the transcript goes.
 * @param extra The embedded server (when no `--server`), CA certificates and credentials.
 * @returns Options for `SmtpClient.connect()` or `sendMail()`.
 */
export function clientOptions(
  config: CommonConfig,
  out: Out,
  extra: { server?: LocalServer; caCerts: readonly string[]; auth?: AuthOptions },
): ClientOptions {
  const { server } = extra;
  const hostname = server?.hostname ?? config.server!.hostname;
  const port = server?.port ?? config.server?.port;
  const tls = server ? "starttls" : config.tls;
  const ms = config.timeoutMs;
  return {
    hostname,
    ...(port !== undefined ? { port } : {}),
    ...(tls !== undefined ? { tls } : {}),
    tlsOptions: {
      ...(extra.caCerts.length > 0 ? { caCerts: extra.caCerts } : {}),
      ...(config.serverName !== undefined ? { serverName: config.serverName } : {}),
    },
    ...(config.ehlo !== undefined ? { clientName: config.ehlo } : {}),
    ...(config.proxy !== undefined ? { proxy: config.proxy } : {}),
    ...(extra.auth ? { auth: extra.auth } : {}),
    ...(config.allowPlaintextAuth ? { allowPlaintextAuth: [hostname] } : {}),
    ...(ms !== undefined
      ? { timeouts: { connectMs: ms, greetingMs: ms, commandMs: ms, dataEndMs: ms, quitMs: ms } }
      : {}),
    ...(config.transcript ? { onTranscript: (event) => printTranscript(event, out) } : {}),
  };
}

function printTranscript(event: TranscriptEvent, out: Out): void {
  const tag = event.direction === "client" ? "C:" : event.direction === "server" ? "S:" : "*";
  out.stderr.line(`${tag} ${event.line}`);
}
