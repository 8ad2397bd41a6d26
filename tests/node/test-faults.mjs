/**
 * The fault-injection matrix (tests/faults/_matrix.mjs) against the built npm package under
 * Node: the client and the pool deliver at most once, and say whether a message may have
 * arrived, whatever the server does. The fault servers run in a Deno process
 * (tests/faults/_fault_service.ts), the same code as on Deno.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { after, before, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { importTarget } from "./_helpers.cjs";
import { defineFaultMatrix } from "../faults/_matrix.mjs";

const postie = await import(pathToFileURL(importTarget(".")).href);
const deno = process.env.POSTIE_DENO || "deno";
const service = fileURLToPath(new URL("../faults/_fault_service.ts", import.meta.url));

let child;
let base;
before(async () => {
  child = spawn(deno, ["run", "-A", "--quiet", service], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    base = `http://127.0.0.1:${JSON.parse(line).port}/servers`;
    break;
  }
});
after(() => child?.stdin.end());

async function call(path, init) {
  const response = await fetch(base + path, init);
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return await response.json();
}

defineFaultMatrix({
  postie,
  test,
  startServer: async (options) => {
    const { faultyConnections, ...rest } = options;
    const body = {
      ...rest,
      faultyConnections: faultyConnections === Infinity ? null : faultyConnections,
    };
    const { port } = await call("", { method: "POST", body: JSON.stringify(body) });
    return {
      port,
      kept: () => call(`/${port}/kept`),
      connections: () => call(`/${port}/connections`),
      close: () => call(`/${port}`, { method: "DELETE" }).then(() => {}),
    };
  },
});
