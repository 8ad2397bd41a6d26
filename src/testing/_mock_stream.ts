/**
 * The mock server's end of a connection, in memory or on a socket, with STARTTLS where the
 * stream allows it.
 *
 * @module
 */

import type { AcceptedConnection } from "../transport/listen.ts";
import type { TlsInfo } from "../transport/types.ts";
import { type MemoryPeer, SIMULATED_TLS } from "./memory_transport.ts";

/** The server's end of a connection, in memory or on a socket. */
export interface ServerStream {
  read(): Promise<Uint8Array | null>;
  write(data: Uint8Array): Promise<void>;
  close(): void;
  readonly tls: TlsInfo | undefined;
  /** Writes the 220 reply, then secures the stream; `undefined` where TLS is not available. */
  readonly startTls: ((reply: Uint8Array) => Promise<ServerStream>) | undefined;
}

export function memoryStream(peer: MemoryPeer): ServerStream {
  let upgraded = false;
  const stream: ServerStream = {
    read: () => peer.read(),
    write: (data) => peer.write(data),
    close: () => peer.close(),
    get tls() {
      return peer.tls ?? (upgraded ? SIMULATED_TLS : undefined);
    },
    startTls: async (reply) => {
      await peer.write(reply);
      upgraded = true;
      return stream;
    },
  };
  return stream;
}

export function socketStream(connection: AcceptedConnection, canStartTls: boolean): ServerStream {
  return {
    read: () => connection.read(),
    write: (data) => connection.write(data),
    close: () => connection.close(),
    tls: connection.tls,
    startTls: canStartTls && !connection.tls
      ? async (reply) => socketStream(await connection.startTls(reply), false)
      : undefined,
  };
}
