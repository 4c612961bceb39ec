import { describe, expect, test } from "bun:test";
import { SettingsError } from "../../src/errors.ts";
import { rolloutBucket } from "../../src/upgrade/rollout.ts";
import { inWindow, msUntilWindow, nextCheckDelay, parseWindow, planUpgrade } from "../../src/upgrade/schedule.ts";
import { makeKey, manifestOf } from "../support/signed-release.ts";

const at = (hhmm: string) => new Date(`2026-06-01T${hhmm}:00.000Z`);

describe("upgrade window", () => {
  test("parses HH:MM-HH:MM into UTC minutes", () => {
    expect(parseWindow("02:00-05:30")).toEqual({ startMinute: 120, endMinute: 330 });
  });

  test("refuses malformed or empty windows with a SettingsError", () => {
    for (const bad of ["2:00-05:00", "02:00-24:00", "02:60-03:00", "02:00", "02:00-02:00", ""]) {
      expect(() => parseWindow(bad)).toThrow(SettingsError);
    }
  });

  test("a window within one day: start inclusive, end exclusive", () => {
    const w = parseWindow("02:00-05:00");
    expect([at("01:59"), at("02:00"), at("04:59"), at("05:00")].map((t) => inWindow(w, t))).toEqual([
      false,
      true,
      true,
      false,
    ]);
  });

  test("a window that wraps midnight", () => {
    const w = parseWindow("22:00-02:00");
    expect(
      [at("21:59"), at("22:00"), at("23:59"), at("00:00"), at("01:59"), at("02:00"), at("12:00")].map((t) =>
        inWindow(w, t),
      ),
    ).toEqual([false, true, true, true, true, false, false]);
  });

  test("no window: always", () => expect(inWindow(undefined, at("13:37"))).toBe(true));

  test("time until the window opens, across midnight too", () => {
    const w = parseWindow("22:00-02:00");
    expect(msUntilWindow(w, at("23:00"))).toBe(0);
    expect(msUntilWindow(w, at("21:30"))).toBe(30 * 60_000);
    expect(msUntilWindow(parseWindow("02:00-05:00"), at("06:00"))).toBe(20 * 3_600_000);
  });
});

describe("nextCheckDelay", () => {
  test("stays within ±20 % of the interval, reaching both ends", () => {
    expect(nextCheckDelay(100_000, () => 0)).toBe(80_000);
    expect(nextCheckDelay(100_000, () => 0.999999)).toBe(120_000);
    expect(nextCheckDelay(100_000, () => 0.5)).toBe(100_000);
    for (let i = 0; i < 1000; i++) {
      const d = nextCheckDelay(100_000);
      expect(d).toBeGreaterThanOrEqual(80_000);
      expect(d).toBeLessThanOrEqual(120_000);
    }
  });
});

describe("planUpgrade", () => {
  const key = makeKey();
  const base = { runningVersion: "1.4.0", connectorId: "c-1", skipped: [] as string[] };

  test("takes a newer release", () =>
    expect(planUpgrade({ ...base, manifest: manifestOf(key) })).toEqual({ take: true }));
  test("up to date", () =>
    expect(planUpgrade({ ...base, manifest: manifestOf(key, { version: "1.4.0" }) }).take).toBe(false));
  test("older than the running version: NOT_NEWER", () => {
    expect(planUpgrade({ ...base, manifest: manifestOf(key, { version: "1.3.0" }) })).toMatchObject({
      take: false,
      code: "NOT_NEWER",
    });
  });
  test("a version rolled back before: VERSION_SKIPPED", () => {
    expect(planUpgrade({ ...base, skipped: ["1.5.0"], manifest: manifestOf(key) })).toMatchObject({
      take: false,
      code: "VERSION_SKIPPED",
    });
  });

  test("rollout: a connector outside the percentage waits, inside takes it", () => {
    const id = "connector-under-test";
    const bucket = rolloutBucket(id);
    const below = Math.floor(bucket); // bucket >= below: not selected
    const above = Math.min(100, Math.floor(bucket) + 1);
    expect(planUpgrade({ ...base, connectorId: id, manifest: manifestOf(key, { rollout: below }) }).take).toBe(false);
    expect(planUpgrade({ ...base, connectorId: id, manifest: manifestOf(key, { rollout: above }) }).take).toBe(true);
  });

  test("a pin takes only that version, whatever the rollout, even an older one", () => {
    expect(planUpgrade({ ...base, pinVersion: "1.6.0", manifest: manifestOf(key) }).take).toBe(false);
    expect(planUpgrade({ ...base, pinVersion: "1.5.0", manifest: manifestOf(key, { rollout: 0 }) }).take).toBe(true);
    expect(planUpgrade({ ...base, pinVersion: "1.3.0", manifest: manifestOf(key, { version: "1.3.0" }) }).take).toBe(
      true,
    );
    expect(planUpgrade({ ...base, pinVersion: "1.5.0", skipped: ["1.5.0"], manifest: manifestOf(key) })).toMatchObject({
      take: false,
      code: "VERSION_SKIPPED",
    });
  });
});
