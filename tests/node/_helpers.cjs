/**
 * Helpers for the Node.js tests of the built npm package: where the package and the test
 * dependencies are, an in-process `smtp-server` with the test certificates, and small raw
 * servers. CommonJS, so that both the `import` and the `require` tests can load it.
 *
 * `deno task build:npm` builds `npm/`, installs the test dependencies into `npm/.deps/` and sets
 * `POSTIE_NPM_DIR` and `POSTIE_NODE_DEPS`; the defaults below match it, so that
 * `node --test tests/node/` works after a build too.
 */
"use strict";

const { readFileSync } = require("node:fs");
const { createRequire } = require("node:module");
const net = require("node:net");
const { join, resolve } = require("node:path");
const { Buffer } = require("node:buffer");
const process = require("node:process");
const tls = require("node:tls");

const root = resolve(__dirname, "..", "..");
/** The built package (`npm/`). */
const npmDir = process.env.POSTIE_NPM_DIR || join(root, "npm");
/** Where `smtp-server`, `mailparser` and `typescript` are installed. */
const depsDir = process.env.POSTIE_NODE_DEPS || join(npmDir, ".deps");

/** Loads a test dependency from `npm/.deps`. */
function requireDependency(name) {
  try {
    return createRequire(join(depsDir, "package.json"))(name);
  } catch (error) {
    if (error && error.code === "MODULE_NOT_FOUND") {
      throw new Error(
        `Cannot load ${name} from ${depsDir}: run \`deno task build:npm\` first`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** The package's `package.json`. */
function packageJson() {
  return JSON.parse(readFileSync(join(npmDir, "package.json"), "utf8"));
}

/**
 * The file that `import` of `subpath` ("." or "./mime") resolves to, read from the package's
 * exports map; `undefined` when the package does not export it.
 */
function importTarget(subpath) {
  const entry = packageJson().exports[subpath];
  return entry ? join(npmDir, entry.import.default) : undefined;
}

/** `require(name)` as code inside the package would call it: by name, through `exports`. */
function requirePackage(subpath) {
  const name = packageJson().name + (subpath === "." ? "" : subpath.slice(1));
  return createRequire(join(npmDir, "package.json"))(name);
}

/** Reads a certificate or key from `tests/fixtures/certs/`. */
function fixture(name) {
  return readFileSync(join(root, "tests", "fixtures", "certs", name), "utf8");
}

/** The test CA, to pass as `tlsOptions.caCerts`. */
const testCa = fixture("ca.pem");

/**
 * Starts `smtp-server` on 127.0.0.1 with a free port and records what it receives.
 *
 * @param {object} options smtp-server options (`secure: true` for implicit TLS), plus:
 *   `certName` ("server", "wronghost", "expired", "selfsigned", "unknown-ca"),
 *   `rejectRecipients` (addresses refused with 550 5.1.1),
 *   `users` ({ name: password } accepted by AUTH; AUTH is then required),
 *   `recordChunks` (keep every chunk the client sent, as text; clear-text servers only).
 */
async function startSmtpServer(options = {}) {
  const { SMTPServer } = requireDependency("smtp-server");
  const {
    certName = "server",
    rejectRecipients = [],
    users,
    recordChunks = false,
    ...rest
  } = options;
  const received = [];
  const chunks = [];
  const server = new SMTPServer({
    key: fixture(`${certName}.key`),
    cert: fixture(`${certName}.pem`),
    logger: false,
    disableReverseLookup: true,
    closeTimeout: 1000,
    authOptional: !users,
    authMethods: ["PLAIN", "LOGIN", "CRAM-MD5"],
    onAuth(auth, _session, callback) {
      const password = users && Object.hasOwn(users, auth.username)
        ? users[auth.username]
        : undefined;
      const ok = password !== undefined &&
        (auth.method === "CRAM-MD5" ? auth.validatePassword(password) : auth.password === password);
      if (!ok) return callback(new Error("Invalid username or password"));
      callback(null, { user: auth.username });
    },
    onRcptTo(address, _session, callback) {
      if (rejectRecipients.includes(address.address)) {
        const error = new Error("5.1.1 No such user here");
        error.responseCode = 550;
        return callback(error);
      }
      callback();
    },
    onData(stream, session, callback) {
      const parts = [];
      stream.on("data", (chunk) => parts.push(chunk));
      stream.on("end", () => {
        const raw = Buffer.concat(parts);
        const envelope = session.envelope;
        received.push({
          from: envelope.mailFrom ? envelope.mailFrom.address : "",
          to: envelope.rcptTo.map((r) => r.address),
          raw,
          text: raw.toString("utf8"),
          secure: session.secure,
          user: session.user,
          mailArgs: envelope.mailFrom ? envelope.mailFrom.args : {},
        });
        callback(null, `Message queued as test-${received.length}`);
      });
    },
    ...rest,
  });
  if (recordChunks) {
    server.server.on("connection", (socket) => {
      socket.on("data", (chunk) => chunks.push(chunk.toString("utf8")));
    });
  }
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  server.on("error", () => {});
  const port = server.server.address().port;
  const close = () => new Promise((resolve) => server.close(() => resolve()));
  return { port, received, chunks, close };
}

/**
 * Starts a raw TCP (or, with `tlsOptions`, implicit TLS) listener on 127.0.0.1 that hands each
 * socket to `onSocket`. `close()` destroys every socket and stops listening.
 */
async function startRawServer(onSocket, tlsOptions) {
  const sockets = new Set();
  const handle = (socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    onSocket(socket);
  };
  const server = tlsOptions ? tls.createServer(tlsOptions, handle) : net.createServer(handle);
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: server.address().port,
    sockets,
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Parses a received message with npm `mailparser` (a MIME parser that is not ours). */
function parseMail(raw) {
  const { simpleParser } = requireDependency("mailparser");
  return simpleParser(raw);
}

module.exports = {
  depsDir,
  fixture,
  importTarget,
  npmDir,
  packageJson,
  parseMail,
  requireDependency,
  requirePackage,
  root,
  startRawServer,
  startSmtpServer,
  testCa,
};
