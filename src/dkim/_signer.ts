/**
 * DKIM signers: the `dkim` option checked (before any I/O) and resolved, and the
 * `DKIM-Signature` field of one signer computed from a message's header fields and body hash
 * (RFC 6376 sections 3.5 and 5; RFC 8463 for Ed25519).
 *
 * @module
 */

import { checkFields } from "../_fields.ts";
import { encodeBase64Plain } from "../mime/base64.ts";
import { type Canonicalization, canonicalizeHeader } from "./_canonicalize.ts";
import { binaryBytes, type HeaderField, lowerAscii, selectFields } from "./_header_fields.ts";
import { type CheckedKey, checkPrivateKey, importKey } from "./_key.ts";
import type { DkimAlgorithm, DkimCanonicalization, DkimOptions, WebCryptoKey } from "./types.ts";

/** A signer whose options were checked: ready to sign. */
export interface ResolvedSigner {
  /** `d=`, in ASCII (punycode) and lower case. */
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: DkimAlgorithm;
  readonly headerCanonicalization: Canonicalization;
  readonly bodyCanonicalization: Canonicalization;
  /** The names to sign, lower case, `from` first; undefined for the default set. */
  readonly headers: readonly string[] | undefined;
  readonly expiresInSeconds: number | undefined;
  /** The key, imported into Web Crypto on first use (once per signer). */
  readonly key: () => Promise<WebCryptoKey>;
}

const SIGNER_FIELDS = [
  "domain",
  "selector",
  "privateKey",
  "algorithm",
  "headers",
  "canonicalization",
  "expiresInSeconds",
];

/** nodemailer's `dkim` fields, and what postie calls them. */
const NODEMAILER_DKIM: Readonly<Record<string, string>> = {
  domainName: 'postie calls it "domain"',
  keySelector: 'postie calls it "selector"',
  headerFieldNames: 'postie takes "headers", a list of names',
  skipFields: 'list the fields to sign in "headers" instead',
  hashAlgo: "DKIM signs with SHA-256 only (RFC 8301)",
  cacheDir: "postie reads attachment files twice instead of caching the message",
  cacheTreshold: "postie reads attachment files twice instead of caching the message",
  keys: "give an array of signers as dkim",
};

const CANONICALIZATIONS: readonly DkimCanonicalization[] = [
  "relaxed/relaxed",
  "relaxed/simple",
  "simple/relaxed",
  "simple/simple",
];

/** Header fields signed by default: the ones a reader sees, and the MIME structure. */
const DEFAULT_HEADERS = [
  "from",
  "sender",
  "reply-to",
  "to",
  "cc",
  "subject",
  "date",
  "message-id",
  "in-reply-to",
  "references",
  "mime-version",
  "content-type",
  "content-transfer-encoding",
];

/**
 * Signed once more than present, so that no further copy can be added unnoticed. Only when
 * present: an absent field is not signed as absent, since relays add some that are missing
 * (Postfix adds Date and Message-ID), and that would break the signature.
 */
const OVERSIGNED = new Set(["from", "to", "cc", "subject", "date"]);

const LABEL = "[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?";
const DOMAIN = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})+$`);
const SELECTOR = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`, "i");
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

/** The domain in ASCII (punycode for an internationalised one), lower case. */
function asciiDomain(domain: string): string | undefined {
  let ascii = domain;
  if (!/^[\x21-\x7e]+$/.test(domain)) {
    try {
      ascii = new URL(`http://${domain}`).hostname;
    } catch {
      return undefined;
    }
  }
  ascii = ascii.toLowerCase().replace(/\.$/, "");
  return DOMAIN.test(ascii) ? ascii : undefined;
}

