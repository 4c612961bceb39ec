/**
 * The scenarios of BENCHMARKS.md "Targets" in the order they run, grouped in phases (see PHASES in scenario.ts):
 * memory on fresh relays, then traffic on fresh relays, connection churn last (it leaves TIME_WAITs).
 */
import { idleRss, idleStreams, slowReader } from "./memory.ts";
import { abRate } from "./http-rate.ts";
import type { Scenario } from "./scenario.ts";
import { bulkAggregate, bulkDown, bulkUp, connRate, latency1, latency50, latencyUnderBulk } from "./traffic.ts";

export const SCENARIOS: readonly Scenario[] = [
  idleRss,
  slowReader,
  idleStreams,
  bulkUp,
  bulkDown,
  bulkAggregate,
  latency1,
  latency50,
  latencyUnderBulk,
  connRate,
  abRate,
];

/** The long-distance scenario runs in its own namespace, so it is not in SCENARIOS; `--only` knows it by this id. */
export const LONG_DISTANCE_ID = "long-distance";

export const SCENARIO_IDS: readonly string[] = [...SCENARIOS.map((s) => s.id), LONG_DISTANCE_ID];
