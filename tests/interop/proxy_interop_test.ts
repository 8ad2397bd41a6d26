/**
 * The proxies against the real MTA: Postfix (started by `tests/interop/setup.sh`) reached through
 * dante-server (SOCKS5 and SOCKS5h, with and without RFC 1929 username and password) and tinyproxy
 * (HTTP CONNECT, with and without Basic authentication), over STARTTLS and implicit TLS, logged
 * in, each message found in the recipient's Maildir. Skipped with a printed reason when the MTA
 * or a proxy is not there.
 */
import assert from "node:assert/strict";
import { sendMail } from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { testCa } from "../_helpers/smtp_server.ts";
import {
  HTTP_USER,
  type RealProxy,
  SOCKS_USER,
  startDante,
  startTinyproxy,
} from "../transport/_real_proxies.ts";

interface InteropEnv {
  hostname: string;
  ports: { starttls: number; implicit: number };
  user: string;
  password: string;
  maildir: string;
  postfixVersion: string;
}

const stateDir = Deno.env.get("POSTIE_INTEROP_DIR") ?? "/tmp/postie-interop";

async function loadEnv(): Promise<InteropEnv | string> {
  try {
    const env: InteropEnv = JSON.parse(await Deno.readTextFile(`${stateDir}/interop.json`));
    (await Deno.connect({ hostname: "127.0.0.1", port: env.ports.starttls })).close();
    return env;
  } catch (error) {
    return `no MTA at ${stateDir} (run tests/interop/setup.sh): ${(error as Error).message}`;
  }
}

const loaded = await loadEnv();

async function delivered(env: InteropEnv, mark: string): Promise<void> {
  const folder = `${env.maildir}/alice/new`;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    try {
      for await (const entry of Deno.readDir(folder)) {
        if ((await Deno.readTextFile(`${folder}/${entry.name}`)).includes(mark)) return;
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`no message marked ${mark} in ${folder}`);
}

const userinfo = (user: { username: string; password: string }) =>
  `${encodeURIComponent(user.username)}:${encodeURIComponent(user.password)}@`;

const cases: [string, () => Promise<RealProxy>, (port: number) => string][] = [
  ["dante-server, socks5", () => startDante("none"), (p) => `socks5://127.0.0.1:${p}`],
  [
    "dante-server, socks5h with username and password",
    () => startDante("username"),
    (p) => `socks5h://${userinfo(SOCKS_USER)}127.0.0.1:${p}`,
  ],
  ["tinyproxy, CONNECT", () => startTinyproxy(false), (p) => `http://127.0.0.1:${p}`],
  [
    "tinyproxy, CONNECT with Basic authentication",
    () => startTinyproxy(true),
    (p) => `http://${userinfo(HTTP_USER)}127.0.0.1:${p}`,
  ],
];

for (const [what, start, url] of cases) {
  const name = `[interop] through ${what}: STARTTLS and implicit TLS to Postfix, delivered`;
  if (typeof loaded === "string") {
    console.log(`INTEROP SKIPPED: ${what}: ${loaded}`);
    test(name, { ignore: true }, () => {});
    continue;
  }
  const env = loaded;
  test(name, async () => {
    const proxy = await start();
    if ("reason" in proxy) {
      console.log(`PROXY SKIPPED (${what}): ${proxy.reason}`);
      return;
    }
    try {
      for (const tls of ["starttls", "implicit"] as const) {
        const mark = crypto.randomUUID();
        // socks5 (resolved here) gets the IPv4 address; the certificate is checked for localhost.
        const hostname = url(0).startsWith("socks5:") ? "127.0.0.1" : env.hostname;
        const result = await sendMail({
          hostname,
          port: env.ports[tls],
          tls,
          proxy: url(proxy.port),
          tlsOptions: { caCerts: [testCa], serverName: env.hostname },
          auth: { username: env.user, password: env.password },
          timeouts: { greetingMs: 10_000, commandMs: 10_000, dataEndMs: 20_000 },
        }, {
          from: env.user,
          to: env.user,
          subject: `${what} ${tls} ${mark}`,
          text: `Through ${what} (${mark})`,
        });
        assert.equal(result.accepted.length, 1);
        await delivered(env, mark);
      }
    } finally {
      await proxy.stop();
    }
  });
}
