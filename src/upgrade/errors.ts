/**
 * Every refusal and failure of an upgrade has its own stable code: it is logged, shown in status,
 * reported to the control plane and printed by `connector upgrade`, so a fleet operator can count
 * "how many connectors refused release 1.5.0, and why" without reading text.
 */
import { ConnectorError, ExitCode } from "../errors.ts";

export const UPGRADE_ERROR_CODES = [
  // where releases come from
  "NO_RELEASE_SOURCE", // no manifest URL configured or baked in
  "NO_TRUST_ROOTS", // this build embeds fewer roots than the threshold (a development build)
  // retrieval
  "MANIFEST_TOO_LARGE", // manifest or key set over its cap
  "BODY_TOO_LONG", // a binary longer than its manifest says (endless data)
  "BODY_TOO_SHORT", // the body ended before the size the manifest says
  "DOWNLOAD_TOO_SLOW", // below the speed floor (slow retrieval)
  "DOWNLOAD_TIMEOUT", // over the overall deadline
  "DOWNLOAD_FAILED", // HTTP status, DNS, refused, reset, proxy
  // the key chain
  "KEYSET_MALFORMED",
  "KEYSET_NOT_VOUCHED", // fewer than the threshold of valid signatures by compiled-in roots
  "KEYSET_EXPIRED",
  // the manifest
  "MANIFEST_MALFORMED",
  "SIGNATURE_MISSING",
  "KEY_UNKNOWN", // the manifest names a key the vouched set does not hold
  "SIGNATURE_INVALID",
  "MANIFEST_EXPIRED", // freeze
  "WRONG_CHANNEL",
  "SEQUENCE_ROLLBACK", // a sequence below the highest accepted
  "VERSION_ROLLBACK", // a version below the highest accepted
  "NOT_NEWER", // not newer than the running version (without an explicit --version)
  "TARGET_MISSING", // no binary for this machine's target
  // the binary
  "HASH_MISMATCH",
  "SIZE_MISMATCH",
  "SELF_CHECK_FAILED", // the candidate did not run `--version` and print the expected version and target
  // applying
  "STAGING_UNSAFE", // a staged file is a symlink, not ours, too big
  "SWAP_FAILED",
  "BINARY_NOT_WRITABLE", // this user cannot replace the binary and no upgrade unit answered
  "APPLY_TIMEOUT", // the staged release was not applied in time
  "HEALTH_GATE_FAILED", // the new version did not bring its tunnels up in time
  "CRASH_LOOP", // the new version restarted too often before it proved itself
  "NO_PREVIOUS_BINARY", // a rollback with no connector.prev
  "VERSION_SKIPPED", // this version was rolled back before
  "VERSION_NOT_OFFERED", // an explicit --version that the manifest does not offer
] as const;
export type UpgradeErrorCode = (typeof UPGRADE_ERROR_CODES)[number];

export class UpgradeError extends ConnectorError {
  override readonly name = "UpgradeError";
  constructor(
    override readonly code: UpgradeErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, ExitCode.upgradeRefused, options);
  }
}

export function isUpgradeError(err: unknown): err is UpgradeError {
  return err instanceof UpgradeError;
}
