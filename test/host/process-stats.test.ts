import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseMaxOpenFiles, readProcessStats } from "../../src/host/process-stats.ts";

const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

// Taken from a real /proc (Linux 6.x), with the command name made awkward: spaces and a ")".
const STAT =
  "6012 (bun (x) y) S 6007 6007 2831 0 -1 4194304 98 0 0 0 250 125 0 0 20 0 12 0 5056021 3133440000 381 " +
  "18446744073709551615 94574636855296 94574636875177 140723157993936 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
const STATUS = "Name:\tbun\nVmPeak:\t 3200000 kB\nVmSize:\t 3060000 kB\nVmRSS:\t   56220 kB\nThreads:\t12\n";
const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            20000                524288               files
Max locked memory         8388608              8388608              bytes
`;
const PROC_STAT = "cpu  1 2 3 4\nintr 5\nctxt 6\nbtime 1796218449\nprocesses 7\n";

/** A /proc look-alike: self/{stat,status,limits,fd/*} and stat. */
function fixture(files: { stat?: string; status?: string; limits?: string; procStat?: string; fds?: number }): string {
  const root = mkdtempSync(join(tmpdir(), "process-stats-"));
  roots.push(root);
  mkdirSync(join(root, "self", "fd"), { recursive: true });
  if (files.stat !== undefined) writeFileSync(join(root, "self", "stat"), files.stat);
  if (files.status !== undefined) writeFileSync(join(root, "self", "status"), files.status);
  if (files.limits !== undefined) writeFileSync(join(root, "self", "limits"), files.limits);
  if (files.procStat !== undefined) writeFileSync(join(root, "stat"), files.procStat);
  for (let fd = 0; fd < (files.fds ?? 0); fd++) writeFileSync(join(root, "self", "fd", String(fd)), "");
  return root;
}

const complete = { stat: STAT, status: STATUS, limits: LIMITS, procStat: PROC_STAT, fds: 7 };

test("CPU time, memory, start time and fds from /proc, in base units", () => {
  expect(readProcessStats(fixture(complete))).toEqual({
    cpuSeconds: 3.75, // (250 + 125) ticks at USER_HZ 100
    residentBytes: 56_220 * 1024,
    virtualBytes: 3_133_440_000,
    startTimeSeconds: 1_796_218_449 + 50_560.21, // btime + starttime ticks / 100
    openFds: 7,
    maxFds: 20_000,
  });
});

test("an unlimited or missing fd limit leaves max fds out", () => {
  expect(
    parseMaxOpenFiles("Max open files            unlimited            unlimited            files\n"),
  ).toBeUndefined();
  expect(parseMaxOpenFiles("Max cpu time unlimited unlimited seconds\n")).toBeUndefined();
  const stats = readProcessStats(fixture({ ...complete, limits: undefined }));
  expect(stats?.maxFds).toBeUndefined();
  expect(stats?.openFds).toBe(7);
});

test("no stats when /proc cannot be read or parsed (off Linux): the series are left out", () => {
  expect(readProcessStats(join(tmpdir(), "no-such-proc-dir"))).toBeUndefined();
  expect(readProcessStats(fixture({ ...complete, stat: undefined }))).toBeUndefined();
  expect(readProcessStats(fixture({ ...complete, procStat: "cpu 1 2\n" }))).toBeUndefined();
  expect(readProcessStats(fixture({ ...complete, status: "Name:\tbun\n" }))).toBeUndefined();
  expect(readProcessStats(fixture({ ...complete, stat: "6012 (bun) S 1 2\n" }))).toBeUndefined();
});

test.skipIf(process.platform !== "linux")("this process's own stats read from the real /proc are plausible", () => {
  const stats = readProcessStats();
  expect(stats).toBeDefined();
  expect(stats!.residentBytes).toBeGreaterThan(1024 * 1024);
  expect(stats!.virtualBytes).toBeGreaterThanOrEqual(stats!.residentBytes);
  expect(stats!.cpuSeconds).toBeGreaterThan(0);
  expect(stats!.openFds).toBeGreaterThan(2);
  const uptime = Date.now() / 1000 - stats!.startTimeSeconds;
  expect(uptime).toBeGreaterThan(-5);
  expect(uptime).toBeLessThan(process.uptime() + 5);
});
