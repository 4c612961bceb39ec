/** docs/OPERATIONS.md "Metrics" lists every family the daemon exports, with its type, and no other. */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { offlineSnapshot } from "../../src/status/collect.ts";
import { metricFamilies } from "../../src/status/metrics.ts";
import type { StatusSnapshot } from "../../src/status/schema.ts";
import { makeIdentity } from "../identity/fixtures.ts";

const doc = readFileSync(join(import.meta.dir, "..", "..", "docs", "OPERATIONS.md"), "utf8");
const section = doc.slice(doc.indexOf("\n## Metrics\n"), doc.indexOf("\n## ", doc.indexOf("\n## Metrics\n") + 1));

/** Every family present: counters, a redundancy view and process stats. */
const snapshot: StatusSnapshot = {
  ...offlineSnapshot(makeIdentity("conn-doc")),
  redundancy: { distinctGateways: 1, tunnels: 1, gatewaysKnown: 1 },
  tunnelCounters: { connects: 0, reconnects: 0, connectFailures: {}, disconnects: {} },
};
const families = metricFamilies(
  snapshot,
  { version: "1", commit: "c", target: "t" },
  { cpuSeconds: 0, residentBytes: 0, virtualBytes: 0, startTimeSeconds: 0, openFds: 0, maxFds: 0 },
);

test("the reference table has a row per family with its type", () => {
  const rows = new Map(
    [...section.matchAll(/^\| `([a-z_]+)` \| (gauge|counter) \|/gm)].map((m) => [m[1]!, m[2]!] as const),
  );
  expect(Object.fromEntries(rows)).toEqual(Object.fromEntries(families.map((f) => [f.name, f.type])));
});
