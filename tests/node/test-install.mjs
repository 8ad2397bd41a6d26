/**
 * The package as users get it: `npm pack` the built folder, install the tarball into a fresh
 * Node.js project, then load it by name with `import` and `require`, and type-check a
 * TypeScript consumer of each kind against its declarations (module resolution `node16`).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { depsDir, npmDir, packageJson, requireDependency } from "./_helpers.cjs";

const pkg = packageJson();
const hasMime = Boolean(pkg.exports["./mime"]);
let dir;
let project;

function run(command, args, cwd) {
  return execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), "postie-install-"));
  run("npm", ["pack", npmDir, "--pack-destination", dir, "--loglevel=error"], dir);
  const tarball = readdirSync(dir).find((name) => name.endsWith(".tgz"));
  assert.ok(tarball, "npm pack wrote no tarball");
  project = join(dir, "consumer");
  mkdirSync(project);
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "consumer", version: "1.0.0", private: true }),
  );
  run("npm", [
    "install",
    "--no-audit",
    "--no-fund",
    "--ignore-scripts",
    "--loglevel=error",
    join(dir, tarball),
  ], project);
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the tarball holds the builds, the types, README and LICENSE, and nothing else", () => {
  const listing = JSON.parse(run("npm", ["pack", npmDir, "--dry-run", "--json"], dir))[0];
  const files = listing.files.map((file) => file.path);
  for (const file of ["package.json", "README.md", "LICENSE", "esm/mod.js", "cjs/mod.js"]) {
    assert.ok(files.includes(file), `${file} is missing`);
  }
  assert.ok(files.includes("types/mod.d.ts") && files.includes("cjs/mod.d.ts"));
  const stray = files.filter((file) => !/^(esm|cjs|types)\/|^[^/]+$/.test(file));
  assert.deepEqual(stray, []);
  assert.deepEqual(listing.bundled ?? [], []);
});

test("require() by name loads the CommonJS build", () => {
  const script = `
    const postie = require("@postie/smtp");
    const out = { client: typeof postie.SmtpClient.connect, send: typeof postie.sendMail,
      tls: new postie.SmtpTlsError("x").phase };
    if (${hasMime}) out.mime = typeof require("@postie/smtp/mime").composeMessage;
    console.log(JSON.stringify(out));`;
  const out = JSON.parse(run("node", ["-e", script], project));
  assert.deepEqual(out, {
    client: "function",
    send: "function",
    tls: "tls",
    ...(hasMime ? { mime: "function" } : {}),
  });
});

test("import by name loads the ES module build", () => {
  const script = `
    const postie = await import("@postie/smtp");
    const out = { client: typeof postie.SmtpClient.connect, send: typeof postie.sendMail,
      esm: import.meta.resolve("@postie/smtp").includes("/esm/") };
    if (${hasMime}) out.mime = typeof (await import("@postie/smtp/mime")).composeMessage;
    console.log(JSON.stringify(out));`;
  const out = JSON.parse(run("node", ["--input-type=module", "-e", script], project));
  assert.deepEqual(out, {
    client: "function",
    send: "function",
    esm: true,
    ...(hasMime ? { mime: "function" } : {}),
  });
});

test("TypeScript consumers type-check with import (.mts) and require (.cts)", () => {
  const ts = requireDependency("typescript");
  const usage = `
    const options: ClientOptions = { hostname: "localhost", tls: "starttls" };
    export async function run(): Promise<number> {
      const client: SmtpClient = await SmtpClient.connect(options);
      const result = await client.send({ raw: "x", envelope: { from: "a@b.c", to: ["d@e.f"] } });
      await client.quit();
      return result.accepted.length;
    }
    export const isTls = (error: unknown): boolean => error instanceof SmtpTlsError;`;
  writeFileSync(
    join(project, "index.mts"),
    `import { type ClientOptions, SmtpClient, SmtpTlsError } from "@postie/smtp";\n${usage}`,
  );
  writeFileSync(
    join(project, "index.cts"),
    `import { type ClientOptions, SmtpClient, SmtpTlsError } from "@postie/smtp";\n${usage}`,
  );
  const program = ts.createProgram({
    rootNames: [join(project, "index.mts"), join(project, "index.cts")],
    options: {
      module: ts.ModuleKind.Node16,
      moduleResolution: ts.ModuleResolutionKind.Node16,
      target: ts.ScriptTarget.ES2022,
      lib: ["lib.es2022.d.ts"],
      types: ["node"],
      typeRoots: [join(depsDir, "node_modules", "@types")],
      strict: true,
      noEmit: true,
    },
  });
  const diagnostics = ts.getPreEmitDiagnostics(program);
  const text = ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: (name) => name,
    getCurrentDirectory: () => project,
    getNewLine: () => "\n",
  });
  assert.equal(diagnostics.length, 0, text);
  // Each kind of consumer got its own declarations: ESM-flavoured for import, CJS for require.
  const loaded = program.getSourceFiles().map((file) => file.fileName);
  assert.ok(loaded.some((name) => name.endsWith("/@postie/smtp/types/mod.d.ts")), "types/");
  assert.ok(loaded.some((name) => name.endsWith("/@postie/smtp/cjs/mod.d.ts")), "cjs/");
});

test("the installed bin runs", { skip: !pkg.bin && "the package has no bin yet" }, () => {
  for (const name of Object.keys(pkg.bin ?? {})) {
    const help = run(join(project, "node_modules", ".bin", name), ["--help"], project);
    assert.match(help, /send/i, `${name} --help`);
  }
});
