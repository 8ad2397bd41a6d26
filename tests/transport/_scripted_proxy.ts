/**
 * A scripted proxy for tests: a raw loopback listener that runs a script per connection, with
 * exact reads, and a relay to a real target once the script has answered.
 */

/** The proxy side of one client connection. */
export class ProxySide {
  readonly conn: Deno.TcpConn;
  #buffer = new Uint8Array(0);
  /** Every byte the client sent before the relay started. */
  received: number[] = [];

  constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  /** Exactly `n` bytes; `null` when the client closed first. */
  async read(n: number): Promise<Uint8Array | null> {
    while (this.#buffer.length < n) {
      const chunk = new Uint8Array(4096);
      const got = await this.conn.read(chunk).catch(() => null);
      if (got === null) return null;
      this.received.push(...chunk.subarray(0, got));
      const joined = new Uint8Array(this.#buffer.length + got);
      joined.set(this.#buffer);
      joined.set(chunk.subarray(0, got), this.#buffer.length);
      this.#buffer = joined;
    }
    const bytes = this.#buffer.slice(0, n);
    this.#buffer = this.#buffer.slice(n);
    return bytes;
  }

  /** Bytes up to and including the first NUL. */
  async readToNul(): Promise<Uint8Array | null> {
    const out: number[] = [];
    while (true) {
      const byte = await this.read(1);
      if (byte === null) return null;
      out.push(byte[0]!);
      if (byte[0] === 0) return new Uint8Array(out);
    }
  }

  /** An HTTP request head, as text, up to the blank line. */
  async readHead(): Promise<string | null> {
    let text = "";
    while (!text.endsWith("\r\n\r\n")) {
      const byte = await this.read(1);
      if (byte === null) return null;
      text += String.fromCharCode(byte[0]!);
    }
    return text;
  }

  async write(data: Uint8Array | string | number[]): Promise<void> {
    const bytes = typeof data === "string"
      ? new TextEncoder().encode(data)
      : data instanceof Uint8Array
      ? data
      : new Uint8Array(data);
    let offset = 0;
    while (offset < bytes.length) offset += await this.conn.write(bytes.subarray(offset));
  }

  /**
   * Connects to `port` on 127.0.0.1 and relays both ways until either side ends. `first` is
   * written to the client before the relay (an answer, with bytes of the target's, say).
   */
  async relay(port: number, first?: (target: Deno.TcpConn) => Promise<Uint8Array>): Promise<void> {
    const target = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      if (first) await this.write(await first(target));
      const pump = async (from: Deno.Conn, to: Deno.Conn, buffered?: Uint8Array) => {
        try {
          if (buffered?.length) await to.write(buffered);
          const chunk = new Uint8Array(16384);
          while (true) {
            const n = await from.read(chunk);
            if (n === null) break;
            let offset = 0;
            while (offset < n) offset += await to.write(chunk.subarray(offset, n));
          }
        } catch {
          // one side went away
        } finally {
          try {
            to.closeWrite();
          } catch { /* closed */ }
        }
      };
      const buffered = this.#buffer;
      this.#buffer = new Uint8Array(0);
      await Promise.all([pump(this.conn, target, buffered), pump(target, this.conn)]);
    } finally {
      target.close();
    }
  }
}

/** A running scripted proxy. */
export interface ScriptedProxy {
  readonly port: number;
  readonly url: (scheme: string, userinfo?: string) => string;
  readonly sides: ProxySide[];
  readonly errors: unknown[];
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts a proxy on 127.0.0.1 that runs `script` for each connection, then closes it. */
export function startScriptedProxy(script: (side: ProxySide) => Promise<void>): ScriptedProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const sides: ProxySide[] = [];
  const errors: unknown[] = [];
  const running: Promise<void>[] = [];
  const open = new Set<Deno.TcpConn>();
  const accepting = (async () => {
    for await (const conn of listener) {
      const side = new ProxySide(conn);
      sides.push(side);
      open.add(conn);
      running.push(
        script(side).catch((error) => {
          errors.push(error);
        }).finally(() => {
          open.delete(conn);
          try {
            conn.close();
          } catch { /* closed */ }
        }),
      );
    }
  })().catch(() => {});
  const port = (listener.addr as Deno.NetAddr).port;
  const close = async () => {
    try {
      listener.close();
    } catch { /* closed */ }
    await accepting;
    await Promise.all(running);
    if (errors.length > 0) throw errors[0];
  };
  return {
    port,
    url: (scheme, userinfo) => `${scheme}://${userinfo ? `${userinfo}@` : ""}127.0.0.1:${port}`,
    sides,
    errors,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** A SOCKS5 server's part up to the CONNECT request: returns the request's address bytes. */
export async function socks5Accept(
  side: ProxySide,
  credentials?: { username: string; password: string },
): Promise<{ type: number; address: Uint8Array; port: number } | null> {
  const head = await side.read(2);
  if (!head) return null;
  const methods = await side.read(head[1]!);
  if (!methods) return null;
  if (credentials) {
    if (!methods.includes(2)) throw new Error("username/password not offered");
    await side.write([5, 2]);
    const [, ulen] = (await side.read(2))!;
    const user = new TextDecoder().decode((await side.read(ulen!))!);
    const [plen] = (await side.read(1))!;
    const pass = new TextDecoder().decode((await side.read(plen!))!);
    const ok = user === credentials.username && pass === credentials.password;
    await side.write([1, ok ? 0 : 1]);
    if (!ok) return null;
  } else {
    await side.write([5, 0]);
  }
  const request = (await side.read(4))!;
  const type = request[3]!;
  const length = type === 1 ? 4 : type === 4 ? 16 : (await side.read(1))![0]!;
  const address = (await side.read(length))!;
  const port = (await side.read(2))!;
  return { type, address, port: port[0]! * 256 + port[1]! };
}

/** A SOCKS5 success reply with a bound IPv4 address. */
export const SOCKS5_OK: number[] = [5, 0, 0, 1, 127, 0, 0, 1, 0, 0];
