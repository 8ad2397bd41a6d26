/**
 * A child process for `large_attachment_test.ts`: sends one message with a large file attached
 * to the server at 127.0.0.1:PORT (plain SMTP), signed with the key in KEY when given, and prints
 * one JSON line: the RSS when the send started and its peak during the send (the kernel's
 * high-water mark, reset at the start, where Linux allows; else sampled every 5 ms).
 *
 *     deno run -A tests/dkim/_send_large.ts PORT FILE [KEY]
 */
import { SmtpClient } from "../../mod.ts";

const [port, file, key] = Deno.args;

function highWaterMark(): number | undefined {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

function resetHighWaterMark(): boolean {
  try {
    Deno.writeTextFileSync("/proc/self/clear_refs", "5");
    return highWaterMark() !== undefined;
  } catch {
    return false;
  }
}

const client = await SmtpClient.connect({
  hostname: "127.0.0.1",
  port: Number(port),
  tls: "none",
  ...(key
    ? { dkim: { domain: "example.com", selector: "large", privateKey: Deno.readTextFileSync(key) } }
    : {}),
});
// A small message first, so that the code paths are loaded before the measurement.
await client.send({ from: "a@example.com", to: "b@example.net", subject: "warm-up", text: "x" });

const kernel = resetHighWaterMark();
const rssStart = Deno.memoryUsage().rss;
let sampled = rssStart;
const sampler = kernel ? undefined : setInterval(() => {
  sampled = Math.max(sampled, Deno.memoryUsage().rss);
}, 5);
const started = performance.now();
await client.send({
  from: "a@example.com",
  to: "b@example.net",
  subject: "Large attachment",
  text: "The file is attached.",
  attachments: [{ filename: "large.bin", content: { path: file! } }],
});
const ms = performance.now() - started;
clearInterval(sampler);
const rssPeak = kernel ? highWaterMark()! : Math.max(sampled, Deno.memoryUsage().rss);
await client.quit();
console.log(JSON.stringify({ rssStart, rssPeak, ms, method: kernel ? "VmHWM" : "sampled" }));
