/**
 * The in-process `smtp-server` used by the tests and `scripts/demo.ts`: npm `smtp-server` (a
 * development dependency) on 127.0.0.1 with the test certificates. Records every received message.
 */
import { SMTPServer, type SMTPServerOptions } from "smtp-server";
import type { AddressInfo } from "node:net";

const certs = new URL("../fixtures/certs/", import.meta.url);

/** Reads a fixture certificate or key as text. */
export function fixture(name: string): string {
  return Deno.readTextFileSync(new URL(name, certs));
}

/** The test CA, to pass as `tlsOptions.caCerts`. */
export const testCa: string = fixture("ca.pem");

/** One message the server received. */
export interface Received {
  from: string;
  to: string[];
  raw: Uint8Array;
  text: string;
  secure: boolean;
  user: string | undefined;
  /** MAIL FROM parameters as smtp-server parsed them (SIZE, BODY, SMTPUTF8, RET, ENVID...). */
  mailArgs: Record<string, unknown>;
  rcptArgs: Record<string, unknown>[];
}

/** A running test server. */
export interface TestServer {
  port: number;
  received: Received[];
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Which certificate the server presents. */
export type CertName = "server" | "wronghost" | "expired" | "selfsigned" | "unknown-ca";

/**
 * Starts `smtp-server` on 127.0.0.1 with a free port.
 *
 * @param options smtp-server options (`secure: true` for implicit TLS); `cert` picks the
 *   certificate; `rejectRecipients` lists addresses refused with 550.
 */
export async function startSmtpServer(
  options: SMTPServerOptions & { certName?: CertName; rejectRecipients?: string[] } = {},
): Promise<TestServer> {
  const received: Received[] = [];
  const { certName = "server", rejectRecipients = [], ...rest } = options;
  const server = new SMTPServer({
    key: fixture(`${certName}.key`),
    cert: fixture(`${certName}.pem`),
    authOptional: true,
    logger: false,
    disableReverseLookup: true,
    onRcptTo(address, _session, callback) {
      if (rejectRecipients.includes(address.address)) {
        const error = new Error("5.1.1 No such user here") as Error & { responseCode: number };
        error.responseCode = 550;
        return callback(error);
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Uint8Array[] = [];
      stream.on("data", (chunk: Uint8Array) => chunks.push(chunk));
      stream.on("end", () => {
        const size = chunks.reduce((n, c) => n + c.length, 0);
        const raw = new Uint8Array(size);
        let offset = 0;
        for (const chunk of chunks) {
          raw.set(chunk, offset);
          offset += chunk.length;
        }
        const envelope = session.envelope;
        received.push({
          from: envelope.mailFrom ? envelope.mailFrom.address : "",
          to: envelope.rcptTo.map((r) => r.address),
          raw,
          text: new TextDecoder().decode(raw),
          secure: session.secure,
          user: session.user as string | undefined,
          mailArgs: (envelope.mailFrom ? envelope.mailFrom.args : {}) as Record<string, unknown>,
          rcptArgs: envelope.rcptTo.map((r) => r.args as Record<string, unknown>),
        });
        if ((stream as unknown as { sizeExceeded?: boolean }).sizeExceeded) {
          const error = new Error("Message too big") as Error & { responseCode: number };
          error.responseCode = 552;
          return callback(error);
        }
        callback(null, "Message queued as test-" + received.length);
      });
    },
    ...rest,
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  server.on("error", () => {});
  const port = (server.server.address() as AddressInfo).port;
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return { port, received, close, [Symbol.asyncDispose]: close };
}

/** What smtp-server hands to `onAuth` (its types leave it untyped). */
export interface AuthSession {
  method: string;
  username?: string;
  password?: string;
  accessToken?: string;
  validatePassword?: (password: string) => boolean;
}
