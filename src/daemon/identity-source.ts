/**
 * How `connector run` gets its identity: the stored one; else, when a provisioning key is
 * available (flag-less sources: env, key file in the state dir), it enrolls by itself — boot-time
 * user-data and containers rely on this; else it waits, logging, and looks again. Enrollment
 * failures are retried with backoff; a rejected key (expired, revoked, used up, malformed) and a
 * state dir that cannot be written are retried only slowly, since they need an operator (and each
 * attempt that reached the control plane would spend a key use).
 */
import { sleep, type Clock } from "../clock.ts";
import { ConnectorError, describeError, ExitCode, StateError } from "../errors.ts";
import { enroll, type EnrollDeps } from "../identity/enroll.ts";
import type { Identity } from "../identity/identity.ts";
import { NoProvisioningKeyError } from "../identity/key-source.ts";
import { readMachineId } from "../identity/machine-id.ts";
import { IdentityStore } from "../identity/store.ts";
import type { Logger } from "../log.ts";
import { Backoff } from "../retry/backoff.ts";

/** How often to look for a key when there is none (an operator may drop one in at any time). */
const KEY_POLL_MS = 30_000;
/** A key the control plane rejected needs a human; do not hammer the control plane meanwhile. */
const REJECTED_KEY_RETRY_MS = 5 * 60_000;
/** A read-only, full or foreign-owned state dir needs a human too. */
export const STATE_DIR_RETRY_MS = 5 * 60_000;

const OPERATOR_NEEDED: ReadonlySet<number> = new Set([
  ExitCode.keyMalformed,
  ExitCode.keyExpired,
  ExitCode.keyRevoked,
  ExitCode.keyExhausted,
  ExitCode.keyUnknown,
  ExitCode.caPinMismatch,
  ExitCode.enrollRejected,
]);

export interface IdentitySourceOptions {
  stateDir: string;
  env: Record<string, string | undefined>;
  name?: string | undefined;
  proxy?: string | undefined;
  noProxy: readonly string[];
  log: Logger;
  clock: Clock;
  signal: AbortSignal;
  machineIdPath?: string;
  /** Seams for tests (file system probe, network). */
  enrollDeps?: EnrollDeps;
}

/** Resolves with the identity, or undefined when `signal` aborted first. */
export async function obtainIdentity(options: IdentitySourceOptions): Promise<Identity | undefined> {
  const { log } = options;
  const store = new IdentityStore(options.stateDir);
  const backoff = new Backoff();
  for (;;) {
    if (options.signal.aborted) return undefined;
    const stored = store.exists() ? store.load() : undefined;
    if (stored) {
      const machineId = readMachineId(options.machineIdPath);
      if (stored.machineId && machineId && stored.machineId !== machineId) {
        log.info("this identity was enrolled on another machine (machine id changed); the state dir was moved", {
          connectorId: stored.connectorId,
        });
      }
      return stored;
    }
    let waitMs: number;
    try {
      // enroll() logs "enrolled" itself.
      const result = await enroll(
        {
          stateDir: options.stateDir,
          env: options.env,
          name: options.name,
          force: false,
          proxy: options.proxy,
          noProxy: options.noProxy,
          log,
        },
        options.enrollDeps,
      );
      return result.identity;
    } catch (err) {
      if (err instanceof NoProvisioningKeyError) {
        log.warn("not enrolled and no provisioning key: waiting for one", {
          lookAgainInSeconds: KEY_POLL_MS / 1000,
          stateDir: options.stateDir,
        });
        waitMs = KEY_POLL_MS;
      } else if (err instanceof StateError) {
        // enroll() probes the state dir before any request, so this usually spent no key use; a fast
        // retry would spend one per attempt whenever the probe passes and the final write fails.
        log.error("not enrolled: the state dir cannot be written; enrollment waits until it is fixed", {
          code: err.code,
          error: err.message,
          retryInSeconds: STATE_DIR_RETRY_MS / 1000,
        });
        waitMs = STATE_DIR_RETRY_MS;
      } else if (err instanceof ConnectorError && OPERATOR_NEEDED.has(err.exitCode)) {
        log.error("enrollment refused; an operator must provide a valid key", {
          code: err.code,
          error: err.message,
          retryInSeconds: REJECTED_KEY_RETRY_MS / 1000,
        });
        waitMs = REJECTED_KEY_RETRY_MS;
      } else {
        waitMs = backoff.nextDelayMs();
        log.warn("enrollment failed; retrying", {
          code: err instanceof ConnectorError ? err.code : "UNEXPECTED",
          error: describeError(err),
          retryInMs: waitMs,
        });
      }
    }
    await sleep(options.clock, waitMs, options.signal);
  }
}
