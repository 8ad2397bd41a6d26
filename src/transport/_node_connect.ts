/**
 * Opening a TCP connection with `node:net`, its reads through an `onread` relay, bounded by the
 * caller's signal.
 *
 * @module
 */

import { connect as netConnect, type Socket } from "node:net";
import { SmtpConnectionError } from "../errors.ts";
import { describe, type ReadRelay } from "./_node_connection.ts";
import type { ConnectOptions } from "./types.ts";

/**
 * Runs `start` with a settle function, and rejects with the signal's reason when it aborts,
 * running `onAbort` first. The abort listener is removed on every path.
 */
export function withAbort<T>(
  signal: AbortSignal | undefined,
  onAbort: () => void,
  start: (resolve: (value: T) => void, reject: (error: unknown) => void) => () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal?.aborted) {
      onAbort();
      reject(signal.reason);
      return;
    }
    let cleanup = (): void => {};
    const abort = () => {
      cleanup();
      onAbort();
      reject(signal!.reason);
    };
    const settle = <A>(fn: (arg: A) => void) => (arg: A) => {
      signal?.removeEventListener("abort", abort);
      cleanup();
      fn(arg);
    };
    signal?.addEventListener("abort", abort, { once: true });
    cleanup = start(settle(resolve), settle(reject));
  });
}

/** Opens a TCP connection that reads with `onread`, through `relay`. */
export function connectTcp(options: ConnectOptions, relay: ReadRelay): Promise<Socket> {
  const { hostname, port, signal } = options;
  let socket: Socket | undefined;
  return withAbort<Socket>(signal, () => socket?.destroy(), (resolve, reject) => {
    const tcp = netConnect({
      ...(options.path !== undefined ? { path: options.path } : { host: hostname, port }),
      onread: { buffer: relay.buffer, callback: relay.callback },
    });
    socket = tcp;
    const onConnect = () => {
      tcp.setNoDelay(true);
      resolve(tcp);
    };
    const onError = (error: Error) => {
      tcp.destroy();
      reject(
        new SmtpConnectionError(
          `Cannot connect to ${options.path ?? `${hostname}:${port}`}: ${describe(error)}`,
          "connect",
          { cause: error },
        ),
      );
    };
    tcp.once("connect", onConnect);
    tcp.once("error", onError);
    return () => {
      tcp.off("connect", onConnect);
      tcp.off("error", onError);
    };
  });
}
