/**
 * `protocol: "lmtp"` against Dovecot's LMTP service (Debian `dovecot-lmtpd`), started by the test
 * from a private folder, over TCP on a free loopback port and over a Unix domain socket (`path`).
 * One message to three recipients: one delivered, one unknown (refused at RCPT), one over its
 * quota (refused after the data, in LMTP's per-recipient reply); the results are asserted and the
 * delivered copy is found in the Maildir. Skipped with a printed reason when Dovecot cannot start.
 */
import assert from "node:assert/strict";
import { sendMail } from "../../mod.ts";
import { test } from "../_helpers/test.ts";

const DOVECOT = "/usr/sbin/dovecot";
const LMTP = "/usr/lib/dovecot/lmtp";

interface Dovecot {
  readonly port: number;
  readonly socket: string;
  readonly dir: string;
  readonly version: string;
  stop(): Promise<void>;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Starts Dovecot with only its LMTP service, or says why it cannot. */
async function startDovecot(): Promise<Dovecot | string> {
  if (!await exists(DOVECOT) || !await exists(LMTP)) {
    return "dovecot-core and dovecot-lmtpd are not installed (tests/transport/proxy_setup.sh installs them)";
  }
  if (Deno.uid?.() !== 0) {
    return "Dovecot's LMTP delivery needs root here (it switches to the mail user)";
  }
  const dir = await Deno.makeTempDir({ prefix: "postie-lmtp-" });
  await Deno.chmod(dir, 0o755);
  await Deno.mkdir(`${dir}/mail`, { mode: 0o777 });
  await Deno.chmod(`${dir}/mail`, 0o777);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const socket = `${dir}/lmtp.sock`;
  // uid/gid 65534 (nobody): the delivered files belong to nobody, in this folder only.
  await Deno.writeTextFile(
    `${dir}/users`,
    `ann@postie.test:{PLAIN}x:65534:65534::${dir}/mail/ann::\n` +
      `full@postie.test:{PLAIN}x:65534:65534::${dir}/mail/full::userdb_quota_rule=*:storage=1K\n`,
  );
  await Deno.writeTextFile(
    `${dir}/dovecot.conf`,
    `# postie LMTP test: Dovecot's LMTP service only, on 127.0.0.1 and a socket in this folder.
instance_name = ${dir.split("/").pop()}
base_dir = ${dir}/run
state_dir = ${dir}/state
protocols = lmtp
ssl = no
log_path = ${dir}/dovecot.log
mail_location = maildir:~/Maildir
first_valid_uid = 1
mail_plugins = quota
plugin {
  quota = maildir:User quota
  quota_rule = *:storage=100M
}
passdb {
  driver = passwd-file
  args = ${dir}/users
}
userdb {
  driver = passwd-file
  args = ${dir}/users
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${port}
  }
  unix_listener ${socket} {
    mode = 0666
  }
}
service stats {
  unix_listener stats-reader {
    mode = 0600
  }
  unix_listener stats-writer {
    mode = 0600
  }
}
`,
  );
  const child = new Deno.Command(DOVECOT, {
    args: ["-F", "-c", `${dir}/dovecot.conf`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  let ended = false;
  child.status.then(() => ended = true);
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* ended */ }
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  for (let i = 0; i < 100 && !ended; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      if (await exists(socket)) {
        const version = new TextDecoder().decode(
          (await new Deno.Command(DOVECOT, { args: ["--version"], stdout: "piped" }).output())
            .stdout,
        ).trim();
        return { port, socket, dir, version, stop };
      }
    } catch { /* not yet */ }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const log = await Deno.readTextFile(`${dir}/dovecot.log`).catch(() => "");
  await stop();
  return `Dovecot did not start: ${log.slice(-400)}`;
}

async function deliveredTo(dir: string, user: string, mark: string): Promise<number> {
  let count = 0;
  try {
    for await (const entry of Deno.readDir(`${dir}/mail/${user}/Maildir/new`)) {
      if (
        (await Deno.readTextFile(`${dir}/mail/${user}/Maildir/new/${entry.name}`)).includes(mark)
      ) {
        count++;
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return count;
}

test("LMTP to Dovecot over TCP and a Unix socket: per-recipient results after the data", async () => {
  const dovecot = await startDovecot();
  if (typeof dovecot === "string") {
    console.log(`LMTP SKIPPED: ${dovecot}`);
    return;
  }
  console.log(`Dovecot ${dovecot.version} LMTP on 127.0.0.1:${dovecot.port} and ${dovecot.socket}`);
  try {
    const ways = [
      ["TCP", { hostname: "127.0.0.1", port: dovecot.port }],
      ["Unix socket", { hostname: "localhost", path: dovecot.socket }],
    ] as const;
    for (const [way, target] of ways) {
      const mark = crypto.randomUUID();
      const result = await sendMail({ ...target, tls: "none", protocol: "lmtp" }, {
        from: "sender@example.com",
        to: ["ann@postie.test", "nobody@postie.test", "full@postie.test"],
        subject: `LMTP over ${way} ${mark}`,
        text: `${mark}\n${"Larger than the 1 KiB quota of full@. ".repeat(60)}\n`,
      });
      assert.deepEqual(result.accepted.map((r) => [r.address, r.reply.code]), [
        ["ann@postie.test", 250],
      ], way);
      assert.deepEqual(
        result.rejected.map((r) => [r.address, r.reply.code, r.reply.enhancedStatus?.subject]),
        [["nobody@postie.test", 550, 1], ["full@postie.test", 552, 2]],
        way,
      );
      assert.match(result.rejected[1]!.reply.lines.join(" "), /Quota exceeded/i);
      assert.equal(await deliveredTo(dovecot.dir, "ann", mark), 1, way);
      assert.equal(await deliveredTo(dovecot.dir, "full", mark), 0, way);
    }
  } catch (error) {
    console.log(await Deno.readTextFile(`${dovecot.dir}/dovecot.log`).catch(() => ""));
    throw error;
  } finally {
    await dovecot.stop();
  }
});
