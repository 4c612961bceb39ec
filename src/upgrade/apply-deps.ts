/** The real verification and state functions `apply.ts` runs with (tests inject their own). */
import type { ApplyDeps } from "./apply.ts";
import { selfCheck } from "./self-check.ts";
import { acceptRelease, markSkipped, readUpgradeState, recordOutcome, writeUpgradeState } from "./state.ts";
import { verifyBinaryBytes, verifyRelease } from "./verify.ts";

export const applyDeps: ApplyDeps = {
  verifyRelease,
  verifyBinaryBytes,
  selfCheck,
  readUpgradeState,
  writeUpgradeState,
  acceptRelease,
  markSkipped,
  recordOutcome,
};
