/**
 * What moving traffic costs a path: CPU time and read/write syscalls of its relay processes over exactly
 * a measured interval, from /proc. Two readings (before, after) of every process of the path, then the
 * difference per unit of work: CPU seconds per GiB and syscalls per MiB for bulk, CPU seconds per 10,000
 * requests (or new streams) and syscalls per request for the others.
 *
 * CPU is utime + stime + cutime + cstime of /proc/PID/stat, in clock ticks: the process's own time and
 * the time of every child it has reaped, so a forking relay's connection children (socat, sshd) count
 * even when they exited and were reaped inside the interval. Syscalls are syscr + syscw of /proc/PID/io
 * (read-like and write-like calls only: read, recv, write, send and their vector forms — not epoll,
 * poll or anything else); the kernel adds a reaped child's counters to its parent's, like the times.
 * Imported by the load generator too (it takes the readings at its own window's edges): no heavy imports.
 */
import { readFileSync } from "node:fs";
import * as v from "valibot";
import { descendants } from "./procs.ts";

/** The fields of /proc/PID/stat the harness uses. */
export interface ProcStat {
  ppid: number;
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
}

/**
 * Parses /proc/PID/stat. The second field is the command name in parentheses, and it may itself hold
 * spaces and parentheses (`(my (odd) name)`), so fields are counted from the last ")" on.
 */
export function parseStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  // after ") ": state(3) ppid(4) pgrp(5) session(6) tty_nr(7) tpgid(8) flags(9) minflt(10) cminflt(11)
  // majflt(12) cmajflt(13) utime(14) stime(15) cutime(16) cstime(17) …: field N is at index N - 3
  const fields = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const at = (n: number) => Number(fields[n - 3]);
  const stat = { ppid: at(4), utime: at(14), stime: at(15), cutime: at(16), cstime: at(17) };
  return Object.values(stat).every((x) => Number.isInteger(x) && x >= 0) ? stat : undefined;
}

/** The fields of /proc/PID/io the harness uses: bytes and calls of read-like and write-like syscalls. */
export interface ProcIo {
  rchar: number;
  wchar: number;
  syscr: number;
  syscw: number;
}

