/**
 * `proxy`: SOCKS5 (RFC 1928, RFC 1929), SOCKS5h, SOCKS4, SOCKS4a and HTTP CONNECT, against
 * scripted proxies on loopback that answer exactly, relay to a real TLS SMTP server (the mock
 * server of the test aids on a loopback port), or misbehave: every reply code, an unoffered
 * authentication method, garbage, a stall, a truncated reply, refusals with bodies, and bytes
 * pipelined after the answer.
 */
import assert from "node:assert/strict";
import { inspect } from "node:util";
import {
  sendMail,
  SmtpClient,
  SmtpConnectionError,
  SmtpPool,
  SmtpTimeoutError,
} from "../../mod.ts";
import { MockSmtpServer } from "../../src/testing/mod.ts";
import { parseProxy } from "../../src/transport/proxy.ts";
import { SOCKS4_REPLIES, SOCKS5_REPLIES } from "../../src/transport/_socks.ts";
import { test } from "../_helpers/test.ts";
import { fixture, testCa } from "../_helpers/smtp_server.ts";
import { type ProxySide, SOCKS5_OK, socks5Accept, startScriptedProxy } from "./_scripted_proxy.ts";

const certificate = { cert: fixture("server.pem"), key: fixture("server.key") };
const SECRET = "s3cret-PROXY-pw";
const message = (subject: string) => ({
  raw: `From: a@example.com\r\nSubject: ${subject}\r\n\r\nHello\r\n`,
  envelope: { from: "a@example.com", to: ["b@example.com"] },
});
const decoder = new TextDecoder();

/** Sends one message through `proxy` to `localhost:port`, certificate checked for localhost. */
function sendVia(proxy: string, port: number, tls: "starttls" | "implicit", subject = "x") {
  return sendMail(
    { hostname: "localhost", port, tls, proxy, tlsOptions: { caCerts: [testCa] } },
    message(subject),
  );
}

/** Asserts a proxy failure: an SmtpConnectionError in phase "connect" naming the proxy. */
async function assertProxyError(
  promise: Promise<unknown>,
  pattern: RegExp,
  port: number,
): Promise<SmtpConnectionError> {
  const error = await promise.then(() => assert.fail("expected a failure"), (e) => e);
  assert.ok(error instanceof SmtpConnectionError, String(error));
  assert.equal(error.phase, "connect");
  assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
  assert.match(error.message, pattern);
  assert.equal(error.message.includes(SECRET), false);
  return error;
}

test("parseProxy takes socks5, socks5h, socks4, socks4a and http URLs apart", () => {
  const cases: [string, object][] = [
    ["socks5://127.0.0.1:1080", { kind: "socks5", hostname: "127.0.0.1", port: 1080 }],
    ["socks5h://proxy.example:9050", { kind: "socks5h", hostname: "proxy.example", port: 9050 }],
    ["socks4://[::1]:1081", { kind: "socks4", hostname: "::1", port: 1081 }],
    ["socks4a://id@p.example", { kind: "socks4a", hostname: "p.example", port: 1080 }],
    ["http://p.example:3128", { kind: "http", hostname: "p.example", port: 3128 }],
    ["HTTP://p.example", { kind: "http", hostname: "p.example", port: 80 }],
  ];
  for (const [url, expected] of cases) {
    const spec = parseProxy(url);
    assert.deepEqual({ kind: spec.kind, hostname: spec.hostname, port: spec.port }, expected);
  }
  const spec = parseProxy(new URL(`socks5://us%40er:${SECRET}%21@127.0.0.1:1080`));
  assert.deepEqual(spec.credentials, { username: "us@er", password: `${SECRET}!` });
  assert.equal(spec.display, "socks5://127.0.0.1:1080");
});

test("a bad proxy URL is a TypeError before any I/O, without its password", async () => {
  const bad = [
    "not a url",
    `https://u:${SECRET}@p.example`,
    `ftp://u:${SECRET}@p.example`,
    `socks5://u:${SECRET}@p.example/path`,
    `socks4://u:${SECRET}@p.example`,
    `socks5://:${SECRET}@p.example`,
    `http://u:${SECRET}%0d%0aX:1@p.example`,
  ];
  for (const proxy of bad) {
    const check = (error: Error) => error instanceof TypeError && !error.message.includes(SECRET);
    assert.throws(() => new SmtpPool({ hostname: "smtp.example.com", proxy }), check, proxy);
    await assert.rejects(SmtpClient.connect({ hostname: "smtp.example.com", proxy }), check);
  }
});

