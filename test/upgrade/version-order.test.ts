import { describe, expect, test } from "bun:test";
import { compareVersions } from "../../src/upgrade/version-order.ts";

describe("compareVersions", () => {
  // The semver 2.0.0 precedence example, ascending.
  const ordered = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.9.0",
    "1.10.0",
    "2.0.0",
  ];

  test("orders the semver precedence example in every pair", () => {
    for (let i = 0; i < ordered.length; i++) {
      for (let j = 0; j < ordered.length; j++) {
        expect([ordered[i], ordered[j], compareVersions(ordered[i]!, ordered[j]!)]).toEqual([
          ordered[i],
          ordered[j],
          i < j ? -1 : i > j ? 1 : 0,
        ]);
      }
    }
  });

  test("numbers compare as numbers, not text", () => {
    expect(compareVersions("1.5.0-rc.10", "1.5.0-rc.9")).toBe(1);
    expect(compareVersions("10.0.0", "9.99.99")).toBe(1);
  });

  test("a numeric identifier precedes an alphanumeric one", () => {
    expect(compareVersions("1.0.0-1", "1.0.0-a")).toBe(-1);
  });

  test("refuses what is not a version", () => {
    expect(() => compareVersions("1.0", "1.0.0")).toThrow(TypeError);
    expect(() => compareVersions("1.0.0", "1.0.0+build")).toThrow(TypeError);
  });
});
