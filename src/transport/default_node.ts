/**
 * The runtime seam for Node.js: the npm build maps `default.ts` to this module.
 *
 * @module
 */

export { nodeOpenFile as openFile, nodeTransport as defaultTransport } from "./node.ts";
