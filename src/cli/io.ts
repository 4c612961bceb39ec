/**
 * Everything the CLI takes from its process, passed in: where output goes, the environment settings
 * are read from, whether stdout/stderr are terminals, the binary's own path (upgrades replace it) and
 * SIGINT. `run(argv, io)` can so run in-process (the CLI tests do) with no global state touched by
 * parsing, help or usage errors.
 */
import { stderrIsJournal } from "../log.ts";

export interface CliIo {
  /** Command output (`--json` and the like). */
  readonly stdout: (text: string) => void;
  /** Errors and help for a usage error; logs go here too. */
  readonly stderr: (text: string) => void;
  /** The environment settings are read from; `run` and `enroll` take secrets out of it. */
  readonly env: Record<string, string | undefined>;
  readonly stdoutIsTTY: boolean;
  readonly stderrIsTTY: boolean;
  /** stderr is systemd's journal stream: log lines carry `<N>` priority prefixes. */
  readonly stderrIsJournal: boolean;
  /** The running binary's path: what `upgrade` replaces. */
  readonly execPath: string;
  /** Calls `handler` on the first SIGINT; returns a function that stops listening. */
  readonly onInterrupt: (handler: () => void) => () => void;
}

export function processIo(): CliIo {
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    env: process.env,
    stdoutIsTTY: Boolean(process.stdout.isTTY),
    stderrIsTTY: Boolean(process.stderr.isTTY),
    stderrIsJournal: stderrIsJournal(process.env),
    execPath: process.execPath,
    onInterrupt: (handler) => {
      process.once("SIGINT", handler);
      return () => void process.off("SIGINT", handler);
    },
  };
}

/** Writes command output with a final newline. */
export function printOut(io: CliIo, text: string): void {
  io.stdout(text.endsWith("\n") ? text : `${text}\n`);
}