/** Checks one signer; `what` names it in errors (`dkim`, `dkim[1]`). */
function resolveSigner(signer: unknown, what: string): ResolvedSigner {
  if (signer === null || typeof signer !== "object" || Array.isArray(signer)) {
    throw new TypeError(`Invalid ${what}: expected { domain, selector, privateKey }`);
  }
  checkFields(signer, SIGNER_FIELDS, what, NODEMAILER_DKIM);
  const options = signer as Record<string, unknown>;
  const { domain, selector, privateKey } = options;
  if (typeof domain !== "string") throw new TypeError(`Invalid ${what}.domain: not a string`);
  const ascii = asciiDomain(domain);
  if (ascii === undefined) {
    throw new TypeError(`Invalid ${what}.domain ${JSON.stringify(domain)}: not a domain name`);
  }
  if (typeof selector !== "string" || !SELECTOR.test(selector)) {
    throw new TypeError(
      `Invalid ${what}.selector ${JSON.stringify(selector)}: expected a DNS label such as ` +
        '"mail2025"',
    );
  }
  const explain = (why: string) =>
    `Invalid ${what}.privateKey for ${ascii} (selector ${selector}): ${why}`;
  if (privateKey === undefined) throw new TypeError(explain("missing"));
  const checked: CheckedKey = checkPrivateKey(privateKey, explain);
  const algorithm = options.algorithm;
  if (algorithm !== undefined) {
    if (algorithm !== "rsa-sha256" && algorithm !== "ed25519-sha256") {
      throw new TypeError(
        `Invalid ${what}.algorithm ${JSON.stringify(algorithm)}: expected "rsa-sha256" or ` +
          '"ed25519-sha256"',
      );
    }
    if (algorithm !== checked.algorithm) {
      const kind = checked.algorithm === "rsa-sha256" ? "an RSA key" : "an Ed25519 key";
      throw new TypeError(
        `Invalid ${what}.algorithm: "${algorithm}" does not match the key, which is ${kind} ` +
          `(leave algorithm out: it follows from the key)`,
      );
    }
  }
  const canonicalization = options.canonicalization ?? "relaxed/relaxed";
  if (!CANONICALIZATIONS.includes(canonicalization as DkimCanonicalization)) {
    throw new TypeError(
      `Invalid ${what}.canonicalization ${JSON.stringify(canonicalization)}: expected one of ` +
        CANONICALIZATIONS.map((c) => `"${c}"`).join(", "),
    );
  }
  const [header, body] = (canonicalization as string).split("/") as Canonicalization[];
  const expires = options.expiresInSeconds;
  if (expires !== undefined && !(Number.isSafeInteger(expires) && (expires as number) > 0)) {
    throw new RangeError(
      `Invalid ${what}.expiresInSeconds: must be a positive whole number, got ${String(expires)}`,
    );
  }
  let key: Promise<CryptoKey> | undefined;
  return {
    domain: ascii,
    selector,
    algorithm: checked.algorithm,
    headerCanonicalization: header!,
    bodyCanonicalization: body!,
    headers: options.headers === undefined ? undefined : headerNames(options.headers, what),
    expiresInSeconds: expires as number | undefined,
    key: () => key ??= importKey(checked),
  };
}

function headerNames(headers: unknown, what: string): string[] {
  if (!Array.isArray(headers)) {
    throw new TypeError(`Invalid ${what}.headers: expected a list of header field names`);
  }
  const names = ["from"];
  for (const name of headers) {
    if (typeof name !== "string" || !FIELD_NAME.test(name)) {
      throw new TypeError(`Invalid ${what}.headers: ${JSON.stringify(name)} is not a field name`);
    }
    const key = lowerAscii(name);
    if (!names.includes(key)) names.push(key);
  }
  return names;
}

/**
 * Checks the `dkim` option (one signer or a list) and resolves it. Bad input throws before
 * any I/O: a missing or malformed field, a key that is not an RSA or Ed25519 private key, an
 * RSA key under 1024 bits.
 *
 * @param dkim The option as given.
 * @param what Its name in errors.
 * @returns The signers, in order.
 */
export function resolveDkim(dkim: DkimOptions, what = "dkim"): ResolvedSigner[] {
  if (Array.isArray(dkim)) {
    if (dkim.length === 0) {
      throw new TypeError(`Invalid ${what}: the list of signers is empty (use false for none)`);
    }
    return dkim.map((signer, i) => resolveSigner(signer, `${what}[${i}]`));
  }
  return [resolveSigner(dkim, what)];
}

/**
 * The signers of one send: its own `dkim` (`false`: none), else those of the client or pool.
 *
 * @param dkim `send()`'s option.
 * @param defaults The client's or pool's resolved signers.
 */
export function signersOf(
  dkim: DkimOptions | false | undefined,
  defaults: readonly ResolvedSigner[],
): readonly ResolvedSigner[] {
  if (dkim === false) return [];
  return dkim === undefined ? defaults : resolveDkim(dkim, "send options dkim");
}

/** The names of `h=`: each present field as often as present, over-signed ones once more. */
function signedNames(signer: ResolvedSigner, fields: readonly HeaderField[]): string[] {
  const counts = new Map<string, number>();
  for (const field of fields) counts.set(field.key, (counts.get(field.key) ?? 0) + 1);
  let names = signer.headers;
  if (names === undefined) {
    const lists = [...counts.keys()].filter((key) => key.startsWith("list-")).sort();
    names = [...DEFAULT_HEADERS, ...lists];
  }
  const out: string[] = [];
  for (const name of names) {
    const present = counts.get(name) ?? 0;
    const count = present > 0 && OVERSIGNED.has(name) ? present + 1 : present;
    for (let i = 0; i < count; i++) out.push(name);
  }
  return out;
}

