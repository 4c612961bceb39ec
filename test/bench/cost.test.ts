/** The cost readings: /proc/PID/stat and /proc/PID/io parsing, the interval arithmetic, and the cost rows. */
import { describe, expect, test } from "bun:test";
import { costOutcomes, costRows, isCostRow } from "./cost-rows.ts";
import { type CostReading, clkTck, costBetween, costFigures, parseIo, parseStat, readGroup } from "./cost.ts";
import type { ReadyPath } from "./paths/path.ts";

/** A /proc/PID/stat line of 52 fields with the given comm, ppid and times (fields 14–17). */
function statLine(comm: string, ppid: number, [utime, stime, cutime, cstime]: number[]): string {
  const rest = ["S", ppid, 1, 1, 0, -1, 4194560, 100, 0, 0, 0, utime, stime, cutime, cstime, 20, 0, 3, 0, 1234];
  return `4242 (${comm}) ${[...rest, ...Array.from({ length: 32 }, () => 0)].join(" ")}\n`;
}

describe("parseStat", () => {
  test("reads ppid and the four times", () => {
    expect(parseStat(statLine("sshd", 17, [120, 30, 5, 2]))).toEqual({
      ppid: 17,
      utime: 120,
      stime: 30,
      cutime: 5,
      cstime: 2,
    });
  });

  test("counts fields from the last parenthesis: comm may hold spaces and parentheses", () => {
    for (const comm of ["a b", "x) 1 2 3 (y", "((", "))", "sshd: root [priv]", ") S 99 ("]) {
      expect(parseStat(statLine(comm, 7, [1, 2, 3, 4]))).toEqual({ ppid: 7, utime: 1, stime: 2, cutime: 3, cstime: 4 });
    }
  });

  test("refuses text that is not a stat line", () => {
    expect(parseStat("")).toBeUndefined();
    expect(parseStat("4242 (bun) S 1 2")).toBeUndefined(); // cut short: no times
    expect(parseStat(statLine("bun", 1, [1, 2, 3, 4]).replace(" 1 2 3 4 ", " 1 x 3 4 "))).toBeUndefined();
  });

  test("reads this very process", async () => {
    const text = await Bun.file(`/proc/${process.pid}/stat`).text();
    const stat = parseStat(text);
    expect(stat?.ppid).toBe(process.ppid);
    expect((stat?.utime ?? 0) + (stat?.stime ?? 0)).toBeGreaterThan(0);
  });
});

describe("parseIo", () => {
  const io = [
    "rchar: 15317",
    "wchar: 48",
    "syscr: 34",
    "syscw: 1",
    "read_bytes: 0",
    "write_bytes: 0",
    "cancelled_write_bytes: 0",
    "",
  ].join("\n");

  test("reads the byte and call counts", () => {
    expect(parseIo(io)).toEqual({ rchar: 15317, wchar: 48, syscr: 34, syscw: 1 });
  });

  test("a missing field is no reading (a process that is gone, or an unreadable file)", () => {
    expect(parseIo(io.replace("syscw: 1\n", ""))).toBeUndefined();
    expect(parseIo("")).toBeUndefined();
  });
});

describe("readGroup", () => {
  test("reads a tree: the root and its live children", async () => {
    const child = Bun.spawn(["sleep", "5"]);
    try {
      const alone = readGroup({ pids: [process.pid], tree: false });
      const tree = readGroup({ pids: [process.pid], tree: true });
      expect(alone.processes).toBe(1);
      expect(tree.processes).toBeGreaterThanOrEqual(2);
      expect(alone.ticks).toBeGreaterThan(0);
      expect(alone.syscalls).toBeGreaterThan(0);
    } finally {
      child.kill();
      await child.exited;
    }
  });

  test("a process that is gone reads as nothing", () => {
    expect(readGroup({ pids: [2 ** 22 + 1], tree: true })).toEqual({ ticks: 0, syscalls: 0, processes: 0 });
  });
});

const reading = (relayTicks: number, relayCalls: number, restTicks: number, restCalls: number): CostReading => ({
  relay: { ticks: relayTicks, syscalls: relayCalls, processes: 1 },
  rest: { ticks: restTicks, syscalls: restCalls, processes: 2 },
});

