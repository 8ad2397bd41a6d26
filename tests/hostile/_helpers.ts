/**
 * Hostile and broken servers, played exactly by scripted loopback servers, one file per kind of
 * misbehaviour (tls, stalls, oversized replies, refusals, garbage, slow replies, EHLO refused,
 * quit, AUTH challenges, unsolicited replies). For each one the client must fail with the right
 * error class (or cope, where coping is right), close its socket, leave no timer behind (the
 * test helper's sanitizers check that) and not loop: every test counts the connections it got.
 * Faults during a transaction, and what they mean for delivery, are in tests/faults/.
 *
 * This file holds what they share: client options for a scripted server, a server side that
 * waits for the client to close, a flood of bytes, a transport that counts what the client
 * reads, and typed error checks.
 */

import assert from "node:assert/strict";
import type { ClientOptions, SmtpError } from "../../mod.ts";
import { defaultTransport } from "../../src/transport/default.ts";
import type { Connection, Transport } from "../../src/transport/types.ts";
import { fixture } from "../_helpers/smtp_server.ts";
import { type ScriptedConnection, startScriptedServer } from "../_helpers/scripted_server.ts";

export const encoder = new TextEncoder();
export const tlsCert = { cert: fixture("server.pem"), key: fixture("server.key") };
export const password = "hunter2-never-on-the-wire";
export const envelope = { from: "a@example.com", to: ["b@example.com"] };
export const raw = "From: a@example.com\r\nTo: b@example.com\r\nSubject: hostile\r\n\r\nHello\r\n";

export function plain(port: number, extra: Partial<ClientOptions> = {}): ClientOptions {
  return {
    hostname: "127.0.0.1",
    port,
    tls: "none",
    clientName: "client.postie.test",
    ...extra,
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Server side: waits until the client closes the connection, reading (and never answering)
 * whatever it still sends. After `ms` the server gives up and closes by itself; `closed` then
 * says false. No read is left pending either way.
 */
export async function clientCloses(
  conn: ScriptedConnection,
  ms = 3000,
): Promise<{ closed: boolean; lines: string[] }> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, ms);
  const lines: string[] = [];
  try {
    while (true) {
      const line = await conn.readLine();
      if (line === null) break;
      lines.push(line);
    }
  } finally {
    clearTimeout(timer);
  }
  return { closed: !timedOut, lines };
}

/**
 * A scripted server whose one connection plays `script`, then waits for the client to close it
 * ({@linkcode clientCloses}); `act` runs the client against its port and must fail. Asserts what
 * every such test does (the client closed its socket; one connection, no retry) and returns the
 * error, the lines the client still sent after the script, and all it sent.
 */
export async function failsOnOneConnection(
  script: (conn: ScriptedConnection) => Promise<void>,
  act: (port: number) => Promise<unknown>,
): Promise<{ error: unknown; lines: string[]; received: string }> {
  let after: { closed: boolean; lines: string[] } | undefined;
  await using server = startScriptedServer(async (conn) => {
    await script(conn);
    after = await clientCloses(conn);
  });
  const error = await rejection(act(server.port));
  await server.close();
  assert.ok(after?.closed, "the client kept the connection open");
  assert.equal(server.connections.length, 1);
  return { error, lines: after!.lines, received: server.connections[0]!.received };
}

/**
 * Server side: writes `total` bytes made by `chunk(i)` until the client stops taking them.
 * Returns how many bytes the kernel accepted before the write failed.
 */
export async function flood(
  conn: ScriptedConnection,
  chunk: (i: number) => Uint8Array,
  total: number,
): Promise<{ written: number; failed: boolean }> {
  let written = 0;
  for (let i = 0; written < total; i++) {
    const bytes = chunk(i);
    try {
      await conn.send(bytes);
    } catch {
      return { written, failed: true };
    }
    written += bytes.length;
  }
  return { written, failed: false };
}

/** A transport that counts what the client reads, to show that it stops reading. */
export function countingTransport(): Transport & { bytesRead: number; connections: Connection[] } {
  const counter = {
    bytesRead: 0,
    connections: [] as Connection[],
    connect: async (options: Parameters<Transport["connect"]>[0]) =>
      wrap(
        await defaultTransport.connect(options),
      ),
    connectTls: async (options: Parameters<Transport["connectTls"]>[0]) =>
      wrap(await defaultTransport.connectTls(options)),
    startTls: () => Promise.reject(new TypeError("STARTTLS is not used with this transport")),
  };
  function wrap(inner: Connection): Connection {
    const connection: Connection = {
      read: async (signal) => {
        const chunk = await inner.read(signal);
        if (chunk) counter.bytesRead += chunk.length;
        return chunk;
      },
      write: (data, signal) => inner.write(data, signal),
      close: () => inner.close(),
      get closed() {
        return inner.closed;
      },
      ...(inner.tls ? { tls: inner.tls } : {}),
      ...(inner.localAddress ? { localAddress: inner.localAddress } : {}),
    };
    counter.connections.push(connection);
    return connection;
  }
  return counter;
}

/** Asserts an error's class and phase, and returns it typed. */
export function check<T extends SmtpError>(
  error: unknown,
  type: new (...args: never[]) => T,
  phase: SmtpError["phase"],
): T {
  assert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
  assert.equal(error.phase, phase, String(error));
  return error;
}

export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected a rejection");
}
