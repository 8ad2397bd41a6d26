/**
 * The benchmark's postie client under Deno, against the module (see `_bench_postie_run.ts`).
 *
 * @module
 */

import * as postie from "../mod.ts";
import { runPostie } from "./_bench_postie_run.ts";

await runPostie(postie, `deno ${Deno.version.deno}`);
Deno.exit(0);
