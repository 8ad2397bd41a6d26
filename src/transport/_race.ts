import { SmtpConnectionError, SmtpProtocolError } from "../errors.ts";

/**
 * Waiting for a runtime's promise within an `AbortSignal`, for the transports whose runtime calls
 * take no signal (Deno, Cloudflare Workers), and the connection errors transports share.
 *
 * @module
 */

/**
 * Settles as `promise` does, or rejects with the signal's reason as soon as it aborts, running
 * `onAbort` first (which closes the socket, so that the runtime's call ends too). The listener is
 * removed on every path.
 */
export function raceAbort<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  onAbort: () => void,
): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    onAbort();
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const abort = () => {
      onAbort();
      reject(signal.reason);
    };
    signal.addEventListener("abort", abort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", abort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", abort);
        reject(error);
      },
    );
  });
}

/** An error's message, or the thrown value as text. */
export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The error for a connection that broke in a read or (`while writing`) a write. */
export function connectionLost(when: "" | "while writing", error: unknown): SmtpConnectionError {
  const what = when ? `Connection lost ${when}` : "Connection lost";
  return new SmtpConnectionError(`${what}: ${describe(error)}`, "command", { cause: error });
}

/**
 * The error for `unread` bytes that arrived between the reply to STARTTLS and the handshake:
 * a server sends nothing there, so they may be an injected response.
 */
export function bytesBeforeHandshake(unread: number): SmtpProtocolError {
  return new SmtpProtocolError(
    `Server sent ${unread} bytes after its STARTTLS reply and before the TLS handshake ` +
      "(possible response injection): refusing to continue",
    "starttls",
  );
}
