/** The in-process `smtp-server` used by the tests (shared with the demo). */
export * from "../../scripts/_local_server.ts";
