/**
 * Header folding (RFC 5322 section 2.2.3): lines of at most 78 characters where whitespace
 * allows a break, never more than 998 octets, CRLF at the end of every line.
 *
 * @module
 */

import { EncodedWordWriter, MIN_WORD_ROOM } from "./_encoded_words.ts";

/** The line length RFC 5322 asks for (SHOULD), without CRLF. */
export const FOLD_WIDTH = 78;
/** The line length RFC 5322 requires (MUST), in octets without CRLF. */
export const MAX_LINE_OCTETS = 998;

const encoder = new TextEncoder();

/**
 * Builds one header field from tokens. A token comes with the whitespace that precedes it; the
 * header is folded only there, so unfolding (removing the CRLFs) gives back the exact value.
 */
export class HeaderFolder {
  readonly #name: string;
  readonly #lines: string[] = [];
  #line: string;
  #hasContent = false;

  /** @param name The field name, already validated. */
  constructor(name: string) {
    this.#name = name;
    this.#line = `${name}:`;
  }

  /**
   * Appends `text`, preceded by the whitespace `space`. When `space` is not empty the header may
   * be folded before it; an empty `space` glues `text` to what precedes it.
   */
  add(space: string, text: string): void {
    if (
      space !== "" && this.#hasContent &&
      this.#line.length + space.length + text.length > FOLD_WIDTH
    ) {
      this.#lines.push(this.#line);
      this.#line = space;
    } else {
      this.#line += space;
    }
    this.#line += text;
    this.#hasContent = true;
  }

  /**
   * Appends `text` as RFC 2047 encoded words, the first preceded by `space` (which must not be
   * empty), the next ones by a single space. Each word is sized to the room left on the line.
   * `suffix` is glued to the last word (e.g. a comma).
   */
  addEncoded(space: string, text: string, suffix = ""): void {
    if (text === "") return;
    const writer = new EncodedWordWriter(text);
    let separator = space;
    do {
      let room = FOLD_WIDTH - this.#line.length - separator.length;
      if (room < MIN_WORD_ROOM + suffix.length && this.#hasContent) {
        this.#lines.push(this.#line);
        this.#line = "";
        room = FOLD_WIDTH - separator.length;
      }
      const word = writer.take(Math.max(room - suffix.length, MIN_WORD_ROOM));
      this.#line += separator + word + (writer.done ? suffix : "");
      this.#hasContent = true;
      separator = " ";
    } while (!writer.done);
  }

  /**
   * Returns the header with CRLF after every line.
   *
   * @throws {RangeError} When a line cannot be folded below 998 octets.
   */
  toString(): string {
    const lines = [...this.#lines, this.#line];
    for (const line of lines) {
      if (line.length > MAX_LINE_OCTETS / 4 && encoder.encode(line).length > MAX_LINE_OCTETS) {
        throw new RangeError(
          `Cannot compose message: header "${this.#name}" has a line longer than ${MAX_LINE_OCTETS} octets that cannot be folded`,
        );
      }
    }
    return lines.join("\r\n") + "\r\n";
  }
}
