/**
 * A private redis-server for the outbox's BullMQ tests and benchmark: on a free 127.0.0.1 port,
 * in a temporary folder, nothing saved. Written against `node:` modules only, so that the Deno
 * tests (`tests/outbox/`), the benchmark and the Node.js tests (`tests/node/`) share it.
 * `.ci/run` installs the Debian package `redis-server` (`tests/outbox/redis_setup.sh`).
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/**
 * Why redis-server cannot run here, or `undefined` when it can.
 *
 * @returns {string | undefined}
 */
export function redisUnavailable() {
  const result = spawnSync("redis-server", ["--version"], { stdio: "ignore" });
  if (result.error) {
    return `redis-server is not installed (${result.error.message}); apt-get install redis-server`;
  }
  return result.status === 0 ? undefined : "redis-server --version failed";
}

/** @returns {Promise<number>} */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer().once("error", reject).listen(0, "127.0.0.1", () => {
      const address = /** @type {{ port: number }} */ (server.address());
      server.close(() => resolve(address.port));
    });
  });
}

/** @returns {Promise<boolean>} */
function answers(port) {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, 1000);
    socket.once("error", () => {
      clearTimeout(timer);
      resolve(false);
    });
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(String(data).startsWith("+PONG"));
    });
  });
}

/**
 * Starts redis-server; resolves once it answers PING. Stop it with `stop()` (it is killed when
 * the process exits in any case).
 *
 * @returns {Promise<{ port: number, stop(): Promise<void>, [Symbol.asyncDispose](): Promise<void> }>}
 */
export async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "postie-redis-"));
  const child = spawn("redis-server", [
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
  ], { stdio: ["ignore", "ignore", "inherit"] });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const kill = () => child.kill("SIGKILL");
  process.once("exit", kill);
  const stop = async () => {
    process.removeListener("exit", kill);
    child.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  while (!(await answers(port))) {
    if (Date.now() > deadline) {
      await stop();
      throw new Error("redis-server did not start in 10 s");
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { port, stop, [Symbol.asyncDispose]: stop };
}
