/**
 * SASLprep (RFC 4013), the string preparation SCRAM applies to user names and passwords.
 *
 * What is implemented: the mapping step (non-ASCII spaces, RFC 3454 table C.1.2, become
 * U+0020; the "commonly mapped to nothing" characters of table B.1 are removed), Unicode NFKC
 * normalisation, and the prohibited output tables C.2 to C.9 (controls, private use,
 * non-characters, surrogates, characters inappropriate for plain text or canonical
 * representation, display-changing and tagging characters).
 *
 * What is not: the bidirectional rule (RFC 3454 section 6) and the check for code points
 * unassigned in Unicode 3.2 (RFC 5802 treats the password as a query string, where those are
 * allowed). NFKC is the runtime's current Unicode version, not 3.2's; the two agree on every
 * character Unicode 3.2 had. For ASCII input, which is what nearly everyone uses, the result
 * is the input unchanged unless it holds a control character, which is refused.
 *
 * @module
 */

/** Table C.1.2: non-ASCII space characters, mapped to SPACE. */
const MAP_TO_SPACE = /[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/g;

/** Table B.1: characters commonly mapped to nothing. */
const MAP_TO_NOTHING = /[\u00ad\u034f\u1806\u180b-\u180d\u200c\u200d\u2060\ufe00-\ufe0f\ufeff]/g;

/**
 * Tables C.2.1 and C.2.2 (controls), C.3 (private use: `\p{Co}`), C.5 (surrogates: `\p{Cs}`),
 * C.6 (inappropriate for plain text), C.7 (inappropriate for canonical representation),
 * C.8 (change display properties or deprecated) and C.9 (tagging). C.4, the non-characters,
 * is checked separately.
 */
const PROHIBITED = new RegExp(
  "[\\p{Cc}\\p{Co}\\p{Cs}" +
    "\\u06dd\\u070f\\u180e\\u200c\\u200d\\u2028\\u2029\\u2060-\\u2063\\u206a-\\u206f" +
    "\\ufeff\\ufff9-\\ufffd\\u{1d173}-\\u{1d17a}" + // C.2.2, C.6
    "\\u2ff0-\\u2ffb" + // C.7
    "\\u0340\\u0341\\u200e\\u200f\\u202a-\\u202e" + // C.8
    "\\u{e0001}\\u{e0020}-\\u{e007f}]", // C.9
  "u",
);

function isNonCharacter(codePoint: number): boolean {
  return (codePoint >= 0xfdd0 && codePoint <= 0xfdef) || (codePoint & 0xfffe) === 0xfffe;
}

/**
 * Prepares `value` with SASLprep (see the module documentation for what is left out).
 *
 * @param value The user name or password.
 * @param what What it is, for the error message.
 * @returns The prepared string.
 * @throws {TypeError} When it holds a prohibited character or prepares to an empty string.
 */
export function saslPrep(value: string, what: string): string {
  const prepared = value.replace(MAP_TO_SPACE, " ").replace(MAP_TO_NOTHING, "").normalize("NFKC");
  if (PROHIBITED.test(prepared)) {
    throw new TypeError(`Invalid ${what}: contains a character that SASLprep prohibits`);
  }
  for (const char of prepared) {
    if (isNonCharacter(char.codePointAt(0)!)) {
      throw new TypeError(`Invalid ${what}: contains a Unicode non-character`);
    }
  }
  if (prepared.length === 0) throw new TypeError(`Invalid ${what}: empty after SASLprep`);
  return prepared;
}
