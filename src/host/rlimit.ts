/**
 * The process's file-descriptor limit (RLIMIT_NOFILE) and how many fds are open. Every stream costs
 * an fd (its app socket), so the limit is what the connector can serve: at start the soft limit is
 * raised to the hard one, capped at 1,048,576 (distributions default the soft limit to 1,024 while
 * allowing far more), and
 * the dataplane keeps a reserve below it (src/dataplane/admission.ts).
 *
 * Bun has no rlimit API; libc's getrlimit/setrlimit are called through bun:ffi (src/host/libc.ts).
 * Anything that fails here (no libc, not Linux) reports "unknown" instead of
 * throwing: the connector then runs with whatever limit it was given.
 */
import { closeSync, openSync, readdirSync } from "node:fs";
import { getrlimit, setrlimit } from "./libc.ts";

/** RLIMIT_NOFILE on Linux (every architecture the connector is built for). */
const RLIMIT_NOFILE = 7;
/** `RLIM_INFINITY` as the kernel reports it in a 64-bit rlim_t. */
const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

export interface NoFileLimit {
  readonly soft: number;
  readonly hard: number;
}

export interface Libc {
  getrlimit(resource: number, out: BigUint64Array): number;
  setrlimit(resource: number, value: BigUint64Array): number;
}

/** The C library's rlimit calls, or null where there is none (not Linux, no libc to load). */
function loadLibc(): Libc | null {
  if (process.platform !== "linux") return null;
  try {
    const probe = new BigUint64Array(2);
    getrlimit(RLIMIT_NOFILE, probe); // loads the library now, so a missing one is "unknown", not a throw later
    return { getrlimit, setrlimit };
  } catch {
    return null;
  }
}

const toNumber = (value: bigint): number => (value === RLIM_INFINITY ? Infinity : Number(value));

/**
 * The highest soft limit the connector raises itself to: 1,048,576 (1 << 20, Linux's default
 * fs.nr_open). Containers often have a hard limit near 1e9 or infinity; raised that far, every
 * child and every loop that sizes itself by the limit (the dataplane's reserve and stream cap) would
 * plan for a billion fds the host could never give.
 */
export const MAX_SOFT_NOFILE = 1 << 20;

/** The current soft and hard limits, or undefined when they cannot be read. */
export function getNoFileLimit(c: Libc | null = loadLibc()): NoFileLimit | undefined {
  if (!c) return undefined;
  const out = new BigUint64Array(2);
  if (c.getrlimit(RLIMIT_NOFILE, out) !== 0) return undefined;
  return { soft: toNumber(out[0]!), hard: toNumber(out[1]!) };
}

/**
 * Raises the soft limit to the hard one, at most to `MAX_SOFT_NOFILE`; the hard limit is left as it
 * is. Returns the limits before and after (equal when nothing changed or the call failed), or
 * undefined when they cannot be read. `c` is the C library (a fake in tests).
 */
export function raiseNoFileLimit(c: Libc | null = loadLibc()): { before: NoFileLimit; after: NoFileLimit } | undefined {
  const before = getNoFileLimit(c);
  if (!before || !c) return before && { before, after: before };
  const target = Math.min(before.hard, MAX_SOFT_NOFILE);
  if (before.soft >= target) return { before, after: before };
  const value = new BigUint64Array([BigInt(target), before.hard === Infinity ? RLIM_INFINITY : BigInt(before.hard)]);
  if (c.setrlimit(RLIMIT_NOFILE, value) !== 0) return { before, after: before };
  return { before, after: getNoFileLimit(c) ?? before };
}

/** fds open in this process now (/proc/self/fd, less the one readdir itself holds), or undefined off Linux. */
export function countOpenFds(): number | undefined {
  try {
    return Math.max(0, readdirSync("/proc/self/fd").length - 1);
  } catch {
    return undefined;
  }
}

/**
 * Whether this process is out of fds right now: opens /dev/null, the cheapest fd there is. Bun reports
 * EMFILE from `Bun.connect` as ECONNREFUSED, so a "refused" dial is confirmed here before the app is
 * blamed for it.
 */
export function outOfFds(): boolean {
  try {
    closeSync(openSync("/dev/null", "r"));
    return false;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return code === "EMFILE" || code === "ENFILE";
  }
}
