/**
 * The package on Node.js through `import`: the ES module build, resolved through the
 * `import` condition of the package's exports map.
 */
import { pathToFileURL } from "node:url";
import { importTarget } from "./_helpers.cjs";
import { defineSuite } from "./_suite.cjs";

const postie = await import(pathToFileURL(importTarget(".")).href);
const mimeTarget = importTarget("./mime");
const mime = mimeTarget ? await import(pathToFileURL(mimeTarget).href) : undefined;

defineSuite(postie, { label: "import", mime });