/** Lines of a header field are at most this long (RFC 5322 section 2.1.1). */
const WIDTH = 78;

/** Builds a folded header field from tokens, breaking only where the syntax allows FWS. */
class Folder {
  #text: string;
  #column: number;

  constructor(start: string) {
    this.#text = start;
    this.#column = start.length;
  }

  /** Adds `token`, after a space when `spaced`, or on a new line when it does not fit. */
  add(token: string, spaced: boolean): void {
    const needed = token.length + (spaced ? 1 : 0);
    if (this.#column + needed > WIDTH && this.#column > 1) {
      this.#text += "\r\n " + token;
      this.#column = 1 + token.length;
    } else {
      this.#text += (spaced ? " " : "") + token;
      this.#column += needed;
    }
  }

  /** Adds a base64 value that may be split anywhere, filling each line. */
  addSplittable(value: string): void {
    let rest = value;
    while (rest.length > 0) {
      let room = WIDTH - this.#column;
      if (room <= 0) {
        this.#text += "\r\n ";
        this.#column = 1;
        room = WIDTH - 1;
      }
      this.#text += rest.slice(0, room);
      this.#column += Math.min(room, rest.length);
      rest = rest.slice(room);
    }
  }

  get text(): string {
    return this.#text;
  }
}

/**
 * The `DKIM-Signature` field of one signer, CRLF included.
 *
 * @param signer The signer.
 * @param fields The message's header fields.
 * @param bodyHash The base64 SHA-256 of the body under the signer's body canonicalization.
 * @param time Seconds since the epoch (`t=`).
 */
export async function signatureField(
  signer: ResolvedSigner,
  fields: readonly HeaderField[],
  bodyHash: string,
  time: number,
): Promise<string> {
  const names = signedNames(signer, fields);
  if (!names.includes("from")) {
    throw new TypeError(
      "Cannot sign message with DKIM: it has no From field, which a signature must cover " +
        "(RFC 6376 section 5.4)",
    );
  }
  const folder = new Folder("DKIM-Signature:");
  const tags = [
    "v=1;",
    `a=${signer.algorithm};`,
    `c=${signer.headerCanonicalization}/${signer.bodyCanonicalization};`,
    `d=${signer.domain};`,
    `s=${signer.selector};`,
    `t=${time};`,
    ...(signer.expiresInSeconds === undefined ? [] : [`x=${time + signer.expiresInSeconds};`]),
  ];
  for (const tag of tags) folder.add(tag, true);
  names.forEach((name, i) => {
    const token = (i === 0 ? "h=" : "") + name + (i === names.length - 1 ? ";" : ":");
    folder.add(token, i === 0);
  });
  folder.add(`bh=${bodyHash};`, true);
  folder.add("b=", true);
  const unsigned = folder.text;
  const data = signingInput(signer.headerCanonicalization, selectFields(fields, names), unsigned);
  folder.addSplittable(await signData(signer, data));
  return folder.text + "\r\n";
}

/**
 * What is signed (RFC 6376 section 3.7): the selected fields, canonicalized, then the
 * `DKIM-Signature` field itself with an empty `b=`, canonicalized, without its final CRLF.
 *
 * @param mode The header canonicalization.
 * @param selected The selected fields, in `h=` order, each with its CRLF.
 * @param signatureWithoutB The `DKIM-Signature` field up to `b=`, without CRLF.
 */
export function signingInput(
  mode: Canonicalization,
  selected: readonly string[],
  signatureWithoutB: string,
): Uint8Array {
  let input = "";
  for (const field of selected) input += canonicalizeHeader(field, mode);
  input += canonicalizeHeader(signatureWithoutB + "\r\n", mode).slice(0, -2);
  return binaryBytes(input);
}

/**
 * Signs `data` with the signer's key: RSASSA-PKCS1-v1_5 over SHA-256 of the data, or, for
 * Ed25519, PureEdDSA over the SHA-256 of the data (RFC 8463 section 3).
 *
 * @returns The signature in base64.
 */
export async function signData(signer: ResolvedSigner, data: Uint8Array): Promise<string> {
  const key = await signer.key() as CryptoKey;
  const bytes = data as Uint8Array<ArrayBuffer>;
  const signature = signer.algorithm === "rsa-sha256"
    ? await crypto.subtle.sign({ name: "RSASSA-PKCS1-v1_5" }, key, bytes)
    : await crypto.subtle.sign(
      { name: "Ed25519" },
      key,
      await crypto.subtle.digest("SHA-256", bytes),
    );
  return encodeBase64Plain(new Uint8Array(signature));
}
