/**
 * `--proxy URL` (and `POSTIE_PROXY`): checked as a usage error, a password refused on the
 * command line, and a send through a scripted SOCKS5 proxy to a local STARTTLS server.
 */
import assert from "node:assert/strict";
import { parseCommandLine } from "../../src/cli/_args.ts";
import { EXIT_OK, EXIT_UNAVAILABLE, UsageError } from "../../src/cli/exit_codes.ts";
import { main } from "../../src/cli/main.ts";
import { MockSmtpServer } from "../../src/testing/mod.ts";
import { test } from "../_helpers/test.ts";
import { fixture } from "../_helpers/smtp_server.ts";
import { SOCKS5_OK, socks5Accept, startScriptedProxy } from "../transport/_scripted_proxy.ts";

const CA = new URL("../fixtures/certs/ca.pem", import.meta.url).pathname;

test("--proxy takes a proxy URL; POSTIE_PROXY too, and only it may carry a password", () => {
  const send = ["send", "--server", "smtp.example.com", "--to", "a@example.com"];
  const flag = parseCommandLine([...send, "--proxy", "socks5h://127.0.0.1:1080"], {});
  assert.equal(flag.command === "send" && flag.proxy, "socks5h://127.0.0.1:1080");
  const env = parseCommandLine(send, { POSTIE_PROXY: "http://u:p4ss@127.0.0.1:3128" });
  assert.equal(env.command === "send" && env.proxy, "http://u:p4ss@127.0.0.1:3128");
  assert.throws(
    () => parseCommandLine([...send, "--proxy", "http://u:p4ss@127.0.0.1:3128"], {}),
    (error: Error) =>
      error instanceof UsageError && /POSTIE_PROXY/.test(error.message) &&
      !error.message.includes("p4ss"),
  );
  assert.throws(
    () => parseCommandLine([...send, "--proxy", "ftp://127.0.0.1"], {}),
    /unsupported scheme/,
  );
});

test("postie send --proxy goes through the proxy; a refusal is 'unavailable' (69)", async () => {
  await using server = new MockSmtpServer({
    certificate: { cert: fixture("server.pem"), key: fixture("server.key") },
  });
  const { port } = await server.listen();
  let refuse = false;
  await using proxy = startScriptedProxy(async (side) => {
    if (!await socks5Accept(side)) return;
    if (refuse) return await side.write([5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
    await side.write(SOCKS5_OK);
    await side.relay(port);
  });
  const run = async () => {
    let stdout = "";
    let stderr = "";
    const text = (d: string | Uint8Array) =>
      typeof d === "string" ? d : new TextDecoder().decode(d);
    const code = await main([
      "send",
      ...["--server", `localhost:${port}`, "--ca-file", CA, "--proxy", proxy.url("socks5h")],
      ...["--from", "me@example.com", "--to", "you@example.com", "--subject", "via proxy"],
    ], {
      stdout: { write: (d) => void (stdout += text(d)) },
      stderr: { write: (d) => void (stderr += text(d)) },
      env: {},
    });
    return { code, stdout, stderr };
  };
  const sent = await run();
  assert.equal(sent.code, EXIT_OK, sent.stderr);
  assert.equal(server.messages[0]!.headers.get("Subject"), "via proxy");
  refuse = true;
  const refused = await run();
  assert.equal(refused.code, EXIT_UNAVAILABLE, refused.stderr);
  assert.match(refused.stderr, /connection refused \(SOCKS5 reply 5\)/);
});
