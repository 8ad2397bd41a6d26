/**
 * The shape of a file opener: how `{ path }` attachments are read. The runtime's own opener
 * lives with its transport (`transport/deno.ts`, `transport/node.ts`); whoever composes a
 * message with files hands one in, so that composing (`@postie/smtp/mime`) depends on no runtime.
 *
 * @module
 */

/** A file opened for reading, with its size. */
export interface OpenedFile {
  /** The file's bytes. */
  readonly stream: ReadableStream<Uint8Array>;
  /** The file's size in bytes. */
  readonly size: number;
}

/**
 * Opens a file for reading as a stream; rejects when it does not exist or cannot be read.
 * Returning an {@linkcode OpenedFile} (stream and size) lets a composed message know its exact
 * size, so that it is declared with SIZE and checked against the server's limit before sending.
 */
export type FileOpener = (path: string) => Promise<ReadableStream<Uint8Array> | OpenedFile>;
