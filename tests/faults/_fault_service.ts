/**
 * The fault server as a service, so that the Node tests of the npm package can use it: an HTTP
 * endpoint on 127.0.0.1 that starts fault servers and reports what they kept. It prints
 * `{"port": N}` on its first line and runs until its standard input closes.
 *
 * - `POST /servers` with the options of `startFaultServer` (`faultyConnections: null` for all)
 *   starts one and answers `{ "port": N }`;
 * - `GET /servers/N/kept` and `/connections` report;
 * - `DELETE /servers/N` closes it (what it kept can still be asked for).
 */

import { type FaultServer, startFaultServer } from "./_fault_server.ts";

const servers = new Map<number, FaultServer>();

const http = Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(JSON.stringify({ port })),
}, async (request) => {
  const [, root, port, action] = new URL(request.url).pathname.split("/");
  if (root !== "servers") return new Response("not found", { status: 404 });
  if (request.method === "POST") {
    const options = await request.json();
    const server = startFaultServer({
      ...options,
      faultyConnections: options.faultyConnections ?? Infinity,
    });
    servers.set(server.port, server);
    return Response.json({ port: server.port });
  }
  const server = servers.get(Number(port));
  if (!server) return new Response("no such server", { status: 404 });
  if (request.method === "DELETE") {
    // Kept for the questions that follow; closing again is harmless.
    await server.close();
    return Response.json({ closed: true });
  }
  if (action === "kept") return Response.json(server.kept);
  if (action === "connections") return Response.json(server.connections());
  return new Response("not found", { status: 404 });
});

// Runs until the test that started it goes away.
for await (const _ of Deno.stdin.readable) {
  // Nothing is expected on standard input; its end is the signal to stop.
}
for (const server of servers.values()) await server.close();
await http.shutdown();
