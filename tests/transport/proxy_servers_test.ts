/**
 * `proxy` through real proxies from Debian packages, started by the tests on loopback ports from
 * a private folder: dante-server (SOCKS5, with and without RFC 1929 username and password, socks5
 * and socks5h) and tinyproxy (HTTP CONNECT, with and without Basic authentication), each carrying
 * a STARTTLS and an implicit TLS session to a TLS SMTP server on loopback (the mock server of the
 * test aids, with the test CA's certificate for localhost), delivery checked there. A proxy that
 * cannot start is skipped with the reason printed.
 */
import assert from "node:assert/strict";
import { sendMail, SmtpConnectionError } from "../../mod.ts";
import { MockSmtpServer } from "../../src/testing/mod.ts";
import { test } from "../_helpers/test.ts";
import { fixture, testCa } from "../_helpers/smtp_server.ts";
import {
  HTTP_USER,
  type RealProxy,
  SOCKS_USER,
  startDante,
  startTinyproxy,
} from "./_real_proxies.ts";

const certificate = { cert: fixture("server.pem"), key: fixture("server.key") };

function userinfo(user: { username: string; password: string }): string {
  return `${encodeURIComponent(user.username)}:${encodeURIComponent(user.password)}`;
}

/** Sends over STARTTLS and implicit TLS through `proxy` and checks both arrived over TLS. */
async function deliverThrough(
  proxyUrl: string,
  label: string,
  hostname = "localhost",
): Promise<void> {
  await using server = new MockSmtpServer({ certificate });
  const starttls = (await server.listen()).port;
  const implicit = (await server.listen({ implicitTls: true })).port;
  for (const [tls, port] of [["starttls", starttls], ["implicit", implicit]] as const) {
    const result = await sendMail(
      {
        hostname,
        port,
        tls,
        proxy: proxyUrl,
        tlsOptions: { caCerts: [testCa], serverName: "localhost" },
      },
      {
        from: "a@postie.test",
        to: "b@postie.test",
        subject: `${label} ${tls}`,
        text: "Through a real proxy",
      },
    );
    assert.equal(result.accepted.length, 1);
  }
  assert.deepEqual(
    server.messages.map((m) => m.headers.get("Subject")),
    [`${label} starttls`, `${label} implicit`],
  );
  assert.ok(server.messages.every((m) => m.tls), "both sessions were encrypted end to end");
}

/** Runs `fn` with a started proxy, or prints why it is skipped. */
async function withProxy(
  what: string,
  starting: Promise<RealProxy>,
  fn: (proxy: { port: number }) => Promise<void>,
): Promise<void> {
  const proxy = await starting;
  if ("reason" in proxy) {
    console.log(`PROXY SKIPPED (${what}): ${proxy.reason}`);
    return;
  }
  console.log(`${what}: ${proxy.version} on 127.0.0.1:${proxy.port}`);
  try {
    await fn(proxy);
  } catch (error) {
    console.log(`${what} log:\n${(await proxy.log()).slice(-2000)}`);
    throw error;
  } finally {
    await proxy.stop();
  }
}

test("dante-server without authentication carries STARTTLS and implicit TLS (socks5, socks5h)", async () => {
  await withProxy("danted, method none", startDante("none"), async ({ port }) => {
    // socks5: the address given, as an IPv4 address (dante's external side is 127.0.0.1).
    await deliverThrough(`socks5://127.0.0.1:${port}`, "socks5", "127.0.0.1");
    await deliverThrough(`socks5h://127.0.0.1:${port}`, "socks5h");
  });
});

test("dante-server with username and password (RFC 1929) carries both; wrong ones are refused", async () => {
  await withProxy("danted, method username", startDante("username"), async ({ port }) => {
    await deliverThrough(`socks5h://${userinfo(SOCKS_USER)}@127.0.0.1:${port}`, "socks5 user");
    await assert.rejects(
      sendMail(
        { hostname: "localhost", port: 25, proxy: `socks5h://127.0.0.1:${port}` },
        { from: "a@postie.test", to: "b@postie.test", text: "x" },
      ),
      (error: Error) =>
        error instanceof SmtpConnectionError &&
        /requires authentication: give a username and password/.test(error.message),
    );
    await assert.rejects(
      sendMail(
        {
          hostname: "localhost",
          port: 25,
          proxy: `socks5h://${SOCKS_USER.username}:wrong@127.0.0.1:${port}`,
        },
        { from: "a@postie.test", to: "b@postie.test", text: "x" },
      ),
      (error: Error) =>
        error instanceof SmtpConnectionError &&
        /refused the username and password/.test(error.message) &&
        !error.message.includes("wrong"),
    );
  });
});

test("tinyproxy's CONNECT carries STARTTLS and implicit TLS", async () => {
  await withProxy("tinyproxy", startTinyproxy(false), async ({ port }) => {
    await deliverThrough(`http://127.0.0.1:${port}`, "http");
  });
});

test("tinyproxy with Basic authentication carries both; without credentials it answers 407", async () => {
  await withProxy("tinyproxy, BasicAuth", startTinyproxy(true), async ({ port }) => {
    await deliverThrough(`http://${userinfo(HTTP_USER)}@127.0.0.1:${port}`, "http basic");
    await assert.rejects(
      sendMail(
        { hostname: "localhost", port: 25, proxy: `http://127.0.0.1:${port}` },
        { from: "a@postie.test", to: "b@postie.test", text: "x" },
      ),
      (error: Error) =>
        error instanceof SmtpConnectionError &&
        /HTTP 407 .*the proxy requires credentials/.test(error.message),
    );
  });
});
