/**
 * TLS with `node:tls`: the client's options mapped to Node's (certificates and host name always
 * verified), the handshake, and what a secured socket tells about its session.
 *
 * @module
 */

import { isIP, type Socket } from "node:net";
import * as tls from "node:tls";
import { SmtpTlsError } from "../errors.ts";
import { withAbort } from "./_node_connect.ts";
import { describe, NodeConnection } from "./_node_connection.ts";
import type { TlsConnectOptions, TlsInfo } from "./types.ts";

/** The root certificates to trust beside `caCerts`: the store Node was configured with. */
function defaultRoots(): readonly string[] {
  const getCaCertificates = (tls as { getCACertificates?: (type?: string) => string[] })
    .getCACertificates;
  return typeof getCaCertificates === "function"
    ? getCaCertificates("default")
    : tls.rootCertificates;
}

/** Formats a certificate subject as `CN=mail.example.com, O=Example`. */
function formatSubject(subject: object): string {
  return (Object.entries(subject) as [string, unknown][])
    .filter(([, value]) => typeof value === "string" || Array.isArray(value))
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join("+") : value}`)
    .join(", ");
}

/** What a secured socket tells about its session: protocol, cipher, peer subject, ALPN. */
export function tlsInfo(socket: tls.TLSSocket): TlsInfo {
  const info: {
    protocol?: string;
    cipher?: string;
    peerSubject?: string;
    alpnProtocol?: string | null;
  } = {};
  const protocol = socket.getProtocol();
  if (protocol) info.protocol = protocol;
  const cipher = socket.getCipher()?.name;
  if (cipher) info.cipher = cipher;
  const subject: object | undefined = socket.getPeerCertificate()?.subject;
  if (subject) {
    const formatted = formatSubject(subject);
    if (formatted) info.peerSubject = formatted;
  }
  const alpn = socket.alpnProtocol;
  info.alpnProtocol = typeof alpn === "string" ? alpn : null;
  return info;
}

/**
 * Secures `socket` with TLS and waits for the handshake. Certificates and the host name are
 * always verified; `caCerts` are trusted in addition to the default roots.
 */
export function secure(socket: Socket, options: TlsConnectOptions): Promise<NodeConnection> {
  const { serverName, caCerts, clientCertificate, signal } = options;
  let tlsSocket: tls.TLSSocket | undefined;
  const destroy = () => {
    tlsSocket?.destroy();
    socket.destroy();
  };
  // Once wrapped, the socket's failures surface through the TLS socket.
  socket.on("error", () => {});
  return withAbort<NodeConnection>(signal, destroy, (resolve, reject) => {
    const init: tls.ConnectionOptions = {
      socket,
      rejectUnauthorized: true,
      // Node checks the name given as `servername` or `host`; with neither (an IP address,
      // where SNI is not allowed) it would check "localhost". Check the name asked for.
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(serverName, cert),
    };
    if (!isIP(serverName)) init.servername = serverName;
    if (caCerts?.length) init.ca = [...defaultRoots(), ...caCerts];
    if (clientCertificate) {
      init.cert = clientCertificate.cert;
      init.key = clientCertificate.key;
    }
    let secured: tls.TLSSocket;
    try {
      secured = tls.connect(init);
    } catch (error) {
      socket.destroy();
      reject(new SmtpTlsError(`TLS setup failed: ${describe(error)}`, { cause: error }));
      return () => {};
    }
    tlsSocket = secured;
    const onSecure = () => {
      secured.setNoDelay(true);
      resolve(new NodeConnection(secured, tlsInfo(secured)));
    };
    const onError = (error: Error) => {
      destroy();
      reject(new SmtpTlsError(`TLS handshake failed: ${describe(error)}`, { cause: error }));
    };
    const onClose = () => onError(new Error("the server closed the connection"));
    secured.once("secureConnect", onSecure);
    secured.once("error", onError);
    secured.once("close", onClose);
    return () => {
      secured.off("secureConnect", onSecure);
      secured.off("error", onError);
      secured.off("close", onClose);
    };
  });
}
