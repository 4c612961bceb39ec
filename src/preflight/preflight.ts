/**
 * `connector preflight`: every host check, then the network checks against the control plane and
 * the identity's gateways, as one validated report. Writes nothing but the state dir's probe file
 * (removed again) and needs no root; the provisioning key only tells it where the cloud is.
 */
import type { Clock } from "../clock.ts";
import type { FetchFn } from "../control/client.ts";
import { hostChecks } from "./host-checks.ts";
import { readHostFacts, type HostFactsOptions } from "./host-facts.ts";
import type { NetSeams, NetTimeouts } from "./net-probe.ts";
import { networkChecks } from "./network-checks.ts";
import { buildReport, type PreflightReport } from "./report.ts";
import { chooseTargets } from "./targets.ts";

export interface PreflightOptions {
  readonly stateDir: string;
  readonly key?: string | undefined;
  readonly keyFile?: string | undefined;
  /** The process environment (a copy: the key variable is scrubbed from the real one). */
  readonly env: Record<string, string | undefined>;
  readonly proxy?: string | undefined;
  readonly noProxy: readonly string[];
  /** The connector name from the settings, if any. */
  readonly name?: string | undefined;
  /** Where host files are read and which facts are given (tests). */
  readonly host?: Omit<HostFactsOptions, "stateDir" | "configuredName">;
  readonly net?: {
    readonly seams?: NetSeams;
    readonly clock?: Pick<Clock, "wallNow">;
    readonly timeouts?: NetTimeouts;
    readonly fetch?: FetchFn;
  };
}

/** Runs every check. Throws (exit 2) only for a malformed key or a --key / --key-file that cannot be used. */
export async function runPreflight(options: PreflightOptions): Promise<PreflightReport> {
  // First: a bad key is a usage error, reported before anything is probed.
  const choice = chooseTargets({
    key: options.key,
    keyFile: options.keyFile,
    env: options.env,
    stateDir: options.stateDir,
  });
  const host = hostChecks(readHostFacts({ ...options.host, stateDir: options.stateDir, configuredName: options.name }));
  const net = choice.targets
    ? await networkChecks({ targets: choice.targets, proxy: options.proxy, noProxy: options.noProxy, ...options.net })
    : [];
  return buildReport([...host, choice.check, ...net]);
}
