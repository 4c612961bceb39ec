/**
 * Applying a release: what the root oneshot (`connector upgrade --apply-staged`) does when the daemon
 * asks, and what a manual `connector upgrade` does with a release it fetched itself. Root trusts
 * nothing the daemon wrote: the staged files are read safely into memory and verified again, from
 * those bytes, with the roots compiled into the INSTALLED binary (the one running this), before the
 * bytes are swapped in. Every path ends with a result.json and an outcome in state.json, and with
 * request.json removed, so a PathExists= unit never fires twice for one request.
 */
import { randomUUID } from "node:crypto";
import { closeSync, constants, fchownSync, fstatSync, openSync } from "node:fs";
import type { Logger } from "../log.ts";
import { describeError, errnoCode } from "../errors.ts";
import { EWOULDBLOCK, flock, LOCK_EX, LOCK_NB, LOCK_UN } from "../host/libc.ts";
import { PRIVATE_FILE_MODE } from "../state/atomic-file.ts";
import { isUpgradeError, UpgradeError } from "./errors.ts";
import type { Manifest, ManifestTarget } from "./format.ts";
import { type FileOwner, ownerForWrites } from "./owned-file.ts";
import {
  applyLockPath,
  clearStaged,
  readRequest,
  readStaged,
  removeRequest,
  type UpgradeResult,
  writeResult,
} from "./staging.ts";
import { ensureUpgradeDir, pinUpgradeDir, type Outcome, type UpgradeState } from "./state.ts";
import type { AcceptanceRules, ReleaseFiles } from "./verify.ts";
import { removeSwapLeftovers, restorePrevious, swapBinary } from "./swap.ts";

/** Verification and state keeping, injected (src/upgrade/verify.ts, self-check.ts, state.ts). */
export interface ApplyDeps {
  verifyRelease(
    files: ReleaseFiles,
    roots: readonly string[],
    rules: AcceptanceRules,
    now: Date,
  ): { manifest: Manifest; target: ManifestTarget };
  verifyBinaryBytes(bytes: Uint8Array, target: ManifestTarget): void;
  selfCheck(binaryPath: string, expected: { version: string; target: string }, timeoutMs?: number): Promise<void>;
  readUpgradeState(stateDir: string): UpgradeState;
  writeUpgradeState(stateDir: string, state: UpgradeState, owner?: { uid: number; gid: number }): void;
  acceptRelease(state: UpgradeState, manifest: Manifest): UpgradeState;
  markSkipped(state: UpgradeState, version: string): UpgradeState;
  recordOutcome(state: UpgradeState, outcome: Omit<Outcome, "reported">): UpgradeState;
}

export interface ApplyContext {
  stateDir: string;
  /** The binary to replace, e.g. /usr/local/bin/connector. */
  installed: string;
  /** Trusted roots compiled into the running (installed) binary. */
  roots: readonly string[];
  /** The running binary's own build facts: the version being replaced and this machine's target. */
  running: { version: string; target: string };
  channel: string;
  now: () => Date;
  deps: ApplyDeps;
  log?: Pick<Logger, "info" | "warn">;
  /** How long to wait for another apply holding apply.lock (default 5 min: a swap with its self-check). */
  lockWaitMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

const DEFAULT_LOCK_WAIT_MS = 5 * 60_000;
const LOCK_POLL_MS = 100;
/** Codes that mean "could not be done" rather than "this release was not acceptable". */
const FAILURE_CODES = new Set<string>(["SWAP_FAILED", "NO_PREVIOUS_BINARY", "BINARY_NOT_WRITABLE", "APPLY_TIMEOUT"]);

export interface ApplyLock {
  release(): void;
}

/**
 * Takes flock(LOCK_EX) on `<state-dir>/upgrade/apply.lock` (no symlink followed), waiting up to
 * `waitMs` for another apply to finish; APPLY_TIMEOUT after that. Root hands the file to `owner`, so
 * a manual upgrade by the connector's user can still open it.
 */
export async function takeApplyLock(
  stateDir: string,
  owner: FileOwner | undefined,
  waitMs = DEFAULT_LOCK_WAIT_MS,
  sleep: (ms: number) => Promise<void> = Bun.sleep,
): Promise<ApplyLock> {
  const path = applyLockPath(stateDir);
  let fd: number;
  try {
    fd = openApplyLock(path, owner);
  } catch (err) {
    if (err instanceof UpgradeError) throw err;
    throw new UpgradeError(
      "SWAP_FAILED",
      `Cannot open the apply lock ${path} (${errnoCode(err) ?? describeError(err)}).`,
      { cause: err },
    );
  }
  for (let waited = 0; ; waited += LOCK_POLL_MS) {
    const errno = flock(fd, LOCK_EX | LOCK_NB);
    if (errno === 0) break;
    if (errno !== EWOULDBLOCK || waited >= waitMs) {
      closeSync(fd);
      if (errno === EWOULDBLOCK)
        throw new UpgradeError(
          "APPLY_TIMEOUT",
          `Another upgrade held ${path} for over ${Math.round(waitMs / 1000)} s; nothing was changed.`,
        );
      throw new UpgradeError("SWAP_FAILED", `Cannot lock ${path} (errno ${errno}).`);
    }
    await sleep(LOCK_POLL_MS);
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      flock(fd, LOCK_UN);
      closeSync(fd);
    },
  };
}

