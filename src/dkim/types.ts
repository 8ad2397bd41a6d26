/**
 * The options of DKIM signing (RFC 6376, RFC 8463), shared by `signMessage()` and the `dkim`
 * option of the client, the pool and `send()`.
 *
 * @module
 */

/** The signing algorithm: RSA (RFC 6376) or Ed25519 (RFC 8463), both over SHA-256. */
export type DkimAlgorithm = "rsa-sha256" | "ed25519-sha256";

/**
 * How the header and the body are canonicalized before hashing (`c=`, RFC 6376 section 3.4),
 * as `header/body`. `relaxed` survives the changes that relays make to whitespace and header
 * case; `simple` survives nearly nothing.
 */
export type DkimCanonicalization =
  | "relaxed/relaxed"
  | "relaxed/simple"
  | "simple/relaxed"
  | "simple/simple";

/**
 * A Web Crypto `CryptoKey`, described by its shape so that the types need no DOM library (on
 * Node.js it is `crypto.webcrypto.CryptoKey`); at run time it must be a real `CryptoKey`.
 */
export interface WebCryptoKey {
  /** `"private"` for a signing key. */
  readonly type: string;
  /** Whether its material can be exported (postie never does). */
  readonly extractable: boolean;
  /** `RSASSA-PKCS1-v1_5` (with SHA-256) or `Ed25519`. */
  readonly algorithm: { readonly name: string };
  /** What it may do; signing needs `"sign"`. */
  readonly usages: readonly string[];
}

/** One DKIM signature: who signs (`d=`, `s=`) and with which key. */
export interface DkimSigner {
  /**
   * The signing domain (`d=`), e.g. `example.com`; an internationalised domain is written in
   * punycode. The public key is published at `<selector>._domainkey.<domain>`.
   */
  readonly domain: string;
  /** The selector (`s=`) that names the key under the domain, e.g. `mail2025`. */
  readonly selector: string;
  /**
   * The private key: a PEM string (PKCS#8 `BEGIN PRIVATE KEY` for RSA or Ed25519, or PKCS#1
   * `BEGIN RSA PRIVATE KEY` as `openssl genrsa` writes it), or a Web Crypto `CryptoKey`
   * (`RSASSA-PKCS1-v1_5` with SHA-256, or `Ed25519`) usable for `sign`. RSA keys need at least
   * 1024 bits (RFC 8301); 2048 is the usual size. Encrypted PEM keys are not accepted.
   */
  readonly privateKey: string | WebCryptoKey;
  /**
   * The algorithm; it must match the key.
   * @default {the key's: "rsa-sha256" for an RSA key, "ed25519-sha256" for an Ed25519 key}
   */
  readonly algorithm?: DkimAlgorithm;
  /**
   * The header fields to sign (`h=`), by name, case-insensitive: each name signs every copy of
   * that field the message has. `From` is always signed, listed or not. Of the names listed,
   * `From`, `To`, `Cc`, `Subject` and `Date` are over-signed: named once more than the message
   * has them, so that a second copy added on the way breaks the signature. A field the message
   * lacks is not signed as absent: relays add some (Postfix adds a missing Date and Message-ID).
   * @default {From, Sender, Reply-To, To, Cc, Subject, Date, Message-ID, In-Reply-To, References, MIME-Version, Content-Type, Content-Transfer-Encoding, and every List-* field present}
   */
  readonly headers?: readonly string[];
  /**
   * The canonicalization (`c=`), header and body.
   * @default {"relaxed/relaxed"}
   */
  readonly canonicalization?: DkimCanonicalization;
  /**
   * Makes the signature expire this many seconds after signing (`x=`); no expiry by default.
   * Receivers treat an expired signature as no signature.
   */
  readonly expiresInSeconds?: number;
}

/** One signer, or several (dual signing, e.g. RSA and Ed25519): one `DKIM-Signature` each. */
export type DkimOptions = DkimSigner | readonly DkimSigner[];
