/**
 * The process's own resource use, read from /proc on each metrics scrape, for the `process_*` series
 * the Prometheus client libraries export (same names and meanings, so existing dashboards and alerts
 * work): CPU time, resident and virtual memory, open and maximum fds, start time. A few small files and
 * one directory walk; nothing is cached. Off Linux (no /proc) there are no stats: the series are left
 * out rather than reported as 0.
 */
import { opendirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface ProcessStats {
  /** User plus system CPU time. */
  readonly cpuSeconds: number;
  readonly residentBytes: number;
  readonly virtualBytes: number;
  /** Unix time the process started. */
  readonly startTimeSeconds: number;
  /** Undefined when /proc/self/fd cannot be read. */
  readonly openFds?: number;
  /** The soft RLIMIT_NOFILE; undefined when unlimited or unreadable. */
  readonly maxFds?: number;
}

/**
 * Clock ticks per second in /proc/PID/stat: the kernel reports times in USER_HZ, which is 100 on every
 * architecture the connector is built for (the Prometheus Go client assumes the same).
 */
const USER_HZ = 100;

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * Fields 3 onwards of /proc/PID/stat (state, ppid, …): everything after the command name, which is in
 * parentheses and may itself hold spaces and parentheses, so the last ")" ends it.
 */
function statFields(text: string): string[] | undefined {
  const end = text.lastIndexOf(")");
  if (end < 0) return undefined;
  return text
    .slice(end + 1)
    .trim()
    .split(/\s+/);
}

/** `Name:   1234 kB` in /proc/PID/status, in bytes. */
function statusKilobytes(text: string, name: string): number | undefined {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(text);
  return match ? Number(match[1]) * 1024 : undefined;
}

/** The soft "Max open files" of /proc/PID/limits; undefined when unlimited. */
export function parseMaxOpenFiles(limits: string): number | undefined {
  const match = /^Max open files\s+(\S+)/m.exec(limits);
  if (!match || match[1] === "unlimited") return undefined;
  const soft = Number(match[1]);
  return Number.isSafeInteger(soft) ? soft : undefined;
}

/**
 * Entries in the fd directory, read one at a time (no array of a million names). The walk's own fd is
 * among them, as it is for the Prometheus clients.
 */
function countFds(dir: string): number | undefined {
  try {
    const handle = opendirSync(dir);
    let count = 0;
    try {
      while (handle.readSync() !== null) count++;
    } finally {
      handle.closeSync();
    }
    return count;
  } catch {
    return undefined;
  }
}

/**
 * This process's stats from `proc` (the /proc mount; a fixture dir in tests), or undefined when
 * /proc/self/stat, /proc/self/status or the boot time cannot be read or parsed.
 */
export function readProcessStats(proc = "/proc"): ProcessStats | undefined {
  const stat = read(join(proc, "self", "stat"));
  const status = read(join(proc, "self", "status"));
  const btime = /^btime\s+(\d+)$/m.exec(read(join(proc, "stat")) ?? "");
  if (stat === undefined || status === undefined || !btime) return undefined;
  const fields = statFields(stat);
  // Field n of stat(5) is fields[n - 3]: utime 14, stime 15, starttime 22, vsize 23.
  const [utime, stime, starttime, vsize] = [14, 15, 22, 23].map((n) => Number(fields?.[n - 3]));
  const resident = statusKilobytes(status, "VmRSS");
  if (![utime, stime, starttime, vsize].every((n) => Number.isFinite(n)) || resident === undefined) return undefined;
  const limits = read(join(proc, "self", "limits"));
  const openFds = countFds(join(proc, "self", "fd"));
  const maxFds = limits === undefined ? undefined : parseMaxOpenFiles(limits);
  return {
    cpuSeconds: (utime! + stime!) / USER_HZ,
    residentBytes: resident,
    virtualBytes: vsize!,
    startTimeSeconds: Number(btime[1]) + starttime! / USER_HZ,
    ...(openFds === undefined ? {} : { openFds }),
    ...(maxFds === undefined ? {} : { maxFds }),
  };
}