/**
 * The lock file root may hand to `owner`: only one it has just created itself. An existing one is
 * used as found, and only if it is a plain file with one link owned by `owner` or root: a hard link
 * the daemon planted to a file of root's (the binary) is neither locked nor, above all, chowned.
 */
function openApplyLock(path: string, owner: FileOwner | undefined): number {
  try {
    const fd = openSync(
      path,
      constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      PRIVATE_FILE_MODE,
    );
    if (owner !== undefined) fchownSync(fd, owner.uid, owner.gid);
    return fd;
  } catch (err) {
    if (errnoCode(err) !== "EEXIST") throw err;
  }
  const fd = openSync(path, constants.O_RDWR | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  const stats = fstatSync(fd);
  const expected = owner?.uid ?? process.geteuid?.();
  if (!stats.isFile() || stats.nlink !== 1 || (stats.uid !== expected && stats.uid !== 0)) {
    closeSync(fd);
    throw new UpgradeError(
      "STAGING_UNSAFE",
      `${path} is not a plain lock file of the state dir's owner (links ${stats.nlink}, uid ${stats.uid}); nothing was changed.`,
    );
  }
  return fd;
}

async function withApplyLock<T>(ctx: ApplyContext, body: (owner: FileOwner | undefined) => Promise<T>): Promise<T> {
  const owner = ownerForWrites(ctx.stateDir);
  ensureUpgradeDir(ctx.stateDir, owner);
  // Root works in a directory the daemon controls: on the directory it checked, by fd, from here on.
  const unpin = owner !== undefined ? pinUpgradeDir(ctx.stateDir, owner) : undefined;
  try {
    const lock = await takeApplyLock(ctx.stateDir, owner, ctx.lockWaitMs, ctx.sleep);
    try {
      removeSwapLeftovers(ctx.installed);
      return await body(owner);
    } finally {
      lock.release();
    }
  } finally {
    unpin?.();
  }
}

function classify(err: unknown): { result: "refused" | "failed"; code: string; message: string } {
  if (isUpgradeError(err))
    return { result: FAILURE_CODES.has(err.code) ? "failed" : "refused", code: err.code, message: err.message };
  return { result: "failed", code: "SWAP_FAILED", message: describeError(err) };
}

/** Records an outcome in state.json; a state that cannot be written is logged, never hides the result. */
function record(
  ctx: ApplyContext,
  owner: FileOwner | undefined,
  state: UpgradeState | undefined,
  change: (s: UpgradeState) => UpgradeState,
): void {
  try {
    const base = state ?? ctx.deps.readUpgradeState(ctx.stateDir);
    ctx.deps.writeUpgradeState(ctx.stateDir, change(base), owner);
  } catch (err) {
    ctx.log?.warn(`upgrade: cannot record the outcome in the state dir: ${describeError(err)}`);
  }
}

function finish(
  ctx: ApplyContext,
  owner: FileOwner | undefined,
  result: Omit<UpgradeResult, "schema" | "at">,
): UpgradeResult {
  const fields = { ...result, at: ctx.now().toISOString() };
  try {
    writeResult(ctx.stateDir, fields, owner);
  } catch (err) {
    ctx.log?.warn(`upgrade: cannot write ${result.result} to result.json: ${describeError(err)}`);
  }
  return { schema: 1, ...fields };
}

async function installLocked(
  ctx: ApplyContext,
  owner: FileOwner | undefined,
  id: string,
  load: () => { files: ReleaseFiles; binary: Uint8Array },
  explicitVersion?: string,
): Promise<UpgradeResult> {
  const { deps, running } = ctx;
  const from = running.version;
  let state: UpgradeState | undefined;
  let manifest: Manifest | undefined;
  try {
    state = deps.readUpgradeState(ctx.stateDir);
    const { files, binary } = load();
    const rules: AcceptanceRules = {
      channel: ctx.channel,
      runningVersion: running.version,
      target: running.target,
      highestSequence: state.highestSequence,
      ...(state.highestVersion !== undefined ? { highestVersion: state.highestVersion } : {}),
      skipped: state.skipped,
      ...(explicitVersion !== undefined ? { explicitVersion } : {}),
    };
    const verified = deps.verifyRelease(files, ctx.roots, rules, ctx.now());
    manifest = verified.manifest;
    deps.verifyBinaryBytes(binary, verified.target);
    const expected = { version: verified.manifest.version, target: running.target };
    await swapBinary({ installed: ctx.installed, bytes: binary, check: (temp) => deps.selfCheck(temp, expected) });
  } catch (err) {
    const { result, code, message } = classify(err);
    const to = manifest?.version;
    ctx.log?.warn(`upgrade: ${result} ${to ?? "the release"} (${code}): ${message}`);
    const outcome: Omit<Outcome, "reported"> = {
      at: ctx.now().toISOString(),
      from,
      ...(to !== undefined ? { to } : {}),
      result,
      code,
      message,
    };
    record(ctx, owner, state, (s) => deps.recordOutcome(s, outcome));
    return finish(ctx, owner, {
      id,
      action: "apply",
      result,
      from,
      ...(to !== undefined ? { to } : {}),
      code,
      message,
    });
  }
  const accepted = manifest;
  ctx.log?.info(`upgrade: installed ${accepted.version} over ${from} at ${ctx.installed}`);
  // On probation until it has served for a while: a crash loop before then rolls it back (src/daemon/upgrade-flow.ts).
  const probation = { version: accepted.version, from, since: ctx.now().toISOString(), starts: 0 };
  record(ctx, owner, state, (s) => ({
    ...deps.recordOutcome(deps.acceptRelease(s, accepted), {
      at: ctx.now().toISOString(),
      from,
      to: accepted.version,
      result: "installed",
    }),
    probation,
  }));
  return finish(ctx, owner, { id, action: "apply", result: "swapped", from, to: accepted.version });
}

async function rollBackLocked(
  ctx: ApplyContext,
  owner: FileOwner | undefined,
  id: string,
  removing: string,
): Promise<UpgradeResult> {
  const { deps } = ctx;
  try {
    restorePrevious(ctx.installed);
  } catch (err) {
    const { code, message } = classify(err);
    ctx.log?.warn(`upgrade: rollback of ${removing} failed (${code}): ${message}`);
    record(ctx, owner, undefined, (s) =>
      deps.recordOutcome(s, { at: ctx.now().toISOString(), from: removing, result: "failed", code, message }),
    );
    return finish(ctx, owner, { id, action: "rollback", result: "failed", from: removing, code, message });
  }
  let to: string | undefined;
  record(ctx, owner, undefined, (s) => {
    // The version restored is known when the removed one was still on probation (it records where it came from).
    to = s.probation?.version === removing ? s.probation.from : undefined;
    const { probation: _ended, ...rest } = deps.recordOutcome(deps.markSkipped(s, removing), {
      at: ctx.now().toISOString(),
      from: removing,
      ...(to !== undefined ? { to } : {}),
      result: "rolled-back",
    });
    return rest;
  });
  ctx.log?.info(`upgrade: rolled back ${removing}${to !== undefined ? ` to ${to}` : ""}; ${removing} will be skipped`);
  return finish(ctx, owner, {
    id,
    action: "rollback",
    result: "rolled-back",
    from: removing,
    ...(to !== undefined ? { to } : {}),
  });
}

/**
 * Serves request.json (the root oneshot's job): "apply" verifies the staged release again and swaps
 * it in, "rollback" restores connector.prev and marks the removed version skipped. Returns the result
 * written to result.json, or undefined when there was no request. request.json is removed on every
 * path; the staged release after an apply (a refused one would only be refused again).
 */
export async function applyStaged(ctx: ApplyContext): Promise<UpgradeResult | undefined> {
  return withApplyLock(ctx, async (owner) => {
    try {
      let request: ReturnType<typeof readRequest>;
      try {
        request = readRequest(ctx.stateDir);
      } catch (err) {
        const { result, code, message } = classify(err);
        ctx.log?.warn(`upgrade: request.json refused (${code}): ${message}`);
        return finish(ctx, owner, {
          id: randomUUID(),
          action: "apply",
          result,
          from: ctx.running.version,
          code,
          message,
        });
      }
      if (request === undefined) return undefined;
      if (request.action === "rollback") return await rollBackLocked(ctx, owner, request.id, ctx.running.version);
      try {
        return await installLocked(ctx, owner, request.id, () => readStaged(ctx.stateDir));
      } finally {
        clearStaged(ctx.stateDir);
      }
    } finally {
      removeRequest(ctx.stateDir);
    }
  });
}

/** A manual `connector upgrade` that fetched the release itself: the same verification and swap, no staging. */
export async function installRelease(
  ctx: ApplyContext,
  files: ReleaseFiles,
  binary: Uint8Array,
  explicitVersion?: string,
): Promise<UpgradeResult> {
  return withApplyLock(ctx, (owner) =>
    installLocked(ctx, owner, randomUUID(), () => ({ files, binary }), explicitVersion),
  );
}

/**
 * Restores connector.prev and marks `removing` skipped. `removing` defaults to the running version
 * (right for `connector upgrade --rollback` run from the installed binary); an old daemon restoring
 * itself after a failed hand-over passes the version it tried.
 */
export async function rollBack(ctx: ApplyContext, removing: string = ctx.running.version): Promise<UpgradeResult> {
  return withApplyLock(ctx, (owner) => rollBackLocked(ctx, owner, randomUUID(), removing));
}
