/**
 * The common base of postie's mechanisms: a name, and nothing else that prints. Secrets live in
 * each subclass's `#private` fields, which `JSON.stringify`, `String()`, `Deno.inspect` and
 * Node's `util.inspect` never show.
 *
 * @module
 */

/** A mechanism object that shows only its name. */
export abstract class Mechanism {
  /** The registered mechanism name. */
  abstract readonly name: string;

  /** `{ name }` only. */
  toJSON(): { name: string } {
    return { name: this.name };
  }

  /** `SaslMechanism(PLAIN)`. */
  toString(): string {
    return `SaslMechanism(${this.name})`;
  }
}
