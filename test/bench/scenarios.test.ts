import { describe, expect, test } from "bun:test";
import { FULL, QUICK } from "./config.ts";
import { SCENARIOS } from "./scenarios.ts";

describe("which scenarios are measured in rounds", () => {
  test("a full run takes the median of 3 interleaved rounds of every traffic scenario; memory is measured once", () => {
    expect(FULL.rounds).toBe(3);
    const traffic = SCENARIOS.filter((s) => s.phase === "traffic");
    expect(traffic.map((s) => s.id)).toEqual([
      "bulk-up",
      "bulk-down",
      "bulk-aggregate",
      "latency-1",
      "latency-50",
      "latency-bulk",
      "connrate",
      "ab",
    ]);
    expect(traffic.filter((s) => !s.repeated).map((s) => s.id)).toEqual([]);
    expect(SCENARIOS.filter((s) => s.phase === "memory" && s.repeated).map((s) => s.id)).toEqual([]);
  });

  test("the CI guard's quick run measures each once (it confirms a suspect ratio by rerunning instead)", () => {
    expect(QUICK.rounds).toBe(1);
  });
});
