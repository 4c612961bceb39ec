import { describe, expect, test } from "bun:test";
import { type BaselineRatios, bestRatios, isGrossRegression, judge, recordRatios } from "./guard-logic.ts";
import { type BenchDoc, buildRow } from "./report.ts";

const tput = { name: "bulk", unit: "Gbit/s", higherIsBetter: true };
const lat = { name: "p99", unit: "µs", higherIsBetter: false };

function doc(connectorTput: number | null, connectorLat: number | null): BenchDoc {
  const c = (x: number | null) => (x === null ? { skipped: "no gateways yet" } : { value: x });
  return {
    machine: { date: "2026-01-01T00:00:00Z", cores: 2 },
    versions: { bun: "1.4.5" },
    scenarios: [
      buildRow(tput, { direct: { value: 20 }, ssh: { value: 4 }, socat: { value: 6 }, connector: c(connectorTput) }),
      buildRow(lat, { direct: { value: 100 }, ssh: { value: 200 }, socat: { value: 150 }, connector: c(connectorLat) }),
    ],
  };
}

const baseline: BaselineRatios = {
  note: "",
  recordedAt: "2026-01-01T00:00:00Z",
  machine: null,
  ratios: { bulk: { vsSsh: 1.5, vsDirect: 0.3 }, p99: { vsSsh: 1, vsDirect: 2 } },
};

describe("isGrossRegression", () => {
  test("higher-is-better regresses only below the recorded value divided by the factor", () => {
    expect(isGrossRegression(0.76, 1.5, true, 2)).toBe(false);
    expect(isGrossRegression(0.74, 1.5, true, 2)).toBe(true);
  });

  test("lower-is-better regresses only above the recorded value times the factor", () => {
    expect(isGrossRegression(1.9, 1, false, 2)).toBe(false);
    expect(isGrossRegression(2.1, 1, false, 2)).toBe(true);
  });
});

describe("judge", () => {
  test("passes ratios within the tolerance, however the absolute numbers moved", () => {
    const verdict = judge(doc(5, 220), baseline, 2); // vsSsh 1.25 / 1.1, vsDirect 0.25 / 2.2
    expect(verdict).toMatchObject({ ok: true, failures: [], checked: 4 });
  });

  test("fails when connector ÷ direct throughput falls below half the recorded value", () => {
    const verdict = judge(doc(2.8, 200), { ...baseline, ratios: { bulk: { vsSsh: null, vsDirect: 0.3 } } }, 2); // 0.14 < 0.15
    expect(verdict.ok).toBe(false);
    expect(verdict.failures).toHaveLength(1);
    expect(verdict.failures[0]).toStartWith('"bulk" connector ÷ direct: 0.140 vs recorded 0.300');
  });

  test("fails when latency ÷ ssh -L more than doubles", () => {
    const verdict = judge(doc(6, 500), baseline, 2); // vsSsh 2.5 > 2, vsDirect 5 > 4
    expect(verdict.ok).toBe(false);
    expect(verdict.failures.map((f) => f.split(":")[0])).toEqual([
      '"p99" connector ÷ ssh -L',
      '"p99" connector ÷ direct',
    ]);
  });

  test("fails, with the reason, when the connector column was not measured at all", () => {
    const verdict = judge(doc(null, null), baseline, 2);
    expect(verdict.ok).toBe(false);
    expect(verdict.checked).toBe(0);
    expect(verdict.failures).toEqual([
      "connector column not measured (no gateways yet); the guard cannot pass without it",
    ]);
  });

  test("fails when one recorded row has no connector value (its scenario failed on the connector)", () => {
    const verdict = judge(doc(5, null), baseline, 2);
    expect(verdict.ok).toBe(false);
    expect(verdict.checked).toBe(2); // bulk's two ratios were still compared
    expect(verdict.failures).toEqual([
      '"p99" connector ÷ ssh -L: connector not measured (no gateways yet)',
      '"p99" connector ÷ direct: connector not measured (no gateways yet)',
    ]);
  });

  test("a connector row with no reason given still fails, as not measured", () => {
    const [bulk, p99] = doc(5, 200).scenarios;
    const unmeasured = { ...bulk!, connector: null, vsSsh: null, vsDirect: null };
    const verdict = judge({ ...doc(5, 200), scenarios: [unmeasured, p99!] }, baseline, 2);
    expect(verdict.failures[0]).toBe('"bulk" connector ÷ ssh -L: connector not measured (not measured)');
  });

  test("a missing baseline tool (no ssh -L) leaves its ratio not checked, and the guard passes", () => {
    const noSsh = doc(5, 220);
    noSsh.scenarios = noSsh.scenarios.map((r) => ({
      ...r,
      ssh: null,
      vsSsh: null,
      skipped: { ssh: "ssh not installed" },
    }));
    const verdict = judge(noSsh, baseline, 2);
    expect(verdict.ok).toBe(true);
    expect(verdict.checked).toBe(2); // the two ratios to direct
    expect(verdict.notes).toContain(
      '"bulk" connector ÷ ssh -L: no baseline value this run (ssh not installed), not checked',
    );
  });

  test("a recorded row missing from a full run fails (renamed or dropped: re-record)", () => {
    const ratios = { gone: { vsSsh: 1, vsDirect: 1 }, bulk: { vsSsh: null, vsDirect: 0.3 } };
    const verdict = judge(doc(6, 200), { ...baseline, ratios }, 2);
    expect(verdict.ok).toBe(false);
    expect(verdict.failures).toEqual(['"gone": not in this run (renamed or dropped? re-record with --record)']);
  });

  test("with --only (a partial run) a missing row and a ratio with no recorded value are noted, not failed", () => {
    const verdict = judge(
      doc(6, 200),
      { ...baseline, ratios: { gone: { vsSsh: 1, vsDirect: 1 }, bulk: { vsSsh: null, vsDirect: 0.3 } } },
      2,
      { partial: true },
    );
    expect(verdict.ok).toBe(true);
    expect(verdict.checked).toBe(1);
    expect(verdict.notes.some((n) => n.includes('"gone": not in this run'))).toBe(true);
  });

  test("with nothing recorded yet it passes and asks for a recording", () => {
    const verdict = judge(doc(6, 200), { ...baseline, ratios: {} }, 2);
    expect(verdict.ok).toBe(true);
    expect(verdict.notes.join(" ")).toContain("--record");
  });
});

