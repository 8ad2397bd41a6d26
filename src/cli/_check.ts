/**
 * `postie check`: connects, secures the connection and says EHLO, then reports the greeting,
 * the TLS session and the server's extensions, as text or JSON.
 *
 * @module
 */

import { SmtpClient } from "../client.ts";
import type { ClientOptions } from "../options.ts";
import type { CheckConfig } from "./_args.ts";
import { clientOptions } from "./_client_options.ts";
import { baseDirectory, readCaFiles } from "./_files.ts";
import type { CliIo } from "./_io.ts";
import { describeTls, type Out } from "./_output.ts";
import { formatBytes } from "./_progress.ts";
import { EXIT_OK, UsageError } from "./exit_codes.ts";

/**
 * Runs `postie check`.
 *
 * @param config The parsed command line.
 * @param io The runtime's hooks.
 * @param out Standard output and standard error.
 * @returns The exit code.
 */
export async function check(config: CheckConfig, io: CliIo, out: Out): Promise<number> {
  if (!config.server && !io.startLocalServer) {
    throw new UsageError("Missing --server host:port (or set POSTIE_SERVER)");
  }
  const caCerts = await readCaFiles(config.caFiles, baseDirectory(io));
  const server = config.server ? undefined : await io.startLocalServer!();
  try {
    if (server) {
      out.stderr.line(
        `No --server given: checking an embedded local SMTP server on ` +
          `${server.hostname}:${server.port}`,
      );
    }
    const greeting: string[] = [];
    let greeted = false;
    const base = clientOptions(
      config,
      out,
      server ? { server, caCerts: [server.caCert] } : {
        caCerts,
      },
    );
    const options: ClientOptions = {
      ...base,
      onTranscript(event) {
        if (event.direction === "client") greeted = true;
        else if (event.direction === "server" && !greeted) greeting.push(event.line);
        base.onTranscript?.(event);
      },
    };
    const client = await SmtpClient.connect(options, io.signal ? { signal: io.signal } : {});
    const caps = client.capabilities;
    const tls = client.tls;
    await client.quit();
    const port = options.port ??
      (options.tls === "implicit" ? 465 : options.tls === "none" ? 25 : 587);
    const mode = options.tls ?? (port === 465 ? "implicit" : "starttls");
    const extensions = Object.fromEntries(caps.keywords.map((k) => [k, caps.params(k) ?? []]));
    if (out.json) {
      out.stdout.line(JSON.stringify(
        {
          ok: true,
          exitCode: EXIT_OK,
          server: { hostname: options.hostname, port, tls: mode },
          greeting: greeting.join("\n"),
          tls: tls
            ? {
              protocol: tls.protocol ?? null,
              cipher: tls.cipher ?? null,
              peerSubject: tls.peerSubject ?? null,
            }
            : null,
          capabilities: {
            serverName: caps.serverName,
            keywords: caps.keywords,
            extensions,
            maxSize: caps.maxSize ?? null,
            authMechanisms: caps.authMechanisms,
          },
        },
        null,
        2,
      ));
      return EXIT_OK;
    }
    const lines = [
      `Server:     ${options.hostname}:${port} (${
        mode === "none" ? "no TLS" : mode === "implicit" ? "implicit TLS" : "STARTTLS"
      })`,
      `Greeting:   ${greeting.join(" / ")}`,
      `TLS:        ${tls ? describeTls(tls) : "none: everything travels in clear text"}`,
      `EHLO name:  ${caps.serverName}`,
      `Max size:   ${
        caps.maxSize !== undefined
          ? `${formatBytes(caps.maxSize)} (${caps.maxSize} bytes)`
          : "no limit announced"
      }`,
      `AUTH:       ${caps.authMechanisms.join(" ") || "not offered"}`,
      `Extensions:`,
      ...caps.keywords.map((k) => `  ${[k, ...(caps.params(k) ?? [])].join(" ")}`),
    ];
    out.stdout.line(lines.join("\n"));
    return EXIT_OK;
  } finally {
    await server?.close();
  }
}