test("SOCKS5 carries STARTTLS end to end, the name resolved here; socks5h lets the proxy resolve it", async () => {
  await using server = new MockSmtpServer({ certificate });
  const { port } = await server.listen();
  const requests: { type: number; address: Uint8Array; port: number }[] = [];
  await using proxy = startScriptedProxy(async (side) => {
    const request = await socks5Accept(side);
    if (!request) return;
    requests.push(request);
    await side.write(SOCKS5_OK);
    await side.relay(port);
  });
  await sendVia(proxy.url("socks5"), port, "starttls", "via socks5");
  await sendVia(proxy.url("socks5h"), port, "starttls", "via socks5h");
  assert.deepEqual(server.messages.map((m) => m.headers.get("Subject")), [
    "via socks5",
    "via socks5h",
  ]);
  assert.ok(server.messages.every((m) => m.tls));
  // socks5: localhost resolved here (IPv4 or IPv6 address); socks5h: the name itself.
  assert.ok(requests[0]!.type === 1 || requests[0]!.type === 4);
  assert.equal(requests[1]!.type, 3);
  assert.equal(decoder.decode(requests[1]!.address), "localhost");
  assert.deepEqual(requests.map((r) => r.port), [port, port]);
  // Offered: "no authentication" only, as no credentials were given.
  assert.deepEqual(proxy.sides[0]!.received.slice(0, 3), [5, 1, 0]);
});

test("SOCKS5 with username and password (RFC 1929) carries implicit TLS", async () => {
  await using server = new MockSmtpServer({ certificate });
  const { port } = await server.listen({ implicitTls: true });
  await using proxy = startScriptedProxy(async (side) => {
    if (!await socks5Accept(side, { username: "ann", password: SECRET })) return;
    await side.write(SOCKS5_OK);
    await side.relay(port);
  });
  const transcript: string[] = [];
  await sendMail({
    hostname: "localhost",
    port,
    tls: "implicit",
    proxy: proxy.url("socks5h", `ann:${SECRET}`),
    tlsOptions: { caCerts: [testCa] },
    onTranscript: (event) => transcript.push(event.line),
  }, message("authenticated"));
  assert.equal(server.messages[0]!.headers.get("Subject"), "authenticated");
  assert.ok(server.messages[0]!.tls);
  assert.deepEqual(proxy.sides[0]!.received.slice(0, 4), [5, 2, 0, 2]);
  assert.equal(transcript.join("\n").includes(SECRET), false);
  // Refused credentials are named as such.
  await assertProxyError(
    sendVia(proxy.url("socks5", `ann:wrong-${SECRET}`), port, "implicit"),
    /refused the username and password/,
    proxy.port,
  );
});