export function parseIo(text: string): ProcIo | undefined {
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s*(\\d+)$`, "m").exec(text);
    return match ? Number(match[1]) : undefined;
  };
  const io = { rchar: field("rchar"), wchar: field("wchar"), syscr: field("syscr"), syscw: field("syscw") };
  const { rchar, wchar, syscr, syscw } = io;
  if (rchar === undefined || wchar === undefined || syscr === undefined || syscw === undefined) return undefined;
  return { rchar, wchar, syscr, syscw };
}

/** Processes read together: the roots, and with `tree` every live descendant of each root. */
export const ProcGroupSchema = v.object({ pids: v.array(v.number()), tree: v.boolean() });
export type ProcGroup = v.InferOutput<typeof ProcGroupSchema>;

/**
 * Where a path's cost is read: `relay` is the process on the app's side of the path (the connector, sshd,
 * socat) — the product's own figure is the connector against sshd; `rest` is everything else the path
 * runs (the cloud's gateways, the ssh client; nothing for socat). The whole path is relay + rest.
 * `syscallsUncounted` says why the path's syscalls cannot be counted from /proc/PID/io, if so.
 */
export const CostTargetsSchema = v.object({
  relay: ProcGroupSchema,
  rest: ProcGroupSchema,
  syscallsUncounted: v.optional(v.string()),
});
export type CostTargets = v.InferOutput<typeof CostTargetsSchema>;

const CountersSchema = v.object({ ticks: v.number(), syscalls: v.number(), processes: v.number() });
const ReadingSchema = v.object({ relay: CountersSchema, rest: CountersSchema });

/** A measured window as the load generator reports it: readings at its edges, the work done in between. */
export const CostWindowSchema = v.object({
  before: ReadingSchema,
  after: ReadingSchema,
  work: v.number(),
  ms: v.number(),
});
export type CostWindow = v.InferOutput<typeof CostWindowSchema>;

/**
 * One reading of a group: `ticks` utime + stime + cutime + cstime, `syscalls` syscr + syscw, `processes`
 * how many were read (a root that is gone is not an error: it reads as nothing).
 */
export type Counters = v.InferOutput<typeof CountersSchema>;

function readOr(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** Current counters of a group, summed. Children are read before their parent (see readGroup's note). */
export function readGroup(group: ProcGroup): Counters {
  const out: Counters = { ticks: 0, syscalls: 0, processes: 0 };
  for (const root of group.pids) {
    // a child reaped between its own read and its parent's would count twice, one read after it would
    // be lost; both windows are the microseconds between two reads
    for (const pid of [...(group.tree ? descendants(root) : []), root]) {
      const stat = parseStat(readOr(`/proc/${pid}/stat`));
      if (!stat) continue;
      out.ticks += stat.utime + stat.stime + stat.cutime + stat.cstime;
      const io = parseIo(readOr(`/proc/${pid}/io`));
      out.syscalls += io ? io.syscr + io.syscw : 0;
      out.processes++;
    }
  }
  return out;
}

export type CostReading = v.InferOutput<typeof ReadingSchema>;

export function readCost(targets: CostTargets): CostReading {
  return { relay: readGroup(targets.relay), rest: readGroup(targets.rest) };
}

/** What a measured interval cost: ticks and syscalls of the relay and of the whole path, and the work done. */
export interface CostSpent {
  relayTicks: number;
  relaySyscalls: number;
  pathTicks: number;
  pathSyscalls: number;
  /** Bytes (bulk) or completed requests / new streams over the same interval. */
  work: number;
  /** Length of the interval, for messages. */
  ms: number;
}

/** The difference of two readings taken around `work` units done in `ms`. */
export function costBetween(before: CostReading, after: CostReading, work: number, ms: number): CostSpent {
  const relayTicks = after.relay.ticks - before.relay.ticks;
  const relaySyscalls = after.relay.syscalls - before.relay.syscalls;
  return {
    relayTicks,
    relaySyscalls,
    pathTicks: relayTicks + after.rest.ticks - before.rest.ticks,
    pathSyscalls: relaySyscalls + after.rest.syscalls - before.rest.syscalls,
    work,
    ms,
  };
}

/**
 * Clock ticks per second (`getconf CLK_TCK`, read once; 100, what Linux reports on every architecture
 * the harness runs on, when getconf is missing or says something else).
 */
let clockTicks: number | undefined;
export function clkTck(): number {
  if (clockTicks === undefined) {
    const r = Bun.spawnSync(["getconf", "CLK_TCK"], { stdout: "pipe", stderr: "ignore", timeout: 5_000 });
    const n = r.exitCode === 0 ? Number(r.stdout.toString().trim()) : Number.NaN;
    clockTicks = Number.isInteger(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

const GIB = 2 ** 30;
const MIB = 2 ** 20;
/** Requests and new streams are priced per this many (a single one costs microseconds). */
export const PER_REQUESTS = 10_000;

export type WorkKind = "bytes" | "requests";

/** The four figures of one interval: CPU of relay and path, syscalls of relay and path, per unit of work. */
export interface CostFigures {
  relayCpu: number;
  pathCpu: number;
  relaySyscalls: number;
  pathSyscalls: number;
}

/**
 * Bytes: CPU seconds per GiB and syscalls per MiB. Requests: CPU seconds per 10,000 and syscalls per
 * request. Undefined when no work was done (nothing to divide by).
 */
export function costFigures(spent: CostSpent, kind: WorkKind, ticksPerSecond: number): CostFigures | undefined {
  if (!(spent.work > 0)) return undefined;
  const cpuUnits = kind === "bytes" ? spent.work / GIB : spent.work / PER_REQUESTS;
  const syscallUnits = kind === "bytes" ? spent.work / MIB : spent.work;
  return {
    relayCpu: spent.relayTicks / ticksPerSecond / cpuUnits,
    pathCpu: spent.pathTicks / ticksPerSecond / cpuUnits,
    relaySyscalls: spent.relaySyscalls / syscallUnits,
    pathSyscalls: spent.pathSyscalls / syscallUnits,
  };
}

/**
 * Takes the two readings of a measured window where the work is counted (the load generator, at its
 * window's edges, with its connections still open), and the work counter at the same moments.
 */
export class CostMeter {
  #before: { reading: CostReading; work: number; at: number } | undefined;
  #window: CostWindow | undefined;

  constructor(readonly targets: CostTargets | undefined) {}

  start(work: number): void {
    if (this.targets) this.#before = { reading: readCost(this.targets), work, at: performance.now() };
  }

  stop(work: number): void {
    if (!this.targets || !this.#before || this.#window) return;
    const after = readCost(this.targets);
    const b = this.#before;
    this.#window = { before: b.reading, after, work: work - b.work, ms: performance.now() - b.at };
  }

  /** The window, or undefined when no targets were given or it was not closed. */
  get window(): CostWindow | undefined {
    return this.#window;
  }
}

export function spentIn(window: CostWindow): CostSpent {
  return costBetween(window.before, window.after, window.work, window.ms);
}
