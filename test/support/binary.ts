/**
 * The compiled host binary for end-to-end tests, and a runner that executes it as a subprocess with
 * a deadline. `npm test` builds it first (`bun build.ts --host` → dist/connector); when it is
 * missing the tests fail with that instruction instead of testing a stale or absent build.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
export const BINARY_PATH = join(ROOT, "dist", "connector");

/** Path of dist/connector; throws with the build command when it has not been built. */
export function connectorBinary(): string {
  if (!existsSync(BINARY_PATH)) {
    throw new Error(
      `${BINARY_PATH} is missing: build it first with ./node_modules/.bin/bun build.ts --host (npm test does this)`,
    );
  }
  return BINARY_PATH;
}

export interface RunResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
}

export interface RunOptions {
  readonly env?: Record<string, string | undefined>;
  /** Kill the process (SIGKILL) and fail after this long; default 30 s. */
  readonly timeoutMs?: number;
  readonly stdin?: string;
  /** Working directory of the process; default the test runner's. */
  readonly cwd?: string;
}

/**
 * Environment for the binary: only what the tests give plus PATH/HOME, so a developer's HTTPS_PROXY,
 * NO_PROXY or CONNECTOR_* never leak into a test. `CONNECTOR_ENV_FILE` points nowhere real so
 * /etc/connector/connector.env is never read.
 */
export function isolatedEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/tmp",
    CONNECTOR_ENV_FILE: "/nonexistent/connector.env",
  };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** Runs `connector ARGS…` to completion. */
export async function runConnector(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  const proc = Bun.spawn([connectorBinary(), ...args], {
    env: isolatedEnv(options.env),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdin: options.stdin === undefined ? "ignore" : new TextEncoder().encode(options.stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const timeoutMs = options.timeoutMs ?? 30_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, timeoutMs);
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  if (timedOut) throw new Error(`connector ${args.join(" ")} did not finish within ${timeoutMs} ms\nstderr: ${stderr}`);
  return { exitCode, stdout, stderr, durationMs: performance.now() - started };
}