describe("costBetween and costFigures", () => {
  test("the interval's differences; the whole path is relay plus rest", () => {
    const spent = costBetween(reading(100, 1_000, 50, 400), reading(250, 3_000, 150, 900), 2 ** 31, 2_000);
    expect(spent).toEqual({
      relayTicks: 150,
      relaySyscalls: 2_000,
      pathTicks: 250,
      pathSyscalls: 2_500,
      work: 2 ** 31,
      ms: 2_000,
    });
  });

  test("bulk: CPU seconds per GiB and syscalls per MiB", () => {
    // 150 ticks at 100/s = 1.5 CPU s over 2 GiB; 2,000 calls over 2,048 MiB
    const spent = costBetween(reading(100, 1_000, 50, 400), reading(250, 3_000, 150, 900), 2 ** 31, 2_000);
    expect(costFigures(spent, "bytes", 100)).toEqual({
      relayCpu: 0.75,
      pathCpu: 1.25,
      relaySyscalls: 2_000 / 2_048,
      pathSyscalls: 2_500 / 2_048,
    });
    expect(costFigures(spent, "bytes", 250)?.relayCpu).toBeCloseTo(0.3, 12); // another CLK_TCK
  });

  test("requests: CPU seconds per 10,000 and syscalls per request", () => {
    // 40 ticks = 0.4 CPU s over 20,000 requests: 0.2 s per 10,000; 80,000 calls = 4 per request
    const spent = costBetween(reading(0, 0, 0, 0), reading(40, 80_000, 40, 80_000), 20_000, 1_000);
    expect(costFigures(spent, "requests", 100)).toEqual({
      relayCpu: 0.2,
      pathCpu: 0.4,
      relaySyscalls: 4,
      pathSyscalls: 8,
    });
  });

  test("no work done: nothing to divide by", () => {
    expect(costFigures(costBetween(reading(0, 0, 0, 0), reading(5, 5, 5, 5), 0, 1_000), "bytes", 100)).toBeUndefined();
  });
});

describe("cost rows", () => {
  const path = (cost: ReadyPath["cost"]): ReadyPath => ({
    id: "ssh",
    appPort: 1,
    iperfPort: undefined,
    measured: undefined,
    noMeasuredReason: "no relay process on the direct path",
    cost,
  });
  const targets = { relay: { pids: [1], tree: true }, rest: { pids: [2], tree: false } };
  const spent = costBetween(reading(0, 0, 0, 0), reading(100, 2_048, 100, 2_048), 2 ** 30, 1_000);

  test("four rows per scenario, named for the relay and the whole path, lower is better", () => {
    const rows = costRows("bulk, 1 stream, user→app", "bytes");
    expect(rows.map((r) => r.name)).toEqual([
      "CPU s per GiB, bulk, 1 stream, user→app — relay (connector | sshd | socat)",
      "CPU s per GiB, bulk, 1 stream, user→app — whole path (connector + gateways | ssh + sshd | socat)",
      "syscalls per MiB, bulk, 1 stream, user→app — relay (connector | sshd | socat)",
      "syscalls per MiB, bulk, 1 stream, user→app — whole path (connector + gateways | ssh + sshd | socat)",
    ]);
    expect(rows.every((r) => !r.higherIsBetter && isCostRow(r.name))).toBe(true);
    expect(costRows("new streams", "streams")[0]!.unit).toBe("CPU s/10k streams");
    expect(isCostRow("bulk, 1 stream, user→app")).toBe(false);
  });

  test("outcomes in row order; syscalls skipped with the path's reason when uncounted", () => {
    const values = costOutcomes(path(targets), spent, "bytes");
    // 100 relay and 200 path ticks over 1 GiB; 2,048 and 4,096 calls over 1,024 MiB
    expect(values).toEqual([{ value: 100 / clkTck() }, { value: 200 / clkTck() }, { value: 2 }, { value: 4 }]);
    const bun = costOutcomes(path({ ...targets, syscallsUncounted: "send/recv" }), spent, "bytes");
    expect(bun.slice(2)).toEqual([{ skipped: "send/recv" }, { skipped: "send/recv" }]);
  });

  test("no relay process, no interval, no work: every row says why", () => {
    expect(costOutcomes(path(undefined), spent, "bytes")[0]).toEqual({
      skipped: "no relay process on the direct path",
    });
    expect(costOutcomes(path(targets), undefined, "bytes", "iperf3 ended early")[3]).toEqual({
      skipped: "iperf3 ended early",
    });
    const idle = costBetween(reading(0, 0, 0, 0), reading(1, 1, 1, 1), 0, 1_000);
    expect(costOutcomes(path(targets), idle, "requests")[1]).toEqual({
      skipped: "no requests completed in the cost interval",
    });
  });
});
