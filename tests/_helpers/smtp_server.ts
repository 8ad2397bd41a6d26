/** The in-process `smtp-server` used by the tests (shared with the demo). */
export * from "../../scripts/_local_server.ts";

/** What smtp-server hands to `onAuth` (its types leave it untyped). */
export interface AuthSession {
  method: string;
  username?: string;
  password?: string;
  accessToken?: string;
  validatePassword?: (password: string) => boolean;
}
