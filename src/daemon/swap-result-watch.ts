/**
 * Watches `<state-dir>/upgrade/result.json`, which whoever applied a staged release writes (the root
 * upgrade unit, or a manual `connector upgrade`): a new result saying "swapped" to a version other than
 * the running one means the binary on disk is newer than this process, so the daemon hands over to it.
 * A stat every `intervalMs` is all it costs; the file is read only when it changed, and a result that
 * was already there when the watch began is never acted on.
 */
import { statSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import type { Clock, TimerHandle } from "../clock.ts";
import { readStateFile } from "../state/state-dir-safety.ts";

export const RESULT_FILE = join("upgrade", "result.json");
export const RESULT_POLL_MS = 2_000;
const MAX_RESULT_BYTES = 16 * 1024;

/** Only what the hand-over needs; the upgrade flow's own schema says more. */
const SwapResultSchema = v.object({
  schema: v.literal(1),
  id: v.string(),
  result: v.string(),
  to: v.optional(v.string()),
});
export type SwapResult = v.InferOutput<typeof SwapResultSchema>;

export interface SwapResultWatchOptions {
  stateDir: string;
  clock: Clock;
  /** The running version: a swap to it is nothing to hand over to. */
  version: string;
  onSwapped: (result: SwapResult) => void;
  onUnreadable?: (error: string) => void;
  intervalMs?: number;
}

/** A fingerprint of the file's last change; undefined when it is not there. */
function fingerprint(path: string): string | undefined {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return undefined;
  }
}

function read(path: string): SwapResult | string {
  try {
    const parsed = v.safeParse(
      SwapResultSchema,
      JSON.parse(readStateFile(path, MAX_RESULT_BYTES, { owner: "self-or-root", privateMode: true })),
    );
    return parsed.success ? parsed.output : `not an upgrade result: ${parsed.issues[0]?.message ?? "invalid"}`;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

export function watchSwapResult(options: SwapResultWatchOptions): { stop(): void } {
  const path = join(options.stateDir, RESULT_FILE);
  let seen = fingerprint(path);
  const initial = seen === undefined ? undefined : read(path);
  let lastId = typeof initial === "object" ? initial.id : undefined;
  let timer: TimerHandle | undefined;
  let stopped = false;
  const tick = () => {
    const now = fingerprint(path);
    if (now !== undefined && now !== seen) {
      seen = now;
      const result = read(path);
      if (typeof result === "string") options.onUnreadable?.(result);
      else if (result.id !== lastId) {
        lastId = result.id;
        if (result.result === "swapped" && result.to !== options.version) options.onSwapped(result);
      }
    } else seen = now;
    if (!stopped) timer = options.clock.setTimeout(tick, options.intervalMs ?? RESULT_POLL_MS);
  };
  timer = options.clock.setTimeout(tick, options.intervalMs ?? RESULT_POLL_MS);
  return {
    stop() {
      stopped = true;
      timer?.cancel();
    },
  };
}
