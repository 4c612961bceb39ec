/** adjtimex(2) through bun:ffi: how its return value and status bits read, and that the call works here. */
import { describe, expect, test } from "bun:test";
import { clockSyncFromTimex, readClockSync, STA_UNSYNC, TIME_ERROR } from "../../src/host/adjtimex.ts";

describe("clockSyncFromTimex", () => {
  test("TIME_OK with STA_PLL and no STA_UNSYNC: synchronised", () => {
    expect(clockSyncFromTimex(0, 0x0001, 12_000)).toEqual({
      state: "synced",
      detail: "adjtimex state 0, status 0x0001, max error 12 ms",
    });
  });
  test("TIME_ERROR (5) is not synchronised even without STA_UNSYNC", () => {
    expect(TIME_ERROR).toBe(5);
    expect(clockSyncFromTimex(5, 0x0001).state).toBe("unsynced");
  });
  test("STA_UNSYNC (0x0040) is not synchronised whatever the state", () => {
    expect(STA_UNSYNC).toBe(0x40);
    expect(clockSyncFromTimex(0, 0x2041).state).toBe("unsynced");
    expect(clockSyncFromTimex(1, 0x0040).state).toBe("unsynced");
  });
  test("the leap-second states (TIME_INS .. TIME_WAIT) without STA_UNSYNC are synchronised", () => {
    for (const state of [1, 2, 3, 4]) expect(clockSyncFromTimex(state, 0x0011).state).toBe("synced");
  });
  test("a failed call (-1) is unknown", () => {
    expect(clockSyncFromTimex(-1, 0).state).toBe("unknown");
  });
});

test("readClockSync calls the kernel on this machine (a state, not unknown)", () => {
  const sync = readClockSync();
  expect(["synced", "unsynced"]).toContain(sync.state);
  expect(sync.detail).toMatch(/^adjtimex state [0-5], status 0x[0-9a-f]{4}/);
});
