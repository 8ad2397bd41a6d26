/**
 * Small helpers shared by the SASL mechanisms: UTF-8, base64 for short exchange lines, hex.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 bytes of `text`. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Text of UTF-8 `bytes`. */
export function text(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Base64 of a short byte string (SASL lines are small: no streaming needed). */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** Decodes base64; throws a `SyntaxError` on anything that is not base64. */
export function fromBase64(value: string): Uint8Array {
  const trimmed = value.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(trimmed) || trimmed.length % 4 === 1) {
    throw new SyntaxError("Server challenge is not valid base64");
  }
  const binary = atob(trimmed);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Lower-case hex of `bytes`. */
export function hex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

/** Joins byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** A random token of printable characters without commas (SASL nonces). */
export function randomNonce(bytes = 18): string {
  return toBase64(crypto.getRandomValues(new Uint8Array(bytes))).replace(/[+/=,]/g, "x");
}

/** Escapes `=` and `,` in a SASL name (RFC 5802 saslname, RFC 7628 gs2 authzid). */
export function saslName(name: string): string {
  return name.replaceAll("=", "=3D").replaceAll(",", "=2C");
}

/** Throws when a credential carries a character that would break the exchange. */
export function assertNoControl(value: string, what: string): void {
  // deno-lint-ignore no-control-regex -- control characters are exactly what is refused
  if (/[\0\r\n\x01]/.test(value)) {
    throw new TypeError(`Invalid ${what}: contains a control character`);
  }
}
