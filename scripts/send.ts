/**
 * `postie` on Deno, from a checkout: `deno run -A scripts/send.ts send ...` (or `check`).
 * Without `--server`, the message goes to an embedded local SMTP server (npm `smtp-server` on
 * 127.0.0.1 with the test certificate, STARTTLS and a demo account), which then shows what it
 * received: a real, encrypted, authenticated send with no setup.
 *
 * @module
 */

import type { LocalServer } from "../src/cli/main.ts";
import { runDeno } from "../src/cli/deno.ts";

const DEMO_USER = "demo";
const DEMO_PASSWORD = "demo-password";

/** Starts smtp-server with STARTTLS and AUTH PLAIN/LOGIN for the demo account. */
async function startLocalServer(): Promise<LocalServer> {
  // Loaded only when needed: the npm package is a development dependency.
  const { startSmtpServer, testCa } = await import("./_local_server.ts");
  const server = await startSmtpServer({
    authMethods: ["PLAIN", "LOGIN"],
    authOptional: false,
    size: 25 * 1024 * 1024,
    onAuth(auth, _session, callback) {
      if (auth.username === DEMO_USER && auth.password === DEMO_PASSWORD) {
        callback(null, { user: auth.username });
      } else {
        callback(new Error("Invalid username or password"));
      }
    },
  });
  return {
    hostname: "localhost",
    port: server.port,
    caCert: testCa,
    username: DEMO_USER,
    password: DEMO_PASSWORD,
    report() {
      if (server.received.length === 0) return "(nothing)\n";
      return server.received.map((m) =>
        `envelope: ${m.from} -> ${m.to.join(", ")} (TLS: ${m.secure}, logged in as: ` +
        `${m.user ?? "nobody"})\n${m.text}${m.text.endsWith("\n") ? "" : "\n"}`
      ).join("\n");
    },
    close: () => server.close(),
  };
}

Deno.exit(
  await runDeno(Deno.args, { program: "deno run -A scripts/send.ts", startLocalServer }),
);
