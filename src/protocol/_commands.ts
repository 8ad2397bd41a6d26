/**
 * One serializer per SMTP command. Every argument is checked for CR, LF and NUL (and the
 * Unicode line breaks U+0085, U+2028, U+2029), so that no caller-supplied value can inject a
 * command.
 *
 * @module
 */

/** `JSON.stringify`, with the Unicode line breaks it leaves raw escaped as well. */
function shown(value: string): string {
  return JSON.stringify(value).replace(
    /[\u0085\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * Throws a `TypeError` when `value` contains CR, LF or NUL, or a Unicode line break (NEL
 * U+0085, LINE SEPARATOR U+2028, PARAGRAPH SEPARATOR U+2029) that a receiver decoding UTF-8
 * may take for the end of a line.
 */
export function assertNoLineBreak(value: string, what: string): void {
  if (hasLineBreak(value)) {
    throw new TypeError(`Invalid ${what}: contains a line break or NUL: ${shown(value)}`);
  }
}

/** CR, LF, NUL, or a Unicode line break. */
const LINE_BREAK = /[\r\n\0\u0085\u2028\u2029]/;
/** A space, a control or an angle bracket: none may be in an envelope address. */
const NOT_IN_ADDRESS = /[\0-\x20<>\x7f]/;

// Regular expressions, not loops: they run as machine code from their first use, and these
// checks run for every command of every message.
function hasLineBreak(value: string): boolean {
  return LINE_BREAK.test(value);
}

/** Checks an envelope address: no line breaks, no angle brackets, no spaces, no controls. */
export function assertEnvelopeAddress(address: string, what: string): void {
  assertNoLineBreak(address, what);
  if (NOT_IN_ADDRESS.test(address)) {
    throw new TypeError(
      `Invalid ${what}: ${shown(address)} contains a space, control or angle bracket`,
    );
  }
  if (address !== "" && !address.includes("@")) {
    throw new TypeError(`Invalid ${what}: ${shown(address)} has no @`);
  }
}

/** RFC 3461 xtext: `+XX` for `+`, `=`, controls and non-ASCII bytes. */
export function encodeXtext(value: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(value)) {
    out += byte < 0x21 || byte > 0x7e || byte === 0x2b || byte === 0x3d
      ? "+" + byte.toString(16).toUpperCase().padStart(2, "0")
      : String.fromCharCode(byte);
  }
  return out;
}

/**
 * RFC 6533 utf-8-addr-xtext: printable ASCII except `\`, `+` and `=` as it is; every other
 * character as `\x{HEX}`, its code point in upper-case hex without leading zeros (two digits at
 * least). 7-bit, so it fits ORCPT whether or not the server offers SMTPUTF8.
 */
export function encodeUtf8AddrXtext(value: string): string {
  let out = "";
  for (const char of value) {
    let c = char.codePointAt(0)!;
    if (c >= 0x21 && c <= 0x7e && c !== 0x5c && c !== 0x2b && c !== 0x3d) {
      out += char;
      continue;
    }
    // A lone surrogate has no UTF-8 form: the command line carries U+FFFD in its place.
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    out += `\\x{${c.toString(16).toUpperCase().padStart(2, "0")}}`;
  }
  return out;
}

/**
 * The value of `ORCPT` (RFC 3461 section 4.2) for a recipient address: `rfc822;` and xtext for
 * an ASCII address, `utf-8;` and utf-8-addr-xtext (RFC 6533 section 3) for any other.
 */
export function encodeOrcpt(address: string): string {
  for (let i = 0; i < address.length; i++) {
    if (address.charCodeAt(i) > 0x7f) return "utf-8;" + encodeUtf8AddrXtext(address);
  }
  return "rfc822;" + encodeXtext(address);
}

/** ESMTP parameters: `KEY` or `KEY=VALUE`; values must already be encoded as needed. */
export type Parameters = readonly (readonly [string, string | undefined])[];

function formatParameters(params: Parameters): string {
  let out = "";
  for (const [key, value] of params) {
    assertNoLineBreak(key, "parameter name");
    if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(key)) {
      throw new TypeError(`Invalid parameter name: ${JSON.stringify(key)}`);
    }
    if (value === undefined) {
      out += " " + key;
    } else {
      assertNoLineBreak(value, `value of parameter ${key}`);
      if (/[\s=]/.test(value)) {
        throw new TypeError(`Invalid value of parameter ${key}: ${JSON.stringify(value)}`);
      }
      out += ` ${key}=${value}`;
    }
  }
  return out;
}

/** `EHLO name` */
export function ehlo(name: string): string {
  assertNoLineBreak(name, "EHLO name");
  return `EHLO ${name}`;
}

/** `LHLO name` (LMTP, RFC 2033) */
export function lhlo(name: string): string {
  assertNoLineBreak(name, "LHLO name");
  return `LHLO ${name}`;
}

/** `HELO name` */
export function helo(name: string): string {
  assertNoLineBreak(name, "HELO name");
  return `HELO ${name}`;
}

/** `MAIL FROM:<address> params` */
export function mailFrom(address: string, params: Parameters = []): string {
  assertEnvelopeAddress(address, "sender address");
  return `MAIL FROM:<${address}>${formatParameters(params)}`;
}

/** `RCPT TO:<address> params` */
export function rcptTo(address: string, params: Parameters = []): string {
  assertEnvelopeAddress(address, "recipient address");
  if (address === "") throw new TypeError("Invalid recipient address: empty");
  return `RCPT TO:<${address}>${formatParameters(params)}`;
}

/** `BDAT size` or `BDAT size LAST` */
export function bdat(size: number, last: boolean): string {
  return last ? `BDAT ${size} LAST` : `BDAT ${size}`;
}

/** `AUTH mechanism [initial-response]` */
export function auth(mechanism: string, initialResponse?: string): string {
  assertNoLineBreak(mechanism, "SASL mechanism name");
  if (initialResponse === undefined) return `AUTH ${mechanism}`;
  // The initial response carries credentials: the error does not show it.
  if (hasLineBreak(initialResponse)) {
    throw new TypeError("Invalid SASL initial response: contains a line break or NUL");
  }
  return `AUTH ${mechanism} ${initialResponse}`;
}
