/**
 * The `--help` texts of `postie`.
 *
 * @module
 */

import { EXIT_CODE_TABLE } from "./exit_codes.ts";

const CONNECTION = `Connection:
  --server HOST[:PORT]    the SMTP server (env POSTIE_SERVER); [::1]:587 for IPv6.
                          Without it, postie starts an embedded local server (when this
                          entry point has one) and sends to it over STARTTLS with AUTH
  --tls MODE              implicit | starttls | none. Default: implicit on port 465, else
                          starttls (port 587 when no port is given); STARTTLS is then
                          required, never skipped. none needs the choice spelled out
  --ca-file FILE          also trust this PEM CA certificate (repeatable)
  --server-name NAME      the name the certificate must match (when HOST is an IP address)
  --proxy URL             connect through a proxy: socks5://, socks5h:// (the proxy resolves
                          the name), socks4://, socks4a:// or http:// (CONNECT); a URL with
                          a password only from env POSTIE_PROXY (http://user:pass@host:port)
  --ehlo NAME             the name sent with EHLO (default: this machine's host name)
  --timeout SECONDS       time limit for every network wait (default: 15 s to connect,
                          30 s for the greeting, 60 s per command, 5 min after the data)
  --transcript            print the SMTP dialogue on standard error (secrets redacted)
  --json                  print the result, or the error, as JSON on standard output`;

const AUTH = `Authentication (send):
  --user NAME             log in as NAME (env POSTIE_USER). The password comes from env
                          POSTIE_PASSWORD, or is asked for when standard input is a terminal
                          (there is no password option: command lines are visible to others).
                          With env POSTIE_OAUTH_TOKEN set, that OAuth2 token is used instead
  --auth-mechanism NAME   SCRAM-SHA-256, CRAM-MD5, PLAIN, LOGIN, DIGEST-MD5, XOAUTH2 or
                          OAUTHBEARER (default: the strongest both sides support)
  --allow-plaintext-auth  allow logging in without TLS (with --tls none; local testing only)`;

const MESSAGE = `Message (send):
  --from ADDRESS          the author and envelope sender, e.g. "Zoë <zoe@example.com>"
  --to/--cc/--bcc ADDRESS recipients (repeatable, or comma-separated); Bcc stays out of
                          the headers
  --subject TEXT          the subject (any language)
  --text TEXT|@FILE       the plain-text body; @FILE reads a file, @- standard input
  --html HTML|@FILE       the HTML body
  --attach FILE[;type=MIME][;cid=ID][;name=NAME]
                          attach a file (repeatable). cid= embeds it for <img src="cid:ID">
  --header "Name: value"  an extra header field (repeatable)
  --dry-run               print the composed message and exit, without connecting
  Relative file paths start in the directory you ran postie in (INIT_CWD when set, as
  under deno task and npm run).`;

const DKIM = `DKIM signing (send):
  --dkim-domain DOMAIN    sign for DOMAIN (d=); the public key is published in DNS at
                          SELECTOR._domainkey.DOMAIN
  --dkim-selector NAME    the selector (s=): one for every key, or one per --dkim-key
  --dkim-key FILE         a PEM private key, RSA (PKCS#8 or PKCS#1, 1024 bits or more) or
                          Ed25519 (repeatable: one signature per key, e.g. RSA and Ed25519).
                          With --dry-run the message is printed signed`;

function exitCodes(): string {
  const rows = EXIT_CODE_TABLE.map(([code, text]) => `  ${String(code).padStart(3)}  ${text}`);
  return `Exit codes:\n${rows.join("\n")}\n` +
    "  When some recipients were refused and others accepted, the message went to the\n" +
    "  accepted ones and the exit code is 67 (or 75 if every refusal was temporary);\n" +
    "  --json lists both.";
}

const SEND_EXAMPLES = `Examples:
  postie send
      a demo: an embedded local server receives the message over STARTTLS with AUTH
  POSTIE_PASSWORD=... postie send --server smtp.example.com --user me@example.com \\
      --from me@example.com --to you@example.com --subject "Report" \\
      --text @body.txt --attach report.pdf
  df -h | postie send --server mail.internal:25 --tls none --from cron@host.example \\
      --to ops@example.com --subject "Disk usage" --text @-
  postie send --dry-run --from a@example.com --to b@example.com \\
      --html '<img src="cid:logo">' --attach 'logo.png;cid=logo'
  postie send --server smtp.example.com --from me@example.com --to you@example.com \\
      --text hi --dkim-domain example.com --dkim-key rsa.pem --dkim-selector rsa2025 \\
      --dkim-key ed25519.pem --dkim-selector ed2025`;

const CHECK_EXAMPLES = `Examples:
  postie check --server smtp.gmail.com:465
  postie check --server 192.0.2.10:587 --server-name mail.example.com --json`;

/**
 * The help text.
 *
 * @param program How to call the program, e.g. `postie` or `deno run -A jsr:@postie/smtp/cli`.
 * @param topic One command, or the whole program.
 * @returns The text, ending with a newline.
 */
export function helpText(program: string, topic?: "send" | "check"): string {
  const usage = `postie: send mail over SMTP, or check a server, from the command line

Usage:
  ${program} send [options]    compose and send one message
  ${program} check [options]   connect, show TLS and the server's extensions, quit
  ${program} [send|check] --help`;
  const sections = topic === "send"
    ? [usage, CONNECTION, AUTH, MESSAGE, DKIM, exitCodes(), SEND_EXAMPLES]
    : topic === "check"
    ? [usage, CONNECTION, exitCodes(), CHECK_EXAMPLES]
    : [
      usage,
      CONNECTION,
      AUTH,
      MESSAGE,
      DKIM,
      exitCodes(),
      `${SEND_EXAMPLES}\n${CHECK_EXAMPLES.split("\n").slice(1).join("\n")}`,
    ];
  const alias = program === "postie" ? "" : `\n  (postie stands for: ${program})`;
  return sections.join("\n\n").replace(/^Examples:$/m, `Examples:${alias}`) + "\n";
}
