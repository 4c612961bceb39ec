import { expect, test } from "bun:test";
import { DEFAULT_SESSION_CONFIG, resolveSessionConfig, SessionConfigError } from "../../src/mux/config.ts";
import { INITIAL_WINDOW, MAX_DATA_PAYLOAD, MAX_WINDOW } from "../../src/mux/const.ts";

test("defaults are the documented numbers and pass validation", () => {
  expect(resolveSessionConfig()).toEqual({
    maxStreams: 10_000,
    heartbeatIntervalMs: 10_000,
    missedHeartbeats: 3,
    openTimeoutMs: 30_000,
    maxFrameBytes: MAX_DATA_PAYLOAD,
    fairFrameBytes: 64 * 1024,
    maxMessageBytes: 256 * 1024 + 64,
    maxReceiveWindow: MAX_WINDOW,
    windowGrowthBudget: 64 * 1024 * 1024,
  });
  expect(Object.isFrozen(DEFAULT_SESSION_CONFIG)).toBe(true);
});

test("overrides replace only the fields given", () => {
  expect(resolveSessionConfig({ maxStreams: 5 })).toMatchObject({ maxStreams: 5, heartbeatIntervalMs: 10_000 });
});

const invalid: [string, Parameters<typeof resolveSessionConfig>[0], string][] = [
  ["zero streams", { maxStreams: 0 }, "maxStreams"],
  ["a fractional interval", { heartbeatIntervalMs: 1.5 }, "heartbeatIntervalMs"],
  ["frames above the protocol maximum", { maxFrameBytes: MAX_DATA_PAYLOAD + 1 }, "maxFrameBytes"],
  ["a fair frame larger than the frame", { maxFrameBytes: 1024, fairFrameBytes: 2048 }, "fairFrameBytes"],
  ["a message too small for a health report", { maxMessageBytes: 4096 }, "maxMessageBytes"],
  ["a message above 1 MiB", { maxMessageBytes: 2 * 1024 * 1024 }, "maxMessageBytes"],
  ["a window cap below the initial window", { maxReceiveWindow: INITIAL_WINDOW - 1 }, "maxReceiveWindow"],
  ["a window cap above 16 MiB", { maxReceiveWindow: MAX_WINDOW + 1 }, "maxReceiveWindow"],
];
for (const [name, overrides, field] of invalid) {
  test(`${name} is refused, naming ${field}`, () => {
    expect(() => resolveSessionConfig(overrides)).toThrow(SessionConfigError);
    expect(() => resolveSessionConfig(overrides)).toThrow(field);
  });
}
