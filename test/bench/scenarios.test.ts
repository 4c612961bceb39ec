import { describe, expect, test } from "bun:test";
import { FULL, QUICK } from "./config.ts";
import type { ReadyPath } from "./paths/path.ts";
import { type PathId, ResultTable } from "./report.ts";
import type { Rig } from "./rig.ts";
import { runScenarios } from "./run-host.ts";
import type { Phase, Scenario } from "./scenario.ts";

const ready = (id: PathId): ReadyPath => ({
  id,
  appPort: 1,
  iperfPort: undefined,
  measured: undefined,
  cost: undefined,
});

/** A scenario whose every measurement returns the next of `values` for that path, and logs the visit. */
function scripted(id: string, phase: Phase, values: Partial<Record<PathId, number[]>>, visits: string[]): Scenario {
  return {
    id,
    phase,
    rows: () => [{ name: id, unit: "x", higherIsBetter: true }],
    async measure(_ctx, path) {
      visits.push(`${id}:${path.id}`);
      return [{ value: values[path.id]!.shift()! }];
    },
  };
}

async function run(profile: typeof FULL, scenarios: (visits: string[]) => Scenario[]) {
  const visits: string[] = [];
  const table = new ResultTable();
  const ctx = { rig: {} as Rig, profile, useIperf: false };
  await runScenarios(
    ctx,
    [ready("ssh"), { id: "socat", skipped: "socat not installed" }, ready("connector")],
    scenarios(visits),
    table,
    () => {},
  );
  return { visits, rows: table.rows() };
}

describe("rounds: every traffic row of a full run is the median of 3 interleaved rounds", () => {
  test("a traffic scenario visits every ready path once per round, in turn, and keeps each cell's median", async () => {
    const { visits, rows } = await run(FULL, (log) => [
      scripted("rate", "traffic", { ssh: [10, 30, 20], connector: [5, 1, 100] }, log),
    ]);
    expect(FULL.rounds).toBe(3);
    expect(visits).toEqual(["rate:ssh", "rate:connector", "rate:ssh", "rate:connector", "rate:ssh", "rate:connector"]);
    expect(rows[0]).toMatchObject({ ssh: 20, connector: 5, socat: null });
    expect(rows[0]!.skipped).toMatchObject({ socat: "socat not installed" });
  });

  test("a memory scenario runs once on its fresh relays", async () => {
    const { visits, rows } = await run(FULL, (log) => [
      scripted("rss", "memory", { ssh: [8, 9], connector: [60, 61] }, log),
    ]);
    expect(visits).toEqual(["rss:ssh", "rss:connector"]);
    expect(rows[0]).toMatchObject({ ssh: 8, connector: 60 });
  });

  test("the CI guard's quick run measures each traffic scenario once (it confirms a suspect ratio by rerunning)", async () => {
    const { visits } = await run(QUICK, (log) => [scripted("rate", "traffic", { ssh: [1], connector: [2] }, log)]);
    expect(visits).toEqual(["rate:ssh", "rate:connector"]);
  });
});
