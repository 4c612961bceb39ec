/**
 * Enrollment: provisioning key → key pair generated here → CSR → `POST /v1/enroll` over TLS
 * pinned to the key's CA → identity stored atomically. The order is chosen so that nothing is spent
 * or written before it can succeed: the key is decoded and an existing identity refused before any
 * network request (a refused enroll does not use up a key use), and the identity is written only
 * after the control plane's answer has been checked against our own key and the pinned CA.
 * Used by `connector enroll` and, later, by `connector run` when it has a key but no identity.
 */
import { hostname } from "node:os";
import { fetchPinnedCa, ControlClient, type FetchFn } from "../control/client.ts";
import { describeProxy, proxyFor } from "../control/no-proxy.ts";
import { ignoredBypassWarning } from "../netaddr/proxy-bypass.ts";
import { ConnectorError, describeError, StateError, UsageError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { ensureStateDir, fsyncDir, probeWritable, tempSibling } from "../state/atomic-file.ts";
import { takeDaemonLock } from "../state/daemon-lock.ts";
import { buildInfo } from "../version.ts";
import { MAX_NAME_CHARS, STATE_DIR_PROBE_BYTES } from "./config.ts";
import { certificateNotAfter, IDENTITY_FORMAT_VERSION, type Identity } from "./identity.ts";
import { answeredCaCertificate, checkIssued } from "./issued.ts";
import { findProvisioningKey, STATE_KEY_FILE, type KeySourceKind } from "./key-source.ts";
import type { ProvisioningKey } from "./provisioning-key.ts";
import type { KeyPair } from "./keypair.ts";
import { readMachineId, MACHINE_ID_PATH } from "./machine-id.ts";
import { IdentityExistsError, IdentityStore } from "./store.ts";

export interface EnrollOptions {
  readonly stateDir: string;
  /** `--key`, `--key-file` and the environment, searched in that order, then `<state-dir>/provision_key`. */
  readonly key?: string | undefined;
  readonly keyFile?: string | undefined;
  readonly env: Record<string, string | undefined>;
  /** Connector name; default: the hostname cut to 63 characters. */
  readonly name?: string | undefined;
  /** Replace an existing identity. */
  readonly force: boolean;
  readonly proxy?: string | undefined;
  readonly noProxy?: readonly string[] | undefined;
  readonly log: Logger;
}

/** Seams for tests; production defaults otherwise. */
export interface EnrollDeps {
  readonly fetch?: FetchFn;
  readonly generateKeyPair?: () => Promise<KeyPair>;
  readonly machineIdPath?: string;
  readonly hostname?: () => string;
  readonly now?: () => Date;
  readonly timeoutMs?: number;
  /** Writes, fsyncs and removes a file of `bytes` bytes at `path` (the state-dir probe). */
  readonly probeWritable?: (path: string, bytes: number) => void;
}

export interface EnrollResult {
  readonly identity: Identity;
  readonly notAfter: Date;
  readonly keySource: KeySourceKind;
  /** Whether an existing identity was replaced (`--force`). */
  readonly replaced: boolean;
}

/** The name to enroll under: the given one, or the hostname cut to 63 characters. */
export function connectorName(given: string | undefined, host: () => string = hostname): string {
  const name = (given ?? host().slice(0, MAX_NAME_CHARS)).trim();
  if (name.length === 0) throw new UsageError("The connector name is empty; give one with --name.");
  if (name.length > MAX_NAME_CHARS)
    throw new UsageError(
      `The connector name is ${name.length} characters; at most ${MAX_NAME_CHARS} are allowed (--name).`,
    );
  return name;
}

/** Runs a state-dir operation, turning a file-system failure (EACCES, ENOSPC, EROFS…) into a StateError. */
export function stateDirOp<T>(stateDir: string, op: () => T): T {
  try {
    return op();
  } catch (err) {
    if (err instanceof ConnectorError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new StateError(
      "STATE_DIR_UNWRITABLE",
      `Cannot write the identity into the state dir ${stateDir} (${code}). Run as root or the connector's user, or choose another --state-dir.`,
      { cause: err },
    );
  }
}

/** Decodes the key and checks the state dir: everything that can fail before the network is used. */
function prepare(options: EnrollOptions, deps: EnrollDeps) {
  const found = findProvisioningKey({
    key: options.key,
    keyFile: options.keyFile,
    env: options.env,
    stateDir: options.stateDir,
  });
  const name = connectorName(options.name, deps.hostname);
  const store = new IdentityStore(options.stateDir);
  // Fail on an unwritable state dir now, before a key use is spent: a real write, since a read-only or
  // full file system passes every check that only looks. The probe is named like the store's temp
  // directories, so one left by a crash is cleaned up by recover().
  stateDirOp(options.stateDir, () => {
    ensureStateDir(options.stateDir);
    store.recover();
    (deps.probeWritable ?? probeWritable)(tempSibling(store.dir), STATE_DIR_PROBE_BYTES);
  });
  const replaced = store.exists();
  if (replaced && !options.force) throw new IdentityExistsError(store.dir);
  return { found, name, store, replaced };
}

/** The network part: pinned CA, key pair, CSR, `POST /v1/enroll`, checks of the answer. */
async function requestIdentity(
  options: EnrollOptions,
  deps: EnrollDeps,
  key: ProvisioningKey,
  name: string,
): Promise<Identity> {
  const { log } = options;
  const bypass = ignoredBypassWarning(options.noProxy ?? []);
  if (bypass) log.warn(bypass.message, { ignored: bypass.ignored });
  const proxy = proxyFor(new URL(key.controlUrl), options.proxy, options.noProxy ?? []);
  log.debug("control-plane route", { via: proxy === undefined ? "direct" : describeProxy(proxy) });
  const started = performance.now();
  const network = {
    controlUrl: key.controlUrl,
    proxy: options.proxy,
    noProxy: options.noProxy,
    timeoutMs: deps.timeoutMs,
    fetch: deps.fetch,
  };
  // Loaded here, not at start-up: node-forge (the CSR) alone is 12 MiB of RSS that `connector run`
  // would otherwise hold for its whole life although it enrolls at most once.
  const { buildCsr, generateKeyPair } = await import("./keypair.ts");
  // Key generation (CPU, off the main thread) overlaps the CA round trip.
  const [keys, caCertificate] = await Promise.all([
    (deps.generateKeyPair ?? generateKeyPair)(),
    fetchPinnedCa({ ...network, caPin: key.caPin }),
  ]);
  log.debug("CA pin verified; key pair generated", {
    caPin: key.caPin,
    elapsedMs: Math.round(performance.now() - started),
  });
  const machineId = readMachineId(deps.machineIdPath ?? MACHINE_ID_PATH);
  const response = await new ControlClient({ ...network, caCertificate }).enroll({
    secret: key.secret.reveal(),
    csr: buildCsr(keys, name),
    name,
    ...(machineId === undefined ? {} : { machineId }),
    version: buildInfo.version,
  });
  log.debug("certificate issued", {
    connectorId: response.connectorId,
    elapsedMs: Math.round(performance.now() - started),
  });
  const responseCa = answeredCaCertificate("enrollment response", response.caCertificate, key.caPin);
  checkIssued("enrollment response", response.certificate, response.chain, responseCa, keys.publicKeyPem);
  return {
    formatVersion: IDENTITY_FORMAT_VERSION,
    connectorId: response.connectorId,
    name: response.name,
    group: response.group,
    controlUrl: key.controlUrl,
    caPin: key.caPin,
    caCertificate: responseCa,
    certificate: response.certificate,
    chain: response.chain,
    gateways: response.gateways,
    enrolledAt: (deps.now ?? (() => new Date()))().toISOString(),
    ...(machineId === undefined ? {} : { machineId }),
    privateKeyPem: keys.privateKeyPem,
  };
}

/**
 * The key in `<state-dir>/provision_key` has done its job once the identity is durable: left there it
 * would be one more copy of a secret (often 0644) that can enroll other connectors until its uses run
 * out. A failure to remove it is logged, not fatal: the enrollment itself succeeded.
 */
function removeUsedKeyFile(path: string, options: EnrollOptions): void {
  try {
    rmSync(path, { force: true });
    fsyncDir(options.stateDir);
    options.log.info("provisioning key file removed after enrollment", { path });
  } catch (err) {
    options.log.warn("could not remove the provisioning key file after enrollment; delete it by hand", {
      path,
      error: describeError(err),
    });
  }
}

export async function enroll(options: EnrollOptions, deps: EnrollDeps = {}): Promise<EnrollResult> {
  const { found, name, store, replaced } = prepare(options, deps);
  options.log.info("enrolling", { controlUrl: found.key.controlUrl, keySource: found.origin, name, replace: replaced });
  const identity = await requestIdentity(options, deps, found.key, name);
  stateDirOp(options.stateDir, () => store.save(identity, { replace: options.force }));
  if (found.source === "state-file") removeUsedKeyFile(join(options.stateDir, STATE_KEY_FILE), options);
  const notAfter = certificateNotAfter(identity);
  options.log.info("enrolled", {
    dir: store.dir,
    connectorId: identity.connectorId,
    name: identity.name,
    group: identity.group,
    keySource: found.origin,
    gateways: identity.gateways.length,
    notAfter: notAfter.toISOString(),
  });
  return { identity, notAfter, keySource: found.source, replaced };
}

/**
 * `connector enroll`: `enroll` under the daemon's lock (src/state/daemon-lock.ts), taken without
 * waiting for a holder, so `enroll --force` beside a running daemon exits ALREADY_RUNNING (23) instead
 * of spending a key use and racing the daemon's own writes. The daemon enrolls through `enroll` itself,
 * under the lock it already holds.
 */
export async function enrollExclusively(options: EnrollOptions, deps: EnrollDeps = {}): Promise<EnrollResult> {
  stateDirOp(options.stateDir, () => ensureStateDir(options.stateDir));
  const lock = await takeDaemonLock(options.stateDir);
  try {
    return await enroll(options, deps);
  } finally {
    lock.release();
  }
}
