/**
 * `deno task demo`: the main job with no outside server. Starts a real SMTP server
 * (npm `smtp-server`) on 127.0.0.1 with the project's test certificate and a demo account,
 * sends a message with an attachment over STARTTLS (test CA trusted) after logging in, and
 * prints the SMTP transcript (secrets redacted) and what the server received.
 *
 * @module
 */

import { SmtpClient } from "../mod.ts";
import { startSmtpServer, testCa } from "../tests/_helpers/smtp_server.ts";

const DEMO_USER = "demo";
const DEMO_PASSWORD = "demo-password";

const server = await startSmtpServer({
  authMethods: ["PLAIN", "LOGIN", "CRAM-MD5"],
  authOptional: false,
  onAuth(auth, _session, callback) {
    const ok = auth.username === DEMO_USER &&
      (auth.method === "CRAM-MD5"
        ? auth.validatePassword(DEMO_PASSWORD)
        : auth.password === DEMO_PASSWORD);
    if (ok) callback(null, { user: auth.username });
    else callback(new Error("Invalid username or password"));
  },
});
console.log(`Local SMTP server (smtp-server) listening on 127.0.0.1:${server.port}\n`);
console.log("--- SMTP transcript " + "-".repeat(50));

try {
  const client = await SmtpClient.connect({
    hostname: "localhost",
    port: server.port,
    tls: "starttls",
    tlsOptions: { caCerts: [testCa] },
    auth: { username: DEMO_USER, password: DEMO_PASSWORD },
    onTranscript: ({ direction, line }) =>
      console.log(
        `${direction === "client" ? "C:" : direction === "server" ? "S:" : "* "} ${line}`,
      ),
  });
  let result;
  try {
    result = await client.send({
      from: { name: "Postie Demo", address: "demo@postie.test" },
      to: { name: "Zoë Reader", address: "reader@postie.test" },
      subject: "Hello from postie ✉",
      text: "This message travelled over STARTTLS with a verified certificate, after AUTH.\n" +
        ".A line that starts with a dot arrives intact.",
      attachments: [{ filename: "notes.txt", content: "An attachment, base64-encoded.\n" }],
    });
  } finally {
    await client.quit();
  }
  console.log("\n--- Result " + "-".repeat(59));
  console.log(`accepted: ${result.accepted.map((r) => r.address).join(", ")}`);
  console.log(`rejected: ${result.rejected.length}`);
  console.log(`server reply: ${result.reply.code} ${result.reply.lines.join(" ")}`);
  const received = server.received[0]!;
  console.log("\n--- What the server received " + "-".repeat(41));
  console.log(
    `envelope: ${received.from} -> ${received.to.join(", ")} ` +
      `(TLS: ${received.secure}, logged in as: ${received.user})`,
  );
  console.log(received.text);
} finally {
  await server.close();
}
