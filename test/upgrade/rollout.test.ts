import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { inRollout, rolloutBucket } from "../../src/upgrade/rollout.ts";

/** Random-looking UUIDs from a seeded generator (SHA-256 in counter mode), so the test is deterministic. */
function seededUuids(seed: string, count: number): string[] {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const h = createHash("sha256").update(`${seed}:${i}`).digest("hex");
    ids.push(`${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`);
  }
  return ids;
}

describe("rollout", () => {
  const ids = seededUuids("rollout-test", 1000);

  test("the bucket is the first 4 bytes of SHA-256(connector-rollout:id) scaled to [0, 100)", () => {
    const id = ids[0]!;
    const first = createHash("sha256").update(`connector-rollout:${id}`).digest().readUInt32BE(0);
    expect(rolloutBucket(id)).toBe((first * 100) / 2 ** 32);
    for (const each of ids) {
      expect(rolloutBucket(each)).toBeGreaterThanOrEqual(0);
      expect(rolloutBucket(each)).toBeLessThan(100);
    }
  });

  test("20 % selects 20 % ± 4 % of 1,000 ids", () => {
    const selected = ids.filter((id) => inRollout(id, 20)).length;
    expect(selected).toBeGreaterThanOrEqual(160);
    expect(selected).toBeLessThanOrEqual(240);
  });

  test("0 % selects none, 100 % and no rollout field select all", () => {
    expect(ids.filter((id) => inRollout(id, 0))).toHaveLength(0);
    expect(ids.filter((id) => inRollout(id, 100))).toHaveLength(1000);
    expect(ids.filter((id) => inRollout(id, undefined))).toHaveLength(1000);
  });

  test("raising the percentage keeps everyone already selected", () => {
    const at20 = ids.filter((id) => inRollout(id, 20));
    expect(at20.every((id) => inRollout(id, 50))).toBe(true);
  });
});
