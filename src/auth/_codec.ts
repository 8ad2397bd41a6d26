/**
 * Small helpers shared by the SASL mechanisms: UTF-8, Latin-1, base64 for short exchange lines,
 * hex, nonces and SASL name escaping.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** UTF-8 bytes of `text`. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Text of UTF-8 `bytes` (invalid sequences become U+FFFD). */
export function text(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** True when every character of `value` is in ISO 8859-1 (U+0000 to U+00FF). */
export function isLatin1(value: string): boolean {
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 0xff) return false;
  return true;
}

/** ISO 8859-1 bytes of `value`, which must pass {@linkcode isLatin1}. */
export function latin1(value: string): Uint8Array {
  const bytes = new Uint8Array(value.length);
  for (let i = 0; i < value.length; i++) bytes[i] = value.charCodeAt(i);
  return bytes;
}

/** Base64 of a short byte string (SASL lines are small: no streaming needed). */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes base64; throws a `SyntaxError` on anything that is not base64. */
export function fromBase64(value: string): Uint8Array {
  const trimmed = value.trim();
  if (!BASE64.test(trimmed) || trimmed.length % 4 === 1) {
    throw new SyntaxError("Invalid base64 in the server's data");
  }
  const binary = atob(trimmed);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * The data of a success reply: `text` decoded when it is padded base64 of printable UTF-8
 * (such as `dj1ybWYuLi4=` for `v=rmf...`), else `undefined`. Ordinary reply text such as
 * `Accepted` is also valid base64, but decodes to bytes that are not printable text.
 */
export function successData(value: string): Uint8Array | undefined {
  const trimmed = value.trim();
  if (trimmed.length === 0 || trimmed.length % 4 !== 0 || !BASE64.test(trimmed)) return undefined;
  const bytes = fromBase64(trimmed);
  try {
    const decoded = strictDecoder.decode(bytes);
    // deno-lint-ignore no-control-regex -- control characters mean "not text"
    return /[\0-\x1f\x7f]/.test(decoded) ? undefined : bytes;
  } catch {
    return undefined;
  }
}

/** Lower-case hex of `bytes`. */
export function hex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

/**
 * A random nonce of `bytes` random bytes from `crypto.getRandomValues`, as printable ASCII
 * without `,`, `"` or `\` (safe in SCRAM attributes and DIGEST-MD5 quoted strings).
 */
export function randomNonce(bytes = 18): string {
  return toBase64(crypto.getRandomValues(new Uint8Array(bytes))).replace(/[+/=]/g, "x");
}

/** Escapes `=` and `,` in a SASL name (RFC 5802 saslname, RFC 7628 gs2 authzid). */
export function saslName(name: string): string {
  return name.replaceAll("=", "=3D").replaceAll(",", "=2C");
}

/** Throws a `TypeError` unless `value` is a string. */
export function assertString(value: unknown, what: string): asserts value is string {
  if (typeof value !== "string") throw new TypeError(`Invalid ${what}: must be a string`);
}

/** Throws when a credential carries a character that would break the exchange. */
export function assertNoControl(value: string, what: string): void {
  assertString(value, what);
  // deno-lint-ignore no-control-regex -- these are exactly what is refused
  if (/[\0\r\n\x01]/.test(value)) {
    throw new TypeError(`Invalid ${what}: contains NUL, CR, LF or U+0001`);
  }
}

/**
 * A short, single-line, printable rendering of server-sent text for error messages: control
 * characters are dropped and the text is cut at 200 characters.
 */
export function printable(value: string): string {
  // deno-lint-ignore no-control-regex -- control characters are dropped
  const clean = value.replace(/[\0-\x1f\x7f]+/g, " ").trim();
  return clean.length > 200 ? `${clean.slice(0, 200)}...` : clean;
}
