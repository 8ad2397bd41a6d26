/**
 * The Node.js transport: `node:net` and `node:tls`. The npm build loads it through
 * `default_node.ts`; on Deno only the loopback listener of the test aids (`listen.ts`) uses it,
 * for the server's side of its sockets.
 *
 * The parts: {@linkcode NodeConnection} (`_node_connection.ts`, the socket behind the pull-style
 * `Connection`), opening TCP (`_node_connect.ts`), TLS (`_node_tls.ts`) and files
 * (`_node_files.ts`).
 *
 * @module
 */

import { hostname as osHostname } from "node:os";
import { connectTcp } from "./_node_connect.ts";
import { NodeConnection, ReadRelay } from "./_node_connection.ts";
import { secure } from "./_node_tls.ts";
import type { Connection, ConnectOptions, TlsConnectOptions, Transport } from "./types.ts";

export { nodeOpenFile } from "./_node_files.ts";
export { NodeConnection } from "./_node_connection.ts";
export { tlsInfo } from "./_node_tls.ts";

/** The Node.js implementation of {@linkcode Transport}. */
export const nodeTransport: Transport = {
  async connect(options: ConnectOptions): Promise<Connection> {
    const relay = new ReadRelay();
    return new NodeConnection(await connectTcp(options, relay), undefined, relay);
  },

  async connectTls(options: ConnectOptions & TlsConnectOptions): Promise<Connection> {
    // The TLS socket reads from the TCP socket's handle itself: nothing reaches the relay.
    const socket = await connectTcp(options, new ReadRelay());
    return await secure(socket, options);
  },

  async startTls(connection: Connection, options: TlsConnectOptions): Promise<Connection> {
    if (!(connection instanceof NodeConnection)) {
      throw new TypeError("Cannot start TLS: the connection was not opened by the Node transport");
    }
    return await secure(connection.detach(), options);
  },

  hostname(): string | undefined {
    try {
      return osHostname();
    } catch {
      return undefined;
    }
  },
};
