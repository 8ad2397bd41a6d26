/**
 * A loopback TCP listener with `node:net` and `node:tls`, for the server side of the test aids
 * (`MockSmtpServer.listen()`): plain connections that can be upgraded with STARTTLS, or implicit
 * TLS. Deno runs `node:net` and `node:tls` servers too, so one implementation serves both
 * runtimes. Accepted sockets are read pull-style, like the client's ({@linkcode NodeConnection}).
 *
 * @module
 */

import { createServer as createNetServer, type Server, type Socket } from "node:net";
import * as tls from "node:tls";
import { NodeConnection, tlsInfo } from "./node.ts";
import type { Connection } from "./types.ts";

/** A PEM certificate (chain) and its private key, for the server's side of TLS. */
export interface ServerCertificate {
  /** The PEM certificate, optionally followed by its chain. */
  readonly cert: string;
  /** The PEM private key. */
  readonly key: string;
}

/** Where and how to listen. */
export interface ListenOptions {
  /** The address to bind. @default {"127.0.0.1"} */
  readonly hostname?: string;
  /** The port; 0 picks a free one. @default {0} */
  readonly port?: number;
  /** The certificate for STARTTLS and implicit TLS; without it, no TLS. */
  readonly certificate?: ServerCertificate;
  /** TLS from the first byte (needs `certificate`). @default {false} */
  readonly implicitTls?: boolean;
}

/** The server's end of an accepted connection. */
export interface AcceptedConnection extends Connection {
  /**
   * Writes `reply` (the 220 to STARTTLS) in clear, then runs the TLS handshake as the server.
   * The old connection must not be used afterwards. Rejects when TLS is not configured, when the
   * client sent more bytes before the handshake, or when the handshake fails.
   */
  startTls(reply: Uint8Array): Promise<AcceptedConnection>;
}

/** A listening socket. */
export interface Listener extends AsyncDisposable {
  /** The bound address. */
  readonly hostname: string;
  /** The bound port. */
  readonly port: number;
  /** Stops listening and destroys every accepted connection. */
  close(): Promise<void>;
}

class Accepted extends NodeConnection implements AcceptedConnection {
  readonly #context: tls.SecureContext | undefined;
  readonly #track: (socket: Socket) => void;

  constructor(
    socket: Socket,
    context: tls.SecureContext | undefined,
    track: (socket: Socket) => void,
    info?: Connection["tls"],
  ) {
    super(socket, info);
    this.#context = context;
    this.#track = track;
  }

  startTls(reply: Uint8Array): Promise<AcceptedConnection> {
    if (!this.#context || this.tls) {
      return Promise.reject(new TypeError("Cannot start TLS: not available on this connection"));
    }
    let socket: Socket;
    try {
      socket = this.detach();
    } catch (error) {
      return Promise.reject(error);
    }
    socket.on("error", () => {});
    socket.write(reply);
    // Wrapped in the same tick: the client's handshake goes to the TLS socket, not to `data`.
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: this.#context });
    this.#track(secure);
    return new Promise<AcceptedConnection>((resolve, reject) => {
      const fail = (error: unknown) => {
        cleanup();
        secure.destroy();
        socket.destroy();
        reject(error);
      };
      const onClose = () =>
        fail(new Error("The client closed the connection during the handshake"));
      const onSecure = () => {
        cleanup();
        resolve(new Accepted(secure, this.#context, this.#track, tlsInfo(secure)));
      };
      const cleanup = () => {
        secure.off("secure", onSecure);
        secure.off("error", fail);
        secure.off("close", onClose);
      };
      secure.once("secure", onSecure);
      secure.once("error", fail);
      secure.once("close", onClose);
    });
  }
}

/**
 * Listens on a TCP port and hands every accepted connection to `onConnection`.
 *
 * @param options Address, port and TLS.
 * @param onConnection Called with the server's end of each connection (after the handshake
 *   with implicit TLS).
 * @returns The listener, once it is bound.
 */
export async function listen(
  options: ListenOptions,
  onConnection: (connection: AcceptedConnection) => void,
): Promise<Listener> {
  const { hostname = "127.0.0.1", port = 0, certificate, implicitTls = false } = options;
  if (implicitTls && !certificate) {
    throw new TypeError("Cannot listen with implicit TLS: no certificate was given");
  }
  const context = certificate
    ? tls.createSecureContext({ cert: certificate.cert, key: certificate.key })
    : undefined;
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  };
  let server: Server;
  if (implicitTls) {
    const tlsServer = tls.createServer(
      { cert: certificate!.cert, key: certificate!.key },
      (socket) => {
        socket.on("error", () => {});
        onConnection(new Accepted(socket, context, track, tlsInfo(socket)));
      },
    );
    tlsServer.on("tlsClientError", () => {});
    server = tlsServer;
  } else {
    server = createNetServer((socket) => {
      socket.setNoDelay(true);
      onConnection(new Accepted(socket, context, track));
    });
  }
  server.on("connection", (socket: Socket) => track(socket));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", () => {});
  const address = server.address();
  const bound = typeof address === "object" && address ? address.port : port;
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
  return { hostname, port: bound, close, [Symbol.asyncDispose]: close };
}
