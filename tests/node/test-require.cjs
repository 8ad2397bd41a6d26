/**
 * The package on Node.js through `require`: the CommonJS build, resolved by name through the
 * `require` condition of the package's exports map.
 */
"use strict";

const { packageJson, requirePackage } = require("./_helpers.cjs");
const { defineSuite } = require("./_suite.cjs");

const postie = requirePackage(".");
const mime = packageJson().exports["./mime"] ? requirePackage("./mime") : undefined;

defineSuite(postie, { label: "require", mime });
