/**
 * `deno task demo`: the main job with no outside server. Starts a real SMTP server
 * (npm `smtp-server`) on 127.0.0.1 with the project's test certificate, sends a message over
 * STARTTLS with the test CA trusted, and prints the SMTP transcript and what the server got.
 *
 * @module
 */

import { SmtpClient } from "../mod.ts";
import { startSmtpServer, testCa } from "./_local_server.ts";

const server = await startSmtpServer();
console.log(`Local SMTP server (smtp-server) listening on 127.0.0.1:${server.port}\n`);
console.log("--- SMTP transcript " + "-".repeat(50));

try {
  const client = await SmtpClient.connect({
    hostname: "localhost",
    port: server.port,
    tls: "starttls",
    tlsOptions: { caCerts: [testCa] },
    onTranscript: ({ direction, line }) =>
      console.log(
        `${direction === "client" ? "C:" : direction === "server" ? "S:" : "* "} ${line}`,
      ),
  });
  let result;
  try {
    result = await client.send({
      raw: [
        "From: Postie Demo <demo@postie.test>",
        "To: Reader <reader@postie.test>",
        "Subject: Hello from postie",
        `Date: ${new Date().toUTCString().replace("GMT", "+0000")}`,
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "This message travelled over STARTTLS with a verified certificate.",
        ".A line that starts with a dot arrives intact.",
        "",
      ].join("\r\n"),
      envelope: { from: "demo@postie.test", to: ["reader@postie.test"] },
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
  console.log(`envelope: ${received.from} -> ${received.to.join(", ")} (TLS: ${received.secure})`);
  console.log(received.text);
} finally {
  await server.close();
}