test("every SOCKS5 reply code fails in words, naming the proxy and the target", async () => {
  let code = 0;
  await using proxy = startScriptedProxy(async (side) => {
    if (!await socks5Accept(side)) return;
    await side.write([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
  });
  for (code = 1; code <= 9; code++) {
    const words = SOCKS5_REPLIES[code] ?? "unknown reply code";
    await assertProxyError(
      sendVia(proxy.url("socks5h", `u:${SECRET}`), 2525, "starttls"),
      new RegExp(`localhost:2525: ${words} \\(SOCKS5 reply ${code}\\)`),
      proxy.port,
    );
  }
});

test("a SOCKS5 proxy that picks an unoffered method, or none, is refused", async () => {
  const answers = [[5, 2], [5, 0x80], [5, 0xff]];
  let answer: number[] = [];
  await using proxy = startScriptedProxy(async (side) => {
    await side.read(3);
    await side.write(answer);
    await side.read(1); // until the client closes
  });
  const expected = [
    /chose authentication method 2, which was not offered/,
    /chose authentication method 128, which was not offered/,
    /requires authentication: give a username and password in the proxy URL/,
  ];
  for (const [i, a] of answers.entries()) {
    answer = a;
    await assertProxyError(sendVia(proxy.url("socks5"), 25, "starttls"), expected[i]!, proxy.port);
  }
});

test("garbage, a truncated reply and an HTTP answer to SOCKS are protocol failures in words", async () => {
  const scripts: [(side: ProxySide) => Promise<void>, RegExp][] = [
    [async (side) => {
      await side.read(3);
      await side.write("HTTP/1.1 400 Bad Request\r\n\r\n");
    }, /did not answer as a SOCKS5 server \(got "HT", version byte 72\)/],
    [async (side) => {
      await socks5Accept(side);
      await side.write([5, 0, 0, 1, 127, 0]); // 6 of 10 bytes, then gone
    }, /closed the connection during the SOCKS5 CONNECT reply after 2 bytes/],
    [async (side) => {
      await socks5Accept(side);
      await side.write([5, 0, 0, 9, 1, 2, 3, 4, 5, 6]);
    }, /unknown address type 9/],
    [async (side) => {
      await side.read(3);
    }, /closed the connection during the SOCKS5 greeting/],
  ];
  for (const [script, pattern] of scripts) {
    await using proxy = startScriptedProxy(script);
    await assertProxyError(sendVia(proxy.url("socks5h"), 25, "starttls"), pattern, proxy.port);
  }
});

test("a stalled proxy times out within connectMs; an abort rejects with its reason", async () => {
  const release = Promise.withResolvers<void>();
  await using proxy = startScriptedProxy(async (side) => {
    await side.read(3);
    await release.promise;
  });
  const started = Date.now();
  await assert.rejects(
    sendMail({
      hostname: "localhost",
      port: 25,
      proxy: proxy.url("socks5h"),
      timeouts: { connectMs: 300 },
    }, message("x")),
    (error: Error) =>
      error instanceof SmtpTimeoutError && /Timed out after 300 ms/.test(error.message),
  );
  assert.ok(Date.now() - started < 3000);
  const controller = new AbortController();
  const reason = new Error("stop");
  setTimeout(() => controller.abort(reason), 100);
  await assert.rejects(
    SmtpClient.connect({ hostname: "localhost", port: 25, proxy: proxy.url("http") }, {
      signal: controller.signal,
    }),
    (error) => error === reason,
  );
  release.resolve();
});

test("SOCKS4 sends an IPv4 address and user id; SOCKS4a the name; 91-93 fail in words", async () => {
  await using server = new MockSmtpServer({ certificate });
  const { port } = await server.listen();
  let code = 90;
  const requests: Uint8Array[] = [];
  await using proxy = startScriptedProxy(async (side) => {
    const head = await side.read(8);
    if (!head) return;
    const user = (await side.readToNul())!;
    let name: Uint8Array = new Uint8Array(0);
    if (head[4] === 0 && head[5] === 0 && head[6] === 0 && head[7] !== 0) {
      name = (await side.readToNul())!;
    }
    requests.push(new Uint8Array([...head, ...user, ...name]));
    await side.write([0, code, 0, 0, 0, 0, 0, 0]);
    if (code === 90) await side.relay(port);
  });
  await sendVia(proxy.url("socks4", "postie"), port, "starttls", "socks4");
  await sendVia(proxy.url("socks4a"), port, "starttls", "socks4a");
  assert.equal(server.messages.length, 2);
  const p = [port >> 8, port & 0xff];
  assert.deepEqual(
    [...requests[0]!],
    [4, 1, ...p, 127, 0, 0, 1, ..."postie\0"].map(
      (c) => typeof c === "string" ? c.charCodeAt(0) : c,
    ),
  );
  assert.deepEqual(
    [...requests[1]!],
    [4, 1, ...p, 0, 0, 0, 1, 0, ..."localhost\0"].map(
      (c) => typeof c === "string" ? c.charCodeAt(0) : c,
    ),
  );
  for (code of [91, 92, 93, 17]) {
    const words = (SOCKS4_REPLIES[code] ?? "unknown reply code").replace(/[()]/g, "\\$&");
    await assertProxyError(
      sendVia(proxy.url("socks4a"), port, "starttls"),
      new RegExp(`${words} \\(SOCKS4 reply ${code}\\)`),
      proxy.port,
    );
  }
});

test("HTTP CONNECT with Basic authentication carries STARTTLS and implicit TLS", async () => {
  await using starttls = new MockSmtpServer({ certificate });
  await using implicit = new MockSmtpServer({ certificate });
  const ports = [
    (await starttls.listen()).port,
    (await implicit.listen({ implicitTls: true })).port,
  ];
  const heads: string[] = [];
  await using proxy = startScriptedProxy(async (side) => {
    const head = (await side.readHead())!;
    heads.push(head);
    const port = Number(/^CONNECT localhost:(\d+) HTTP\/1\.1\r\n/.exec(head)![1]);
    await side.write("HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\n");
    await side.relay(port);
  });
  await sendVia(proxy.url("http", `ann:${SECRET}`), ports[0]!, "starttls", "http starttls");
  await sendVia(proxy.url("http", `ann:${SECRET}`), ports[1]!, "implicit", "http implicit");
  assert.equal(starttls.messages[0]!.headers.get("Subject"), "http starttls");
  assert.equal(implicit.messages[0]!.headers.get("Subject"), "http implicit");
  const basic = `Proxy-Authorization: Basic ${btoa(`ann:${SECRET}`)}\r\n`;
  assert.equal(
    heads[0],
    `CONNECT localhost:${ports[0]} HTTP/1.1\r\nHost: localhost:${ports[0]}\r\n${basic}\r\n`,
  );
});

test("HTTP 407, 403 and 502 with bodies fail in words, 407 with a hint on the credentials", async () => {
  let status = "";
  await using proxy = startScriptedProxy(async (side) => {
    await side.readHead();
    const body = `<html><body>${status} ${"x".repeat(3000)}</body></html>`;
    await side.write(
      `HTTP/1.1 ${status}\r\nContent-Type: text/html\r\nContent-Length: ${body.length}\r\n` +
        `Proxy-Authenticate: Basic realm="p"\r\n\r\n${body}`,
    );
  });
  const cases: [string, string | undefined, RegExp][] = [
    [
      "407 Proxy Authentication Required",
      undefined,
      /HTTP 407 Proxy Authentication Required \(the proxy requires credentials: give them in the proxy URL/,
    ],
    [
      "407 Proxy Authentication Required",
      `ann:${SECRET}`,
      /HTTP 407 .*\(the proxy refused the credentials given/,
    ],
    [
      "403 Forbidden",
      undefined,
      /refused the tunnel to localhost:587: HTTP 403 Forbidden \(the proxy does not allow a tunnel to this host or port\)/,
    ],
    ["502 Bad Gateway", undefined, /HTTP 502 Bad Gateway \(the proxy could not reach the server\)/],
    ["418 I'm a teapot", undefined, /HTTP 418 I'm a teapot$/],
  ];
  for (const [answer, userinfo, pattern] of cases) {
    status = answer;
    const error = await assertProxyError(
      sendVia(proxy.url("http", userinfo), 587, "starttls"),
      pattern,
      proxy.port,
    );
    assert.equal(error.message.includes("<html>"), false);
  }
});

test("a non-HTTP answer, and a header without end, are refused", async () => {
  const cases: [string, RegExp][] = [
    [
      "SSH-2.0-OpenSSH_9.2\r\n\r\n",
      /did not answer as an HTTP proxy \(got "SSH-2.0-OpenSSH_9.2"\)/,
    ],
    [`HTTP/1.1 200 OK\r\nX: ${"y".repeat(20000)}`, /longer than 16384 bytes/],
  ];
  for (const [answer, pattern] of cases) {
    await using proxy = startScriptedProxy(async (side) => {
      await side.readHead();
      await side.write(answer);
      await side.read(1);
    });
    await assertProxyError(sendVia(proxy.url("http"), 587, "starttls"), pattern, proxy.port);
  }
});

test("bytes pipelined after the CONNECT answer are the greeting for STARTTLS, refused before implicit TLS", async () => {
  await using server = new MockSmtpServer({ certificate });
  const { port } = await server.listen();
  await using proxy = startScriptedProxy(async (side) => {
    await side.readHead();
    // The answer and the server's greeting in one write.
    await side.relay(port, async (target) => {
      const greeting = new Uint8Array(512);
      const n = (await target.read(greeting))!;
      return new Uint8Array([
        ...new TextEncoder().encode("HTTP/1.1 200 OK\r\n\r\n"),
        ...greeting.subarray(0, n),
      ]);
    });
  });
  await sendVia(proxy.url("http"), port, "starttls", "pipelined greeting");
  assert.equal(server.messages[0]!.headers.get("Subject"), "pipelined greeting");

  await using tls = new MockSmtpServer({ certificate });
  const implicitPort = (await tls.listen({ implicitTls: true })).port;
  await using injector = startScriptedProxy(async (side) => {
    await side.readHead();
    await side.write("HTTP/1.1 200 OK\r\n\r\n220 fake greeting\r\n");
    await side.read(1);
  });
  await assertProxyError(
    sendVia(injector.url("http"), implicitPort, "implicit"),
    /sent 19 bytes after its answer, before the TLS handshake: refusing to continue/,
    injector.port,
  );
  assert.equal(tls.messages.length, 0);
});

test("the proxy's password shows nowhere: errors, inspect of client and pool, transcript", async () => {
  await using server = new MockSmtpServer({ certificate });
  const { port } = await server.listen();
  await using proxy = startScriptedProxy(async (side) => {
    if (!await socks5Accept(side, { username: "ann", password: SECRET })) return;
    await side.write(SOCKS5_OK);
    await side.relay(port);
  });
  const url = proxy.url("socks5h", `ann:${SECRET}`);
  const lines: string[] = [];
  const options = {
    hostname: "localhost",
    port,
    proxy: url,
    tlsOptions: { caCerts: [testCa] },
    onTranscript: (event: { line: string }) => lines.push(event.line),
  };
  await using client = await SmtpClient.connect(options);
  await using pool = new SmtpPool({ ...options, proxy: new URL(url) });
  await pool.send(message("pool"));
  for (const value of [client, pool]) {
    for (
      const text of [
        String(value),
        JSON.stringify(value) ?? "",
        Deno.inspect(value, { depth: 10, showHidden: true, getters: true }),
        inspect(value, { depth: 10, showHidden: true }),
      ]
    ) {
      assert.equal(text.includes(SECRET), false, text);
    }
  }
  assert.equal(lines.join("\n").includes(SECRET), false);
  await client.quit();
});
