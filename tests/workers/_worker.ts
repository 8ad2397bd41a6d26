/**
 * The Worker that `workers_test.ts` bundles and runs on `workerd`: each request names a case
 * (where to send, how) as JSON; the Worker sends through the Workers transport and answers with
 * the result, or with the error's class, phase and message.
 */
import { sendMail, SmtpPool } from "../../mod.ts";
import type { ClientOptions, Message } from "../../mod.ts";
import { workersTransport } from "../../src/transport/workers.ts";

/** What the test asks the Worker to do. */
export interface WorkerRequest {
  /** Client options as JSON (the Worker adds the transport). */
  client: Omit<ClientOptions, "transport">;
  /** The message; attachments given as `{ path }` stay paths, `base64` becomes bytes. */
  message: Omit<Message, "attachments"> & {
    attachments?: { filename: string; base64?: string; path?: string; contentType?: string }[];
  };
  /** Send through an `SmtpPool` (two messages on one connection) instead of `sendMail`. */
  pool?: boolean;
}

/** What the Worker answers. */
export type WorkerResponse =
  | { ok: true; accepted: string[]; rejected: string[]; messageIds: string[]; code: number }
  | { ok: false; name: string; message: string; phase?: string; extension?: string };

function bytes(base64: string): Uint8Array {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

function toMessage(request: WorkerRequest["message"]): Message {
  const { attachments, ...rest } = request;
  if (!attachments) return rest as Message;
  return {
    ...rest,
    attachments: attachments.map(({ filename, base64, path, contentType }) => ({
      filename,
      content: path !== undefined ? { path } : bytes(base64 ?? ""),
      ...(contentType ? { contentType } : {}),
    })),
  } as Message;
}

async function handle(request: WorkerRequest): Promise<WorkerResponse> {
  const options: ClientOptions = { ...request.client, transport: workersTransport };
  const message = toMessage(request.message);
  if (request.pool) {
    await using pool = new SmtpPool({ ...options, maxConnections: 1 });
    const results = [await pool.send(message), await pool.send(message)];
    return {
      ok: true,
      accepted: results.flatMap((r) => r.accepted.map((a) => a.address)),
      rejected: results.flatMap((r) => r.rejected.map((a) => a.address)),
      messageIds: results.map((r) => r.messageId ?? ""),
      code: results[1]!.reply.code,
    };
  }
  const result = await sendMail(options, message);
  return {
    ok: true,
    accepted: result.accepted.map((r) => r.address),
    rejected: result.rejected.map((r) => r.address),
    messageIds: [result.messageId ?? ""],
    code: result.reply.code,
  };
}

export default {
  async fetch(request: Request): Promise<Response> {
    try {
      return Response.json(await handle(await request.json()));
    } catch (error) {
      const e = error as Error & { phase?: string; extension?: string };
      const cause = e.cause instanceof Error ? `; cause: ${e.cause.message}` : "";
      return Response.json(
        {
          ok: false,
          name: e.name,
          message: e.message + cause,
          ...(e.phase ? { phase: e.phase } : {}),
          ...(e.extension ? { extension: e.extension } : {}),
        } satisfies WorkerResponse,
      );
    }
  },
};
