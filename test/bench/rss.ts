/**
 * Memory of the measured relay process, from /proc. A single process: VmRSS of /proc/<pid>/status (what
 * BENCHMARKS.md targets). A forking relay (socat: one child per connection): the sum of Pss over the
 * process tree — summing VmRSS would count the shared libraries once per connection, 10,000 times.
 */
import { readFileSync } from "node:fs";
import { descendants } from "./procs.ts";

/** Which process a path's memory is read from, and whether its forked children count. */
export interface MeasuredProcess {
  pid: number;
  tree: boolean;
}

/** Reads a "Name:   123 kB" field of a /proc file, in KiB; undefined when the process or field is gone. */
export function procFieldKiB(text: string, field: string): number | undefined {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(text);
  return match ? Number(match[1]) : undefined;
}

function readOr(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** Current memory in KiB, or undefined when the process is gone. */
export function memoryKiB(target: MeasuredProcess): number | undefined {
  if (!target.tree) return procFieldKiB(readOr(`/proc/${target.pid}/status`), "VmRSS");
  const own = procFieldKiB(readOr(`/proc/${target.pid}/smaps_rollup`), "Pss");
  if (own === undefined) return undefined;
  return descendants(target.pid).reduce(
    (sum, pid) => sum + (procFieldKiB(readOr(`/proc/${pid}/smaps_rollup`), "Pss") ?? 0),
    own,
  );
}
