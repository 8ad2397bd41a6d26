/**
 * The little DER (ASN.1) that reading private keys needs: walking tag-length-value elements,
 * and wrapping a PKCS#1 RSA key into PKCS#8 (RFC 5208), the form Web Crypto imports.
 *
 * @module
 */

/** ASN.1 tags used in private keys. */
export const INTEGER = 0x02;
export const OCTET_STRING = 0x04;
export const NULL = 0x05;
export const OBJECT_IDENTIFIER = 0x06;
export const SEQUENCE = 0x30;

/** Bytes that are not the DER expected. */
export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DerError";
  }
}

/** One DER element: its tag, and where its value starts and ends in the input. */
export interface Element {
  readonly tag: number;
  readonly start: number;
  readonly end: number;
}

/**
 * Reads the element at `offset`, which must end by `limit`.
 *
 * @throws {DerError} When the bytes are not DER (an indefinite or oversized length, or an
 *   element running past `limit`).
 */
export function readElement(der: Uint8Array, offset: number, limit: number): Element {
  if (offset + 2 > limit) throw new DerError("DER element truncated");
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) throw new DerError("DER length form not allowed");
    if (start + count > limit) throw new DerError("DER length truncated");
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[start + i]!;
    start += count;
  }
  const end = start + length;
  if (end > limit) throw new DerError("DER element runs past its container");
  return { tag, start, end };
}

/**
 * Reads the element at `offset` and checks its tag.
 *
 * @throws {DerError} When it is not DER or has another tag.
 */
export function expectElement(
  der: Uint8Array,
  offset: number,
  limit: number,
  tag: number,
): Element {
  const element = readElement(der, offset, limit);
  if (element.tag !== tag) {
    throw new DerError(
      `DER tag 0x${element.tag.toString(16)} where 0x${tag.toString(16)} was expected`,
    );
  }
  return element;
}

/** The number of significant bits of an unsigned big-endian INTEGER value. */
export function integerBits(der: Uint8Array, element: Element): number {
  let i = element.start;
  while (i < element.end && der[i] === 0) i++;
  if (i === element.end) return 0;
  return (element.end - i) * 8 - Math.clz32(der[i]!) + 24;
}

/** An OBJECT IDENTIFIER's value in dotted form (`1.2.840.113549.1.1.1`). */
export function oidText(der: Uint8Array, element: Element): string {
  const arcs: number[] = [];
  let value = 0;
  for (let i = element.start; i < element.end; i++) {
    const byte = der[i]!;
    value = value * 128 + (byte & 0x7f);
    if (byte & 0x80) continue;
    if (arcs.length === 0) {
      const first = Math.min(2, Math.floor(value / 40));
      arcs.push(first, value - first * 40);
    } else {
      arcs.push(value);
    }
    value = 0;
  }
  return arcs.join(".");
}

function encodeLength(length: number): number[] {
  if (length < 0x80) return [length];
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return [0x80 | bytes.length, ...bytes];
}

/** The algorithm identifier of rsaEncryption (1.2.840.113549.1.1.1) with NULL parameters. */
const RSA_ALGORITHM = [
  SEQUENCE,
  0x0d,
  OBJECT_IDENTIFIER,
  0x09,
  0x2a,
  0x86,
  0x48,
  0x86,
  0xf7,
  0x0d,
  0x01,
  0x01,
  0x01,
  NULL,
  0x00,
];

/**
 * Wraps a PKCS#1 `RSAPrivateKey` into a PKCS#8 `PrivateKeyInfo`:
 * `SEQUENCE { INTEGER 0, rsaEncryption, OCTET STRING { pkcs1 } }`.
 */
export function pkcs1ToPkcs8(pkcs1: Uint8Array): Uint8Array {
  const octets = [OCTET_STRING, ...encodeLength(pkcs1.length)];
  const inner = 3 + RSA_ALGORITHM.length + octets.length + pkcs1.length;
  const head = [SEQUENCE, ...encodeLength(inner), INTEGER, 0x01, 0x00, ...RSA_ALGORITHM, ...octets];
  const out = new Uint8Array(head.length + pkcs1.length);
  out.set(head);
  out.set(pkcs1, head.length);
  return out;
}
