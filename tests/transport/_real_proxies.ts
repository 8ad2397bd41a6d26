/**
 * Real proxies for tests, from Debian packages (installed by `proxy_setup.sh`): dante-server's
 * `danted` (SOCKS5) and `tinyproxy` (HTTP CONNECT), each started from a private folder on a free
 * loopback port and stopped by its own process handle. When one cannot start, `reason` says why.
 */

/** The system user (and password) that `proxy_setup.sh` creates for dante's username method. */
export const SOCKS_USER = { username: "postie-socks", password: "Socks-pass7" };
/** The credentials tinyproxy's BasicAuth is configured with. */
export const HTTP_USER = { username: "ann", password: "Tiny-pass9" };

/** A running proxy, or why there is none. */
export type RealProxy =
  | {
    readonly port: number;
    readonly version: string;
    readonly log: () => Promise<string>;
    stop(): Promise<void>;
  }
  | { readonly reason: string };

const isRoot = () => Deno.uid?.() === 0;

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function version(command: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await new Deno.Command(command, {
      args,
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    return new TextDecoder().decode(stdout).trim() || new TextDecoder().decode(stderr).trim();
  } catch {
    return "unknown version";
  }
}

/** Waits until `port` on 127.0.0.1 takes connections, or the process ends, or 5 s pass. */
async function listening(port: number, child: Deno.ChildProcess): Promise<boolean> {
  let ended = false;
  const status = child.status.then(() => {
    ended = true;
  });
  for (let i = 0; i < 100 && !ended; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return true;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  void status;
  return false;
}

async function start(
  name: string,
  command: string,
  args: string[],
  dir: string,
  port: number,
  logFile: string,
  versionText: string,
): Promise<RealProxy> {
  const child = new Deno.Command(command, { args, stdout: "null", stderr: "null" }).spawn();
  const log = () => Deno.readTextFile(logFile).catch(() => "");
  if (!await listening(port, child)) {
    try {
      child.kill("SIGKILL");
    } catch { /* ended */ }
    await child.status;
    const reason = `${name} did not start on 127.0.0.1:${port}: ${(await log()).slice(-500)}`;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    return { reason };
  }
  return {
    port,
    version: versionText,
    log,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* ended */ }
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Starts `danted` with SOCKS method `none` or `username` (RFC 1929). */
export async function startDante(method: "none" | "username"): Promise<RealProxy> {
  if (!await exists("/usr/sbin/danted")) {
    return { reason: "danted is not installed (run tests/transport/proxy_setup.sh as root)" };
  }
  if (!isRoot()) return { reason: "danted needs root here (it drops to nobody)" };
  if (method === "username") {
    const known = await new Deno.Command("id", {
      args: [SOCKS_USER.username],
      stdout: "null",
      stderr: "null",
    })
      .output();
    if (!known.success) {
      return { reason: `the system user ${SOCKS_USER.username} is missing (run proxy_setup.sh)` };
    }
  }
  const dir = await Deno.makeTempDir({ prefix: "postie-dante-" });
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/danted.conf`,
    [
      `logoutput: ${dir}/danted.log`,
      `internal: 127.0.0.1 port = ${port}`,
      "external: 127.0.0.1",
      `socksmethod: ${method}`,
      "clientmethod: none",
      "user.privileged: root",
      "user.unprivileged: nobody",
      "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }",
      "socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 command: connect }",
      "",
    ].join("\n"),
  );
  const text = (await version("/usr/sbin/danted", ["-v"])).split("\n")[0] ?? "";
  return await start(
    "danted",
    "/usr/sbin/danted",
    ["-f", `${dir}/danted.conf`, "-p", `${dir}/danted.pid`, "-N", "1"],
    dir,
    port,
    `${dir}/danted.log`,
    text,
  );
}

/** Starts `tinyproxy`, with Basic authentication when `auth` is true. */
export async function startTinyproxy(auth: boolean): Promise<RealProxy> {
  if (!await exists("/usr/bin/tinyproxy")) {
    return { reason: "tinyproxy is not installed (run tests/transport/proxy_setup.sh as root)" };
  }
  const dir = await Deno.makeTempDir({ prefix: "postie-tinyproxy-" });
  await Deno.chmod(dir, 0o777);
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/tinyproxy.conf`,
    [
      ...(isRoot() ? ["User nobody", "Group nogroup"] : []),
      `Port ${port}`,
      "Listen 127.0.0.1",
      "Timeout 30",
      "MaxClients 20",
      "Allow 127.0.0.1",
      `LogFile "${dir}/tinyproxy.log"`,
      "LogLevel Info",
      ...(auth ? [`BasicAuth ${HTTP_USER.username} ${HTTP_USER.password}`] : []),
      "",
    ].join("\n"),
  );
  const text = await version("/usr/bin/tinyproxy", ["-v"]);
  return await start(
    "tinyproxy",
    "/usr/bin/tinyproxy",
    ["-d", "-c", `${dir}/tinyproxy.conf`],
    dir,
    port,
    `${dir}/tinyproxy.log`,
    text,
  );
}
