/**
 * Byte arrays joined: one helper for the message bodies, the session's writes, SASL hashing and
 * the in-memory transport.
 *
 * @module
 */

/** The total length of `pieces`. */
export function totalLength(pieces: readonly Uint8Array[]): number {
  let size = 0;
  for (const piece of pieces) size += piece.length;
  return size;
}

/**
 * `pieces` joined into one array: the only piece itself (uncopied) when there is one.
 *
 * @param pieces The arrays, in order.
 * @param size Their total length, when the caller knows it already.
 * @returns The joined bytes.
 */
export function concat(
  pieces: readonly Uint8Array[],
  size: number = totalLength(pieces),
): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const piece of pieces) {
    out.set(piece, offset);
    offset += piece.length;
  }
  return out;
}
