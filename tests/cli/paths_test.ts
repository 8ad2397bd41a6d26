/**
 * Relative file paths on the command line (`--text @file`, `--html @file`, `--attach`,
 * `--ca-file`) resolve against the directory the user ran the command in: `INIT_CWD`, which
 * `deno task` and `npm run` set while they run the program in the project's folder, else the
 * working directory. Errors name the full path.
 */

import assert from "node:assert/strict";
import { test } from "../_helpers/test.ts";
import { resolvePath } from "../../src/cli/_files.ts";
import { EXIT_NO_INPUT, EXIT_OK, main } from "../../src/cli/main.ts";

const root = new URL("../../", import.meta.url).pathname;

test("resolvePath() joins relative paths to the base and leaves absolute ones alone", () => {
  const cases: [string, string | undefined, string][] = [
    ["body.txt", "/home/zoe/project/mail", "/home/zoe/project/mail/body.txt"],
    ["./body.txt", "/home/zoe", "/home/zoe/body.txt"],
    ["../body.txt", "/home/zoe/project", "/home/zoe/body.txt"],
    ["../../../../x", "/home/zoe", "/x"],
    ["a//b/", "/base/", "/base/a/b"],
    ["/etc/hosts", "/home/zoe", "/etc/hosts"],
    ["body.txt", undefined, "body.txt"],
    ["body.txt", "C:\\Users\\zoe", "C:\\Users\\zoe\\body.txt"],
    ["..\\body.txt", "C:\\Users\\zoe", "C:\\Users\\body.txt"],
    ["D:\\mail\\body.txt", "C:\\Users\\zoe", "D:\\mail\\body.txt"],
    ["\\\\server\\share\\a.pdf", "C:\\Users\\zoe", "\\\\server\\share\\a.pdf"],
  ];
  for (const [path, base, expected] of cases) {
    assert.equal(resolvePath(path, base), expected, `${path} in ${base}`);
  }
});

/** Runs the command line in process, as from `cwd` with `INIT_CWD` set to `initCwd`. */
async function run(args: string[], initCwd: string | undefined, cwd = root) {
  let stdout = "";
  let stderr = "";
  const decode = (data: string | Uint8Array) =>
    typeof data === "string" ? data : new TextDecoder().decode(data);
  const code = await main(args, {
    stdout: { write: (data) => void (stdout += decode(data)) },
    stderr: { write: (data) => void (stderr += decode(data)) },
    env: initCwd === undefined ? {} : { INIT_CWD: initCwd },
    cwd,
  });
  return { code, stdout, stderr };
}

const message = ["send", "--dry-run", "--from", "a@example.com", "--to", "b@example.com"];

test("--text @file, --html @file and --attach resolve against INIT_CWD, not the project folder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/body.txt`, "Body from the user's folder\n");
    await Deno.writeTextFile(`${dir}/page.html`, "<p>Page</p>\n");
    await Deno.writeTextFile(`${dir}/data.csv`, "a,b\n");
    const args = [...message, "--text", "@body.txt", "--html", "@./page.html"];
    const fromTask = await run([...args, "--attach", "data.csv"], dir);
    assert.equal(fromTask.code, EXIT_OK, fromTask.stderr);
    assert.match(fromTask.stdout, /Body from the user's folder/);
    assert.match(fromTask.stdout, /<p>Page<\/p>/);
    assert.match(fromTask.stdout, /^Content-Disposition: attachment; filename=data\.csv\r$/m);
    // Without INIT_CWD, the working directory the entry point gives.
    const direct = await run([...args], undefined, dir);
    assert.equal(direct.code, EXIT_OK, direct.stderr);
    assert.match(direct.stdout, /Body from the user's folder/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("a missing file is named with its full path (exit 66)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const text = await run([...message, "--text", "@missing.txt"], dir);
    assert.equal(text.code, EXIT_NO_INPUT);
    assert.equal(
      text.stderr.trim(),
      `postie: Cannot read --text file ${dir}/missing.txt: no such file`,
    );
    const attach = await run([...message, "--attach", "../gone.pdf"], `${dir}/sub`);
    assert.equal(attach.code, EXIT_NO_INPUT);
    assert.equal(attach.stderr.trim(), `postie: Cannot attach ${dir}/gone.pdf: no such file`);
    const ca = await run(
      ["check", "--server", "127.0.0.1:9", "--ca-file", "ca.pem"],
      dir,
    );
    assert.equal(ca.code, EXIT_NO_INPUT);
    assert.equal(ca.stderr.trim(), `postie: Cannot read --ca-file ${dir}/ca.pem: no such file`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("deno task postie from another folder reads @file from that folder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/body.txt`, "Written where the user stands\n");
    // deno task sets INIT_CWD only when it is not set: this test may itself run under a task.
    const env = Deno.env.toObject();
    delete env.INIT_CWD;
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "task",
        "--quiet",
        "--config",
        `${root}deno.json`,
        "postie",
        ...message,
        "--text",
        "@body.txt",
      ],
      cwd: dir,
      clearEnv: true,
      env: { ...env, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, EXIT_OK, err);
    assert.match(new TextDecoder().decode(stdout), /Written where the user stands/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
