/**
 * When the daemon looks for a release and whether it takes the one it finds: checks every interval
 * with ±20 % jitter (a fleet started together does not hit the release host together), only inside
 * the maintenance window when one is set (UTC, may wrap midnight), and a release only when the pin,
 * the staged rollout, the skip list and the running version allow it.
 */
import { SettingsError } from "../errors.ts";
import type { UpgradeErrorCode } from "./errors.ts";
import type { Manifest } from "./format.ts";
import { inRollout } from "./rollout.ts";
import { compareVersions } from "./version-order.ts";

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;
export const CHECK_JITTER = 0.2;

/** UTC minutes of the day; `startMinute > endMinute` wraps midnight (22:00-02:00). */
export interface UpgradeWindow {
  startMinute: number;
  endMinute: number;
}

const WINDOW_PATTERN = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$/;

/** Parses "HH:MM-HH:MM" (UTC); throws SettingsError saying what is expected. Start and end must differ. */
export function parseWindow(text: string): UpgradeWindow {
  const m = WINDOW_PATTERN.exec(text.trim());
  if (!m)
    throw new SettingsError(
      `--upgrade-window "${text.slice(0, 40)}" is not HH:MM-HH:MM in UTC, such as 02:00-05:00 (22:00-02:00 wraps midnight).`,
    );
  const window = { startMinute: Number(m[1]) * 60 + Number(m[2]), endMinute: Number(m[3]) * 60 + Number(m[4]) };
  if (window.startMinute === window.endMinute) {
    throw new SettingsError(
      `--upgrade-window ${text.trim()} starts where it ends; give a window such as 02:00-05:00, or leave the setting out to allow upgrades at any time.`,
    );
  }
  return window;
}

function msOfDay(now: Date): number {
  return ((now.getTime() % DAY_MS) + DAY_MS) % DAY_MS;
}

/** True when `now` is inside the window (start inclusive, end exclusive); always true without a window. */
export function inWindow(window: UpgradeWindow | undefined, now: Date): boolean {
  if (window === undefined) return true;
  const t = msOfDay(now);
  const start = window.startMinute * MINUTE_MS;
  const end = window.endMinute * MINUTE_MS;
  return start < end ? t >= start && t < end : t >= start || t < end;
}

/** 0 inside the window, else the time until it next opens. */
export function msUntilWindow(window: UpgradeWindow, now: Date): number {
  if (inWindow(window, now)) return 0;
  return (window.startMinute * MINUTE_MS - msOfDay(now) + DAY_MS) % DAY_MS;
}

/** The interval with ±20 % jitter: uniformly in [0.8, 1.2) × interval for `random` in [0, 1). */
export function nextCheckDelay(intervalMs: number, random: () => number = Math.random): number {
  return Math.round(intervalMs * (1 - CHECK_JITTER + 2 * CHECK_JITTER * random()));
}

export type UpgradePlan = { take: true } | { take: false; reason: string; code?: UpgradeErrorCode };

/**
 * Whether to take the (verified) manifest's release. A pin takes only that version, and as the
 * operator's explicit choice it is not held back by the rollout percentage (and may be older than
 * the running version: the caller passes it as the explicit version). Otherwise: not a version rolled
 * back before, newer than the running one, and this connector within the rollout percentage.
 */
export function planUpgrade(input: {
  manifest: Manifest;
  runningVersion: string;
  connectorId: string;
  pinVersion?: string;
  skipped: readonly string[];
}): UpgradePlan {
  const { manifest, runningVersion, pinVersion } = input;
  if (manifest.version === runningVersion) return { take: false, reason: `up to date (${runningVersion})` };
  if (pinVersion !== undefined) {
    if (manifest.version !== pinVersion)
      return { take: false, reason: `pinned to ${pinVersion}; the channel offers ${manifest.version}` };
    if (input.skipped.includes(pinVersion)) {
      return {
        take: false,
        reason: `pinned to ${pinVersion}, which was rolled back here before; run connector upgrade --version ${pinVersion} to try it again`,
        code: "VERSION_SKIPPED",
      };
    }
    return { take: true };
  }
  if (compareVersions(manifest.version, runningVersion) < 0) {
    return {
      take: false,
      reason: `the channel offers ${manifest.version}, older than the running ${runningVersion}`,
      code: "NOT_NEWER",
    };
  }
  if (input.skipped.includes(manifest.version)) {
    return {
      take: false,
      reason: `${manifest.version} was rolled back here before; run connector upgrade --version ${manifest.version} to try it again`,
      code: "VERSION_SKIPPED",
    };
  }
  if (!inRollout(input.connectorId, manifest.rollout)) {
    return {
      take: false,
      reason: `${manifest.version} is rolled out to ${manifest.rollout} % of connectors so far, not yet to this one`,
    };
  }
  return { take: true };
}
