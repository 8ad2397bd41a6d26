/**
 * The fault-injection matrix (`_matrix.mjs`) on Deno, against the module, with the fault
 * server in process. The Node test run plays the same matrix against the npm package.
 */

import * as postie from "../../mod.ts";
import { test } from "../_helpers/test.ts";
import { startFaultServer } from "./_fault_server.ts";
import { defineFaultMatrix } from "./_matrix.mjs";

defineFaultMatrix({
  postie,
  test,
  // deno-lint-ignore require-await
  startServer: async (options) => {
    const server = startFaultServer(options);
    return {
      port: server.port,
      kept: () => Promise.resolve(server.kept),
      connections: () => Promise.resolve(server.connections()),
      close: () => server.close(),
    };
  },
});