test("recordRatios keeps rows that have a connector ratio, with the run's machine line and the given date", () => {
  const recorded = recordRatios(doc(6, null), "note", new Date("2026-02-03T04:05:06Z"));
  expect(recorded.ratios).toEqual({ bulk: { vsSsh: 1.5, vsDirect: 0.3 } });
  expect(recorded.recordedAt).toBe("2026-02-03T04:05:06.000Z");
  expect(recorded.machine).toBe("cores: 2");
});

test("recordRatios leaves out rows matching the exclusion (noisy tail latency)", () => {
  const recorded = recordRatios(doc(6, 200), "note", new Date(0), /\bp99\b/);
  expect(Object.keys(recorded.ratios)).toEqual(["bulk"]);
});

test("recordRatios keeps only the ratio to direct for rows whose ssh -L value is unreliable", () => {
  const recorded = recordRatios(doc(6, 200), "note", new Date(0), /\bp99\b/, /^bulk$/);
  expect(recorded.ratios).toEqual({ bulk: { vsSsh: null, vsDirect: 0.3 } });
});

describe("bestRatios", () => {
  test("keeps each row's best ratio across runs: highest where higher is better, lowest where lower is", () => {
    const merged = bestRatios([doc(2.8, 500), doc(6, 180), doc(null, 900)]);
    expect(merged.scenarios.map((r) => [r.name, r.vsSsh, r.vsDirect])).toEqual([
      ["bulk", 1.5, 0.3],
      ["p99", 0.9, 1.8],
    ]);
  });

  test("the connector counts as measured if any run measured it; missing in every run still fails", () => {
    const merged = bestRatios([doc(null, null), doc(5, 220)]);
    expect(merged.scenarios.map((r) => r.connector)).toEqual([5, 220]);
    expect(merged.scenarios[0]!.skipped).toBeUndefined();
    expect(judge(merged, baseline, 2).ok).toBe(true);
    expect(judge(bestRatios([doc(null, null), doc(null, null)]), baseline, 2).ok).toBe(false);
  });

  test("a regression seen in one run but not in a confirmation run does not fail the guard", () => {
    const flaky = { ...baseline, ratios: { bulk: { vsSsh: 1.5, vsDirect: 0.3 } } };
    expect(judge(doc(2.8, 200), flaky, 2).ok).toBe(false);
    expect(judge(bestRatios([doc(2.8, 200), doc(5.5, 200)]), flaky, 2).ok).toBe(true);
    expect(judge(bestRatios([doc(2.8, 200), doc(2.9, 200)]), flaky, 2).ok).toBe(false);
  });
});

describe("cost rows in the guard", () => {
  const cpu = { name: "CPU s per GiB, bulk — relay", unit: "CPU s/GiB", higherIsBetter: false };
  const run = (connectorCpu: number): BenchDoc => ({
    ...doc(6, 200),
    scenarios: [
      ...doc(6, 200).scenarios,
      buildRow(cpu, {
        direct: { skipped: "no relay" },
        ssh: { value: 2 },
        socat: { value: 3 },
        connector: c(connectorCpu),
      }),
    ],
  });
  const c = (x: number) => ({ value: x });
  const withCpu = { ...baseline, ratios: { ...baseline.ratios, [cpu.name]: { vsSsh: 1, vsDirect: null } } };

  test("a row's own tolerance replaces the common factor", () => {
    // connector ÷ sshd 2.5 against a recorded 1: out of a 2× tolerance, inside a 3× one
    expect(judge(run(5), withCpu, 2).failures).toEqual([
      `"${cpu.name}" connector ÷ ssh -L: 2.500 vs recorded 1.000 (lower is better; tolerance 2×)`,
    ]);
    expect(judge(run(5), withCpu, 2, { factorFor: (n) => (n === cpu.name ? 3 : undefined) }).ok).toBe(true);
    expect(judge(run(3), withCpu, 2, { factorFor: () => 1.2 }).failures[0]).toContain("tolerance 1.2×");
  });

  test("a pending row with no recorded ratio is listed as not checked yet, never failed", () => {
    const verdict = judge(run(50), baseline, 2, { pending: (n) => n === cpu.name });
    expect(verdict.ok).toBe(true);
    expect(verdict.notes).toEqual([
      `not checked yet (no recorded ratio; record them with --record on a quiet machine): "${cpu.name}"`,
    ]);
    // once recorded, it is judged like any other
    expect(judge(run(50), withCpu, 2, { pending: (n) => n === cpu.name }).ok).toBe(false);
  });
});
