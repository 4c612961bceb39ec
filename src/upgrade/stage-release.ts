/**
 * The unprivileged half of an upgrade: download the verified release's binary into the state dir,
 * stage it with the documents that vouch for it, and ask for it to be applied — by the root oneshot
 * (systemd path unit on `upgrade/request.json`) or by whoever runs `connector upgrade`.
 */
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { sleep, systemClock, type Clock } from "../clock.ts";
import { downloadBinary, type RetrievalPolicy } from "./download.ts";
import { describeError } from "../errors.ts";
import { UpgradeError } from "./errors.ts";
import type { ManifestTarget } from "./format.ts";
import { readResult, removeRequest, writeRequest, writeStaged, type UpgradeResult } from "./staging.ts";
import { ensureUpgradeDir } from "./state.ts";
import type { ReleaseFiles } from "./verify.ts";

/** Downloads `target` beside the manifest into the upgrade dir; the caller owns (and removes) the file. */
export async function downloadCandidate(
  stateDir: string,
  manifestUrl: URL,
  target: ManifestTarget,
  policy: RetrievalPolicy,
): Promise<string> {
  const path = join(ensureUpgradeDir(stateDir), `download.${randomBytes(6).toString("hex")}.unverified`);
  await downloadBinary(new URL(target.url, manifestUrl), target, path, policy);
  return path;
}

/** Download + stage: afterwards `upgrade/staged/` holds everything `--apply-staged` needs. */
export async function stageRelease(
  stateDir: string,
  manifestUrl: URL,
  files: ReleaseFiles,
  target: ManifestTarget,
  policy: RetrievalPolicy,
): Promise<void> {
  const downloaded = await downloadCandidate(stateDir, manifestUrl, target, policy);
  try {
    writeStaged(stateDir, files, downloaded);
  } finally {
    rmSync(downloaded, { force: true });
  }
}

export interface WaitOptions {
  readonly deadlineMs: number;
  readonly pollMs?: number;
  readonly clock?: Clock;
  readonly signal?: AbortSignal;
}

/**
 * Writes the request and waits for its result. Nobody answering by the deadline (no upgrade unit
 * installed, systemd not running) is APPLY_TIMEOUT, and the request is withdrawn: a unit installed
 * later must not act on a stale one.
 */
export async function requestAndWait(
  stateDir: string,
  action: "apply" | "rollback",
  options: WaitOptions,
): Promise<UpgradeResult> {
  const clock = options.clock ?? systemClock;
  const id = writeRequest(stateDir, action);
  const deadline = clock.now() + options.deadlineMs;
  while (clock.now() < deadline && !options.signal?.aborted) {
    const result = readResult(stateDir);
    if (result?.id === id) return result;
    await sleep(clock, options.pollMs ?? 500, options.signal);
  }
  const late = readResult(stateDir);
  if (late?.id === id) return late;
  removeRequest(stateDir);
  throw new UpgradeError(
    "APPLY_TIMEOUT",
    `The staged ${action} was not carried out within ${Math.round(options.deadlineMs / 1000)} s: no upgrade unit answered (is connector-upgrade.path enabled?), and this user cannot replace the binary.`,
  );
}

/** How long `connector upgrade --apply-staged` may take (a self-check and a 100 MiB fsync on a slow disk). */
const APPLY_CHILD_MS = 5 * 60_000;

/**
 * For a daemon that may replace its binary (no upgrade unit): writes the request and runs
 * `<installed> upgrade --apply-staged` as a child process. The swap reads, hashes and fsyncs the whole
 * binary synchronously; in the daemon that would stall every stream for seconds.
 */
export async function requestAndApply(
  stateDir: string,
  action: "apply" | "rollback",
  installed: string,
  channel: string,
): Promise<UpgradeResult> {
  const id = writeRequest(stateDir, action);
  let proc: ReturnType<typeof Bun.spawn>;
  try {
    proc = Bun.spawn(
      [installed, "upgrade", "--apply-staged", "--state-dir", stateDir, "--channel", channel, "--log-format", "json"],
      {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
        stdin: "ignore",
        stdout: "inherit",
        stderr: "inherit",
      },
    );
  } catch (err) {
    removeRequest(stateDir);
    throw new UpgradeError("SWAP_FAILED", `Cannot run ${installed} to apply the ${action}: ${describeError(err)}.`, {
      cause: err,
    });
  }
  const timer = setTimeout(() => proc.kill("SIGKILL"), APPLY_CHILD_MS);
  const code = await proc.exited;
  clearTimeout(timer);
  const result = readResult(stateDir);
  if (result?.id === id) return result;
  removeRequest(stateDir);
  throw new UpgradeError(
    "SWAP_FAILED",
    `connector upgrade --apply-staged exited ${code ?? "on a signal"} without answering the ${action} request.`,
  );
}
