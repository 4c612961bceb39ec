/**
 * Start of every command that handles secrets (`run`, `enroll`): the process becomes non-dumpable (a
 * core dump would hold the private key and the provisioning key; other processes of the same user
 * could ptrace it or read its /proc files), and secret environment variables are taken out of the
 * environment: the command gets a private copy, `process.env` loses them, and their bytes in the
 * original environment block (what /proc/PID/environ shows, for as long as the process lives) are
 * overwritten. The value lives on only in the copy, in the memory of a process nobody else may read.
 * Callers name the variables: the provisioning key, and the proxy variables (CONNECTOR_PROXY,
 * HTTPS_PROXY, https_proxy), whose URL may carry a password; settings are read from the copy.
 */
import { scrubEnvironmentValue, setNonDumpable } from "./libc.ts";

export interface ProtectedEnv {
  /** The environment as it was, secrets included, for the command's own use. */
  readonly env: Record<string, string | undefined>;
  /** What could not be done (e.g. no C library to call), for the command to log once it has a logger. */
  readonly problems: string[];
}

export function protectProcessSecrets(
  secretNames: readonly string[],
  env: Record<string, string | undefined> = process.env,
): ProtectedEnv {
  const problems: string[] = [];
  try {
    setNonDumpable();
  } catch (err) {
    problems.push(`the process could not be made non-dumpable: ${err instanceof Error ? err.message : String(err)}`);
  }
  const copy = { ...env };
  for (const name of secretNames) {
    if (env[name] === undefined) continue;
    // Overwrite before deleting: once the runtime unsets it, getenv can no longer find the bytes.
    try {
      scrubEnvironmentValue(name);
    } catch (err) {
      problems.push(
        `${name} could not be cleared from the process environment: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    delete env[name];
  }
  return { env: copy, problems };
}
