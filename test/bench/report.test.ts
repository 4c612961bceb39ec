import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { BenchDocSchema, buildRow, ratio, ResultTable } from "./report.ts";

const tput = { name: "bulk", unit: "Gbit/s", higherIsBetter: true };

describe("ratio", () => {
  test("divides the connector's value by the baseline's", () => {
    expect(ratio(6, 4)).toBe(1.5);
  });

  test("is null when either side is missing or the baseline is zero, negative or not finite", () => {
    expect(ratio(null, 4)).toBeNull();
    expect(ratio(4, null)).toBeNull();
    expect(ratio(4, 0)).toBeNull();
    expect(ratio(4, -1)).toBeNull();
    expect(ratio(Number.POSITIVE_INFINITY, 4)).toBeNull();
    expect(ratio(4, Number.NaN)).toBeNull();
  });
});

describe("buildRow", () => {
  test("carries every path's value and the connector's ratios to ssh -L and direct", () => {
    const row = buildRow(tput, {
      direct: { value: 20 },
      ssh: { value: 4 },
      socat: { value: 6 },
      connector: { value: 6 },
    });
    expect(row).toEqual({ ...tput, direct: 20, ssh: 4, socat: 6, connector: 6, vsSsh: 1.5, vsDirect: 0.3 });
    expect("skipped" in row).toBe(false);
  });

  test("a skipped path is null with its reason, and the ratios that need it are null", () => {
    const row = buildRow(tput, {
      direct: { value: 20 },
      ssh: { skipped: "ssh not installed" },
      socat: { value: 6 },
      connector: { value: 5 },
    });
    expect(row.ssh).toBeNull();
    expect(row.vsSsh).toBeNull();
    expect(row.vsDirect).toBe(0.25);
    expect(row.skipped).toEqual({ ssh: "ssh not installed" });
  });

  test("a path with no outcome at all is reported as not measured rather than dropped", () => {
    const row = buildRow(tput, { direct: { value: 1 } });
    expect(row.skipped).toEqual({ ssh: "not measured", socat: "not measured", connector: "not measured" });
  });

  test("a non-finite number is never reported as a value", () => {
    const row = buildRow(tput, { direct: { value: Number.NaN } });
    expect(row.direct).toBeNull();
    expect(row.skipped?.direct).toBe("not a finite number");
  });
});

describe("ResultTable", () => {
  test("keeps rows in the order they were first recorded", () => {
    const t = new ResultTable();
    t.record({ ...tput, name: "b" }, "direct", { value: 1 });
    t.record({ ...tput, name: "a" }, "direct", { value: 2 });
    t.record({ ...tput, name: "b" }, "ssh", { value: 3 });
    expect(t.rows().map((r) => [r.name, r.direct, r.ssh])).toEqual([
      ["b", 1, 3],
      ["a", 2, null],
    ]);
  });

  test("recordIfAbsent fills only cells that have nothing yet", () => {
    const t = new ResultTable();
    t.record(tput, "direct", { value: 9 });
    t.recordIfAbsent(tput, "direct", { skipped: "late failure" });
    t.recordIfAbsent(tput, "ssh", { skipped: "late failure" });
    const [row] = t.rows();
    expect(row?.direct).toBe(9);
    expect(row?.skipped?.ssh).toBe("late failure");
  });

  test("recordAll gives every path the same outcome", () => {
    const t = new ResultTable();
    t.recordAll(tput, { skipped: "not run with --quick" });
    expect(t.rows()[0]?.skipped).toEqual({
      direct: "not run with --quick",
      ssh: "not run with --quick",
      socat: "not run with --quick",
      connector: "not run with --quick",
    });
  });

  test("a document of its rows matches the --json schema", () => {
    const t = new ResultTable();
    t.record(tput, "direct", { value: 20 });
    t.record(tput, "connector", { skipped: "no gateways yet" });
    const doc = { machine: { cores: 2, cpu: "x" }, versions: { bun: "1.4.5", iperf3: null }, scenarios: t.rows() };
    expect(v.is(BenchDocSchema, JSON.parse(JSON.stringify(doc)))).toBe(true);
    expect(Object.keys(doc.scenarios[0]!)).toEqual([
      "name",
      "unit",
      "higherIsBetter",
      "direct",
      "ssh",
      "socat",
      "connector",
      "vsSsh",
      "vsDirect",
      "skipped",
    ]);
  });
});
