/**
 * `@postie/smtp/mime` runs on any runtime: it imports no transport, and reads files only
 * through the opener it is given.
 */

import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { test } from "../_helpers/test.ts";
import { composeMessage } from "../../src/mime/mod.ts";
import { testOpenFile } from "./_helpers.ts";

const root = fromFileUrl(new URL("../../", import.meta.url));

/** The local files in the module graph of `entry` (relative to the repository), and the rest. */
async function moduleGraph(entry: string): Promise<{ files: string[]; others: string[] }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const info = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: { specifier: string }[];
  };
  const files: string[] = [];
  const others: string[] = [];
  for (const { specifier } of info.modules) {
    if (specifier.startsWith("file://")) files.push(fromFileUrl(specifier).slice(root.length));
    else others.push(specifier);
  }
  return { files: files.sort(), others };
}

test("@postie/smtp/mime imports no transport and no runtime module", async () => {
  const { files, others } = await moduleGraph("src/mime/mod.ts");
  assert.ok(files.includes("src/mime/compose.ts"), files.join("\n"));
  assert.deepEqual(files.filter((file) => file.startsWith("src/transport/")), []);
  assert.deepEqual(others, [], "node: and remote modules");
});

test("the client's own graph does reach a transport (the check above can fail)", async () => {
  const { files } = await moduleGraph("src/client.ts");
  assert.ok(files.includes("src/transport/default.ts"), files.join("\n"));
});

test("a { path } attachment composed without a file opener fails, naming the file", async () => {
  const path = await Deno.makeTempFile({ suffix: ".txt" });
  try {
    await Deno.writeTextFile(path, "on disk");
    const message = {
      from: "ann@example.com",
      to: "bob@example.com",
      attachments: [{ content: "in memory" }, { content: { path } }],
    };
    await assert.rejects(composeMessage(message), (error: unknown) => {
      assert.ok(error instanceof TypeError);
      assert.equal(
        error.message,
        `Cannot read attachment ${JSON.stringify(path)}: no file opener was given ` +
          "(pass options.openFile, such as openFile from @postie/smtp)",
      );
      return true;
    });
    // Given an opener, the same message composes.
    const composed = await composeMessage(message, { openFile: testOpenFile });
    assert.match(await new Response(composed.body).text(), /^b24gZGlzaw==\r$/m);
  } finally {
    await Deno.remove(path);
  }
});
