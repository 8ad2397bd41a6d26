/**
 * A private redis-server on 127.0.0.1 for the BullMQ tests, in a temporary folder: started
 * once per test file, stopped when the file's tests end. `.ci/run` installs the Debian package
 * `redis-server`; where it is missing the tests are skipped with the reason printed.
 */
import { createServer } from "node:net";

export interface RedisServer extends AsyncDisposable {
  readonly port: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Why redis-server cannot run here, or `undefined` when it can. */
export function redisUnavailable(): string | undefined {
  try {
    const result = new Deno.Command("redis-server", { args: ["--version"], stdout: "null" })
      .outputSync();
    return result.success ? undefined : "redis-server --version failed";
  } catch (error) {
    return `redis-server is not installed (${(error as Error).message}); ` +
      "apt-get install redis-server";
  }
}

/** Starts redis-server on a free loopback port; resolves once it answers. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const dir = await Deno.makeTempDir({ prefix: "postie-redis-" });
  const child = new Deno.Command("redis-server", {
    args: [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      "no",
      "--protected-mode",
      "yes",
    ],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  // Stopped when the test process ends, whatever happened to the tests.
  const stop = () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  };
  globalThis.addEventListener("unload", stop);
  const deadline = Date.now() + 10_000;
  while (true) {
    try {
      const connection = await Deno.connect({ hostname: "127.0.0.1", port });
      await connection.write(new TextEncoder().encode("PING\r\n"));
      const buffer = new Uint8Array(16);
      const n = await connection.read(buffer);
      connection.close();
      if (n && new TextDecoder().decode(buffer.subarray(0, n)).startsWith("+PONG")) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await child.status;
      throw new Error("redis-server did not start in 10 s");
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    port,
    async [Symbol.asyncDispose]() {
      globalThis.removeEventListener("unload", stop);
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
