/**
 * The benchmark's postie client under Node, against the npm build (`npm/esm/mod.js`, or the file
 * in `POSTIE_MODULE`): `scripts/bench.ts` bundles this file and runs it with `node`.
 *
 * @module
 */

import process from "node:process";
import { pathToFileURL } from "node:url";
import { type PostieModule, runPostie } from "./_bench_postie_run.ts";

const path = process.env.POSTIE_MODULE;
if (!path) throw new Error("POSTIE_MODULE must name the npm build's ESM entry (npm/esm/mod.js)");
const postie = await import(pathToFileURL(path).href) as PostieModule;
await runPostie(postie, `node ${process.versions.node}`);
process.exit(0);
