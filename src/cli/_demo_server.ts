/**
 * The embedded demo server of `postie send` and `postie check` without `--server`: the test
 * aids' {@linkcode MockSmtpServer} on a free port of 127.0.0.1, with real STARTTLS (the demo
 * certificate) and AUTH PLAIN and LOGIN for a demo account. Runtime-neutral (`node:net` and
 * `node:tls` under the hood), so that the Deno entry and the npm `postie` bin both have it.
 *
 * @module
 */

import { MockSmtpServer } from "../testing/mock_server.ts";
import { DEMO_CA, DEMO_CERT, DEMO_KEY } from "./_demo_certificate.ts";
import type { LocalServer } from "./_io.ts";

const DEMO_USER = "demo";
const DEMO_PASSWORD = "demo-password";

/**
 * Starts the demo server.
 *
 * @returns Where it listens, how to log in, what it received, and how to stop it.
 */
export async function startDemoServer(): Promise<LocalServer> {
  const server = new MockSmtpServer({
    hostname: "localhost",
    users: { [DEMO_USER]: DEMO_PASSWORD },
    requireTls: true,
    maxSize: 25 * 1024 * 1024,
    certificate: { cert: DEMO_CERT, key: DEMO_KEY },
  });
  const { hostname, port } = await server.listen({ hostname: "127.0.0.1", port: 0 });
  return {
    hostname,
    port,
    caCert: DEMO_CA,
    username: DEMO_USER,
    password: DEMO_PASSWORD,
    report() {
      if (server.messages.length === 0) return "(nothing)\n";
      return server.messages.map((m) =>
        `envelope: ${m.envelope.from} -> ${m.envelope.to.join(", ")} (TLS: ${
          m.tls !== undefined
        }, ` +
        `logged in as: ${m.auth?.username ?? "nobody"})\n${m.text}${
          m.text.endsWith("\n") ? "" : "\n"
        }`
      ).join("\n");
    },
    close: () => server.close(),
  };
}
