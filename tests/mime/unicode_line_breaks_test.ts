/**
 * NEL (U+0085), LINE SEPARATOR (U+2028) and PARAGRAPH SEPARATOR (U+2029) end a line for a
 * receiver that decodes UTF-8 before it splits lines. In an address they are refused like CR and
 * LF (an address goes raw into MAIL FROM and the From header); in a display name, a subject or a
 * custom header they are RFC 2047-encoded, so that no header carries one raw.
 */

import assert from "node:assert/strict";
import { test } from "../_helpers/test.ts";
import {
  composeMessage,
  envelopeAddress,
  formatMailbox,
  type Message,
  parseAddressList,
  parseMailbox,
} from "../../src/mime/mod.ts";
import { collect } from "./_helpers.ts";

const BREAKS = [["U+0085", "\u0085"], ["U+2028", "\u2028"], ["U+2029", "\u2029"]] as const;

/** Asserts a `TypeError` that names the character, escaped (the message has no raw one). */
function assertRefused(fn: () => unknown, code: string, char: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof TypeError, String(error));
    assert.match(
      error.message,
      new RegExp(`address contains a line break \\(${code.replace("+", "\\+")}\\)`),
    );
    assert.equal(error.message.includes(char), false, "the message shows the character raw");
    return true;
  });
}

for (const [code, char] of BREAKS) {
  test(`an address with ${code} in its local part or domain is refused like CR and LF`, () => {
    const addresses = [
      `a${char}b@example.com`, // unquoted local part
      `"a${char}b"@example.com`, // quoted local part
      `"a\\${char}b"@example.com`, // quoted pair
      `ab@exa${char}mple.com`, // domain
    ];
    for (const address of addresses) {
      assertRefused(() => parseAddressList(address), code, char);
      assertRefused(() => parseAddressList(`Name <${address}>`), code, char);
      assertRefused(() => parseAddressList({ name: "Name", address }), code, char);
      assertRefused(() => parseMailbox(address), code, char);
      assertRefused(() => formatMailbox({ name: "", address }), code, char);
      assertRefused(() => envelopeAddress(address, true), code, char);
      assertRefused(() => envelopeAddress(address, false), code, char);
    }
  });

  test(`composeMessage() refuses ${code} in from, to, cc, bcc, replyTo and sender`, async () => {
    const bad = `a${char}b@example.com`;
    const base = { from: "a@example.com", to: "b@example.com", text: "x" };
    for (const field of ["from", "to", "cc", "bcc", "replyTo", "sender"] as const) {
      await assert.rejects(composeMessage({ ...base, [field]: bad }), (error: unknown) => {
        assert.ok(error instanceof TypeError, `${field}: ${error}`);
        assert.match(error.message, /line break/, field);
        return true;
      });
    }
  });

  test(`a display name, subject or custom header with ${code} is encoded, never raw`, async () => {
    const messages: Message[] = [
      { from: { name: `Jo${char}e`, address: "a@example.com" }, to: "b@example.com" },
      { from: `"Jo${char}e" <a@example.com>`, to: `Bo${char}b <b@example.com>` },
      { from: "a@example.com", to: "b@example.com", subject: `Hi${char}Bcc: x@example.com` },
      { from: "a@example.com", to: "b@example.com", headers: { "X-Note": `a${char}b` } },
      { from: "a@example.com", to: "b@example.com", headers: [{ key: "X-Note", value: char }] },
    ];
    for (const allow8bit of [false, true]) {
      for (const message of messages) {
        const composed = await composeMessage({ ...message, text: "x" }, { allow8bit });
        const text = new TextDecoder().decode(await collect(composed.body));
        const head = text.slice(0, text.indexOf("\r\n\r\n"));
        assert.equal(head.includes(char), false, `raw ${code} in ${JSON.stringify(head)}`);
        assert.match(head, /=\?UTF-8\?[BQ]\?/);
      }
    }
  });
}
