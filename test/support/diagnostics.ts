/**
 * What a failing end-to-end test leaves behind for whoever reads the failure: the log tails of the
 * daemons and clouds it ran, and their temp dirs (state dir, cloud dir with its certificates and
 * catalog) kept on disk with their paths printed. A passing test removes them as before.
 *
 * bun:test tells a hook nothing about the test's outcome, so test/support/e2e.ts wraps `test` and
 * `beforeAll` and reports here: `begin()` when a test starts, `end(failed)` when it is over (also after
 * a timeout, through onTestFinished). The daemon and cloud launchers `watch()` their process; their
 * `stop()` calls `release()`, which removes the temp dirs at once outside a test, or at the test's end
 * if it passed (a test that stops its daemon and then fails an assertion still keeps the state dir).
 */
import { rmSync } from "node:fs";

/** Lines of each log printed when a test fails: enough for the last reconnects and stream errors. */
export const TAIL_LINES = 60;
/** A JSON log line can carry a whole status or catalog; past this its middle is cut. */
const MAX_LINE_CHARS = 600;

export interface Watched {
  /** e.g. "connector (state dir /tmp/e2e-daemon-x/state)". */
  readonly label: string;
  /** Everything the process wrote so far (stdout and stderr). */
  output(): string;
  /** Temp dirs the launcher made and removes on a pass. */
  readonly dirs: readonly string[];
}

export interface WatchHandle {
  /** The process is stopped: remove its temp dirs now, or at the end of the running test if it passes. */
  release(): void;
  /** Keep the temp dirs whatever the test's outcome (a wait on this process failed and said so). */
  keep(): void;
}

interface Entry extends Watched {
  kept: boolean;
  released: boolean;
}

const live = new Set<Entry>();
/** Entries released while the current test or hook runs: their dirs wait for its verdict. */
let pending: Set<Entry> | undefined;

export function watch(watched: Watched): WatchHandle {
  const entry: Entry = { ...watched, kept: false, released: false };
  live.add(entry);
  return {
    release() {
      if (entry.released) return;
      entry.released = true;
      live.delete(entry);
      if (pending) pending.add(entry);
      else remove(entry);
    },
    keep() {
      entry.kept = true;
    },
  };
}

function remove(entry: Entry): void {
  if (entry.kept) return;
  for (const dir of entry.dirs) rmSync(dir, { recursive: true, force: true });
}

/** The last `lines` lines of `text`, each cut to a readable length. */
export function tail(text: string, lines = TAIL_LINES): string {
  const all = text.split("\n");
  if (all.at(-1) === "") all.pop();
  return all
    .slice(-lines)
    .map((line) =>
      line.length <= MAX_LINE_CHARS
        ? line
        : `${line.slice(0, MAX_LINE_CHARS / 2)} …[${line.length - MAX_LINE_CHARS} chars]… ${line.slice(-MAX_LINE_CHARS / 2)}`,
    )
    .join("\n");
}

/** A test or hook starts: processes stopped from now on keep their dirs until its verdict. */
export function begin(): void {
  pending = new Set();
}

/**
 * The test or hook is over. On a failure, prints the log tail of every process it ran (still running, or
 * stopped during it) and keeps their temp dirs; on a pass, removes the dirs of those it stopped.
 */
export function end(name: string, failed: boolean): void {
  const stopped = pending ?? new Set<Entry>();
  pending = undefined;
  if (failed) report(name, [...live, ...stopped]);
  for (const entry of stopped) remove(entry);
}

function report(name: string, entries: readonly Entry[]): void {
  if (entries.length === 0) return;
  const parts = [`=== "${name}" failed: log tails (last ${TAIL_LINES} lines) and kept temp dirs ===`];
  for (const entry of entries) {
    entry.kept = true;
    parts.push(`--- ${entry.label} ---`, tail(entry.output()) || "(no output)");
  }
  const dirs = entries.flatMap((e) => e.dirs);
  if (dirs.length > 0) parts.push(`--- temp dirs kept for inspection ---`, ...dirs);
  parts.push(`=== end of "${name}" diagnostics ===`);
  console.error(parts.join("\n"));
}
