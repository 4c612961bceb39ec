/**
 * What the connector remembers about upgrades, in `<state-dir>/upgrade/state.json`: the highest
 * sequence and version it accepted (so an old manifest cannot be replayed to roll it back), the
 * versions it rolled back (skipped until asked for explicitly), the last outcomes (shown in status,
 * reported to the control plane until acknowledged) and the probation of a freshly installed version.
 *
 * The daemon and the root apply step both write it; root hands the file back to the state dir's
 * owner, on the temp file's descriptor before the rename, so nothing the daemon can swap in is chowned.
 */
import { closeSync, constants, fchmodSync, fchownSync, fstatSync, lstatSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { writeOwnedFileAtomic } from "./owned-file.ts";
import { errnoCode, StateError } from "../errors.ts";
import { ensureStateDir, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from "../state/atomic-file.ts";
import { readStateFile, UnsafeStateFileError } from "../state/state-dir-safety.ts";
import { Version, type Manifest } from "./format.ts";

export const STATE_SCHEMA = 1;
export const MAX_OUTCOMES = 20;
export const MAX_SKIPPED = 50;
const MAX_STATE_BYTES = 256 * 1024;

const Timestamp = v.pipe(v.string(), v.isoTimestamp());
/** Not the picklist of today's codes: a state file written by a newer version must still load. */
const Code = v.pipe(v.string(), v.regex(/^[A-Z][A-Z0-9_]{0,63}$/));

export const OutcomeSchema = v.strictObject({
  at: Timestamp,
  from: Version,
  to: v.optional(Version),
  result: v.picklist(["installed", "rolled-back", "refused", "failed"]),
  code: v.optional(Code),
  message: v.optional(v.pipe(v.string(), v.maxLength(2000))),
  reported: v.boolean(),
});
export type Outcome = v.InferOutput<typeof OutcomeSchema>;

export const ProbationSchema = v.strictObject({
  version: Version,
  from: Version,
  since: Timestamp,
  starts: v.pipe(v.number(), v.integer(), v.minValue(0)),
});

export const UpgradeStateSchema = v.strictObject({
  schema: v.literal(STATE_SCHEMA),
  highestSequence: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(Number.MAX_SAFE_INTEGER)),
  highestVersion: v.optional(Version),
  skipped: v.pipe(v.array(Version), v.maxLength(MAX_SKIPPED)),
  outcomes: v.pipe(v.array(OutcomeSchema), v.maxLength(MAX_OUTCOMES)),
  probation: v.optional(ProbationSchema),
});
export type UpgradeState = v.InferOutput<typeof UpgradeStateSchema>;

export const initialUpgradeState = (): UpgradeState => ({
  schema: STATE_SCHEMA,
  highestSequence: 0,
  skipped: [],
  outcomes: [],
});

/** `<stateDir>/upgrade`, or the directory root pinned for this state dir (pinUpgradeDir). */
const pinnedDirs = new Map<string, string>();
export const upgradeDir = (stateDir: string): string => pinnedDirs.get(stateDir) ?? join(stateDir, "upgrade");
export const isUpgradeDirPinned = (stateDir: string): boolean => pinnedDirs.has(stateDir);

/**
 * For root acting in the daemon's state dir: opens `<stateDir>/upgrade` once (O_DIRECTORY,
 * O_NOFOLLOW), checks the opened directory (owned by `owner` or root, not group/other-writable), and
 * until the returned function is called every path below it resolves through `/proc/self/fd/N`: the
 * directory that was checked, whatever the daemon renames, replaces or links in its place meanwhile.
 */
export function pinUpgradeDir(stateDir: string, owner: { uid: number }): () => void {
  const dir = join(stateDir, "upgrade");
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (err) {
    throw new StateError(
      "STATE_DIR_UNSAFE",
      `${dir} is not a plain directory (${errnoCode(err) ?? "error"}); nothing was changed.`,
      { cause: err },
    );
  }
  const stats = fstatSync(fd);
  if ((stats.uid !== owner.uid && stats.uid !== 0) || (stats.mode & 0o022) !== 0) {
    closeSync(fd);
    throw new StateError(
      "STATE_DIR_UNSAFE",
      `${dir} is owned by uid ${stats.uid} or writable by others; nothing was changed.`,
    );
  }
  pinnedDirs.set(stateDir, `/proc/self/fd/${fd}`);
  return () => {
    if (pinnedDirs.get(stateDir) === `/proc/self/fd/${fd}`) pinnedDirs.delete(stateDir);
    closeSync(fd);
  };
}
export const upgradeStatePath = (stateDir: string): string => join(upgradeDir(stateDir), "state.json");

/**
 * Creates `<stateDir>/upgrade` 0700 when missing and checks it when present. With `owner` (root
 * acting for the daemon), a directory it creates is handed to that owner, and an existing one must be
 * owned by it (or root), be a real directory (not a symlink) and not be group/other-writable.
 */
export function ensureUpgradeDir(stateDir: string, owner?: { uid: number; gid: number }): string {
  const dir = upgradeDir(stateDir);
  if (isUpgradeDirPinned(stateDir)) return dir; // checked when it was pinned
  if (owner === undefined) {
    ensureStateDir(dir);
    return dir;
  }
  try {
    mkdirSync(dir, { mode: PRIVATE_DIR_MODE });
    const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    try {
      fchmodSync(fd, PRIVATE_DIR_MODE);
      fchownSync(fd, owner.uid, owner.gid);
    } finally {
      closeSync(fd);
    }
    return dir;
  } catch (err) {
    if (errnoCode(err) !== "EEXIST") throw err;
  }
  const stats = lstatSync(dir);
  const problem = !stats.isDirectory()
    ? "is not a directory"
    : stats.uid !== owner.uid && stats.uid !== 0
      ? `is owned by uid ${stats.uid}, not by the state dir's owner (uid ${owner.uid})`
      : (stats.mode & 0o022) !== 0
        ? `is writable by other users (mode ${(stats.mode & 0o7777).toString(8)})`
        : undefined;
  if (problem !== undefined)
    throw new StateError(
      "STATE_DIR_UNSAFE",
      `${dir} ${problem}; it is not used. Remove it and let the connector create it again.`,
    );
  return dir;
}

/** The state, or the initial state and why when the file is missing, unsafe or broken. */
export function loadUpgradeState(stateDir: string): { state: UpgradeState; problem?: string } {
  const path = upgradeStatePath(stateDir);
  let text: string;
  try {
    // Root (the apply step) reads the file the daemon's user owns; anyone else only their own.
    text = readStateFile(path, MAX_STATE_BYTES, { owner: "self-or-root", privateMode: true, rootReadsAny: true });
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return { state: initialUpgradeState() };
    const why =
      err instanceof UnsafeStateFileError ? err.message : `${path} cannot be read (${errnoCode(err) ?? "error"})`;
    return { state: initialUpgradeState(), problem: why };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { state: initialUpgradeState(), problem: `${path} is not JSON; upgrade history starts again` };
  }
  const parsed = v.safeParse(UpgradeStateSchema, value);
  if (!parsed.success)
    return { state: initialUpgradeState(), problem: `${path} does not match its schema; upgrade history starts again` };
  return { state: parsed.output };
}

/** The state; the initial state when the file is missing or broken (use loadUpgradeState to learn why). */
export function readUpgradeState(stateDir: string): UpgradeState {
  return loadUpgradeState(stateDir).state;
}

/** Writes state.json atomically (temp, fsync, rename, fsync dir), 0600; with `owner`, chowned to it first. */
export function writeUpgradeState(stateDir: string, state: UpgradeState, owner?: { uid: number; gid: number }): void {
  ensureUpgradeDir(stateDir, owner);
  writeOwnedFileAtomic(
    upgradeStatePath(stateDir),
    `${JSON.stringify(v.parse(UpgradeStateSchema, state), null, 2)}\n`,
    PRIVATE_FILE_MODE,
    owner,
  );
}

/** Appends an outcome (not yet reported), keeping the newest MAX_OUTCOMES. */
export function recordOutcome(state: UpgradeState, outcome: Omit<Outcome, "reported">): UpgradeState {
  return { ...state, outcomes: [...state.outcomes, { ...outcome, reported: false }].slice(-MAX_OUTCOMES) };
}

/** Marks the oldest `count` unreported outcomes as reported (the control plane took that many, in order). */
export function markReported(state: UpgradeState, count: number): UpgradeState {
  let left = count;
  const outcomes = state.outcomes.map((o) => {
    if (o.reported || left <= 0) return o;
    left--;
    return { ...o, reported: true };
  });
  return { ...state, outcomes };
}

/**
 * Records an installed release: the sequence only grows; the version follows the newest signed
 * manifest (an explicit downgrade is published with a higher sequence, so it lowers highestVersion).
 * The version is no longer skipped: it is what runs now.
 */
export function acceptRelease(state: UpgradeState, manifest: Manifest): UpgradeState {
  const newest = manifest.sequence >= state.highestSequence;
  return {
    ...state,
    highestSequence: Math.max(state.highestSequence, manifest.sequence),
    highestVersion: newest ? manifest.version : state.highestVersion,
    skipped: state.skipped.filter((s) => s !== manifest.version),
  };
}

/** Adds `version` to the skipped versions (once), keeping the newest MAX_SKIPPED. */
export function markSkipped(state: UpgradeState, version: string): UpgradeState {
  if (state.skipped.includes(version)) return state;
  return { ...state, skipped: [...state.skipped, version].slice(-MAX_SKIPPED) };
}
