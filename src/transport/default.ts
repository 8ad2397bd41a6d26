/**
 * The runtime seam for Deno. The npm build maps this module to `node.ts`.
 *
 * @module
 */

export { denoOpenFile as openFile, denoTransport as defaultTransport } from "./deno.ts";
