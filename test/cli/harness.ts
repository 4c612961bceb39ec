/** Runs the CLI in-process with captured output and an environment of the test's own (never the real one). */
import { join } from "node:path";
import { tmpdir } from "node:os";
import type { CliIo } from "../../src/cli/io.ts";
import { run } from "../../src/cli/main.ts";

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** No env file: a developer's /etc/connector/connector.env must not change what the tests see. */
export const NO_ENV_FILE = join(tmpdir(), "connector-cli-test-absent", "connector.env");

export async function runCli(argv: string[], env: Record<string, string> = {}): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    env: { CONNECTOR_ENV_FILE: NO_ENV_FILE, ...env },
    stdoutIsTTY: false,
    stderrIsTTY: false,
    stderrIsJournal: false,
    execPath: "/nonexistent/connector",
    onInterrupt: () => () => {},
  };
  const code = await run(argv, io);
  return { code, stdout, stderr };
}

/** Nothing a user sees may cite a section of a document they do not have. */
export function citesNothingOutside(text: string): boolean {
  return !/§|PRODUCT\.md/.test(text);
}
