/**
 * What the network checks aim at (net.target). The provisioning key is found as enroll finds it
 * (--key, --key-file, CONNECTOR_PROVISIONING_KEY, <state-dir>/provision_key) and only its control-plane
 * URL and CA pin are used: its secret is dropped here. The stored identity, when the state dir has one,
 * adds its gateways, its CA and its client certificate (gateways may ask for one during TLS).
 */
import { ConnectorError, describeError, ExitCode } from "../errors.ts";
import { findProvisioningKey, NoProvisioningKeyError, type FoundKey } from "../identity/key-source.ts";
import { ProvisioningKeyError } from "../identity/provisioning-key.ts";
import type { Identity } from "../identity/identity.ts";
import { IdentityStore } from "../identity/store.ts";
import type { NetTargets } from "./network-checks.ts";
import { fail, pass, warn, type CheckResult } from "./report.ts";

export interface TargetInput {
  readonly key?: string | undefined;
  readonly keyFile?: string | undefined;
  readonly env: Record<string, string | undefined>;
  readonly stateDir: string;
}

export interface TargetChoice {
  readonly check: CheckResult;
  /** Undefined when there is nothing to check (no key, no identity). */
  readonly targets?: NetTargets;
}

/** A key given on the command line or in the environment that cannot be used is a usage error (exit 2). */
function usage(err: ConnectorError): ConnectorError {
  return new ConnectorError(err.code, err.message, ExitCode.usage, { cause: err });
}

/** The key, undefined when none is anywhere; throws exit 2 for a malformed key or a --key-file that cannot be read. */
function findKey(input: TargetInput): FoundKey | undefined | { problem: string } {
  const explicit = (input.key ?? "") !== "" || (input.keyFile ?? "") !== "";
  try {
    // Root (install.sh, sudo) looks at the service user's dir: judge it for its owner, the daemon's user.
    return findProvisioningKey({ ...input, stateDirJudgedFor: process.geteuid?.() === 0 ? "owner" : "self" });
  } catch (err) {
    if (err instanceof ProvisioningKeyError) throw usage(err);
    if (err instanceof NoProvisioningKeyError) {
      if (explicit) throw usage(err);
      return undefined;
    }
    // An unsafe <state-dir>/provision_key: the daemon would refuse it too.
    return { problem: describeError(err) };
  }
}

function readIdentity(stateDir: string): Identity | undefined | { problem: string } {
  try {
    return new IdentityStore(stateDir).read();
  } catch (err) {
    return { problem: describeError(err) };
  }
}

const enrollFix =
  "give the provisioning key with --key-file FILE (or CONNECTOR_PROVISIONING_KEY), or run preflight with the --state-dir of an enrolled connector";

export function chooseTargets(input: TargetInput): TargetChoice {
  const key = findKey(input);
  const identity = readIdentity(input.stateDir);
  if (key !== undefined && "problem" in key)
    return {
      check: fail(
        "net.target",
        key.problem,
        `fix or remove ${input.stateDir}/provision_key, or give the key with --key-file FILE`,
      ),
    };
  const stored = identity !== undefined && !("problem" in identity) ? identity : undefined;
  const identityNote = identity !== undefined && "problem" in identity ? identity.problem : undefined;
  if (key === undefined && stored === undefined) {
    if (identityNote)
      return {
        check: warn(
          "net.target",
          `no provisioning key and the stored identity is unusable (${identityNote}): network checks skipped`,
          enrollFix,
        ),
      };
    return { check: warn("net.target", "no provisioning key or identity: network checks skipped", enrollFix) };
  }
  const controlUrl = key?.key.controlUrl ?? stored!.controlUrl;
  const caPin = key?.key.caPin ?? stored!.caPin;
  const from = key ? `the key from ${key.origin}` : `the identity in ${input.stateDir}`;
  // Gateways of an identity from another cloud than the key's would be judged against the wrong pin.
  const sameCloud = stored !== undefined && stored.caPin === caPin;
  const targets: NetTargets = {
    controlUrl,
    caPin,
    caPem: sameCloud ? stored.caCertificate : undefined,
    gateways: sameCloud ? stored.gateways.map((g) => g.url) : [],
    client: sameCloud
      ? { cert: [stored.certificate, ...stored.chain].join("\n"), key: stored.privateKeyPem }
      : undefined,
  };
  const summary = `control plane ${controlUrl} (${from})`;
  if (stored !== undefined && !sameCloud) {
    return {
      check: warn(
        "net.target",
        `${summary}; the identity in ${input.stateDir} is for another cloud: its gateways are not checked`,
        "re-enroll with this key (connector enroll --force --key-file FILE), or drop the key to check the enrolled cloud",
      ),
      targets,
    };
  }
  if (identityNote)
    return {
      check: warn(
        "net.target",
        `${summary}; the stored identity is unusable (${identityNote}): gateways not checked`,
        "run preflight as root or the connector's user; if the identity is damaged, re-enroll with connector enroll --force",
      ),
      targets,
    };
  if (!sameCloud)
    return {
      check: pass("net.target", `${summary}; not enrolled yet: gateways are checked once an identity exists`),
      targets,
    };
  return {
    check: pass(
      "net.target",
      `${summary}; ${targets.gateways.length} gateway(s) from the identity in ${input.stateDir}`,
    ),
    targets,
  };
}
