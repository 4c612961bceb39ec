/**
 * Staged rollout: a manifest's `rollout` percentage selects connectors by a hash of their id, so the
 * same connector stays in (or out of) a given percentage on every check, and raising the percentage
 * only adds connectors: those already selected stay selected.
 */
import { createHash } from "node:crypto";

/** The connector's bucket in [0, 100): the first 4 bytes of SHA-256("connector-rollout:" + id), scaled. */
export function rolloutBucket(connectorId: string): number {
  const digest = createHash("sha256").update(`connector-rollout:${connectorId}`).digest();
  return (digest.readUInt32BE(0) * 100) / 2 ** 32;
}

/** True when a release rolled out to `percent` % (all when undefined) includes this connector. */
export function inRollout(connectorId: string, percent: number | undefined): boolean {
  if (percent === undefined) return true;
  return rolloutBucket(connectorId) < percent;
}
