/**
 * Python's `email` package (standard library, `policy.default`) as a second, independent MIME
 * parser: one `python3` process reads many messages, one at a time, through a pipe
 * (`_python_email.py` describes the protocol and what it reports).
 */

/** A top-level header field as Python decodes it. */
export interface PythonField {
  readonly name: string;
  /** `str(header)`: the decoded value. */
  readonly value: string;
  /** The value as the message has it (folded). */
  readonly raw: string;
  readonly defects: readonly string[];
  /** For address fields: each mailbox's display name and addr-spec. */
  readonly mailboxes?: readonly { readonly name: string; readonly address: string }[];
  /** The same through `email.utils.getaddresses()` and `email.header.decode_header()`. */
  readonly legacy?: readonly { readonly name: string; readonly address: string }[];
}

/** A MIME part as Python decodes it. */
export interface PythonPart {
  readonly type: string;
  readonly typeParams?: Readonly<Record<string, string>>;
  readonly typeDefects?: readonly string[];
  readonly disposition?: string;
  readonly dispositionParams?: Readonly<Record<string, string>>;
  readonly dispositionDefects?: readonly string[];
  /** `part.get_filename()`, which strips surrounding whitespace, quotes and angle brackets. */
  readonly filename: string | null;
}

/** What Python made of one message. */
export interface PythonMessage {
  readonly fields: readonly PythonField[];
  readonly parts: readonly PythonPart[];
  readonly defects: readonly string[];
}

const script = new URL("./_python_email.py", import.meta.url).pathname;
const encoder = new TextEncoder();

/**
 * A running `python3` that parses messages; close it when done. Calls to `parse` may overlap:
 * the messages go down the pipe in call order and the answers come back in the same order, so
 * Python parses while the caller goes on (the two run on separate cores).
 */
export class PythonEmail implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #waiting: {
    resolve: (message: PythonMessage) => void;
    reject: (error: Error) => void;
  }[] = [];
  readonly #reading: Promise<void>;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#reading = this.#read();
  }

  /**
   * Starts the parser, or says why it cannot: no `python3` on the PATH. (A Python whose `email`
   * package lacks what the script uses fails on the first message instead: loudly.)
   */
  static start(): PythonEmail | { reason: string } {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command("python3", {
        args: [script],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
    } catch (error) {
      return { reason: `python3 cannot be run: ${(error as Error).message}` };
    }
    return new PythonEmail(child);
  }

  async #read(): Promise<void> {
    const lines = this.#child.stdout
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(new LineSplitter());
    for await (const line of lines) {
      const waiting = this.#waiting.shift();
      if (waiting === undefined) throw new Error(`python3 said more than asked: ${line}`);
      const result = JSON.parse(line);
      if ("error" in result) {
        waiting.reject(new Error(`Python's email package failed: ${result.error}`));
      } else {
        waiting.resolve(result);
      }
    }
    for (const waiting of this.#waiting.splice(0)) {
      waiting.reject(new Error("python3 exited before answering"));
    }
  }

  /** The number of messages sent and not answered yet. */
  get pending(): number {
    return this.#waiting.length;
  }

  /** Parses one message. */
  parse(bytes: Uint8Array): Promise<PythonMessage> {
    const head = encoder.encode(`${bytes.length}\n`);
    const framed = new Uint8Array(head.length + bytes.length);
    framed.set(head);
    framed.set(bytes, head.length);
    const answer = new Promise<PythonMessage>((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
    });
    // One write per message, queued in call order.
    this.#writer.write(framed).catch(() => {});
    return answer;
  }

  /** Ends the process and waits for it. */
  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    await this.#reading;
    await this.#child.status;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Splits text into lines (without the LF). */
class LineSplitter extends TransformStream<string, string> {
  constructor() {
    let buffered = "";
    super({
      transform(chunk, controller) {
        // Only the new chunk is searched, so a long line costs linear time.
        let start = 0;
        let end = chunk.indexOf("\n");
        while (end >= 0) {
          controller.enqueue(buffered + chunk.slice(start, end));
          buffered = "";
          start = end + 1;
          end = chunk.indexOf("\n", start);
        }
        buffered += chunk.slice(start);
      },
      flush(controller) {
        if (buffered !== "") controller.enqueue(buffered);
      },
    });
  }
}
