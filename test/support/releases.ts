/**
 * Signed releases for tests, made by the real tool (`bun run release`, host target only):
 *
 *   const keys = makeKeys(join(tmp, "keys"));                        // test/support/release-keys.ts
 *   const a = await buildRelease({ keys, version: "1.0.0", channel: "stable", sequence: 1, out: join(tmp, "rel", "a") });
 *   a.binary   // the connector built as 1.0.0 that trusts keys' roots; run it, or install it for an upgrade test
 *
 * A release directory is what the reference cloud serves (`--releases <parent of out>`). Each call
 * compiles a binary: a few seconds, more on a loaded machine, so give the test a generous timeout.
 */
import { join } from "node:path";
import {
  binaryFile,
  KEYSET_FILE,
  keysetSignatureFile,
  MANIFEST_FILE,
  MANIFEST_SIGNATURE_FILE,
} from "../../src/upgrade/format.ts";
import { hostTarget } from "../../build.ts";
import { loadReleaseKeys } from "../../scripts/release-files.ts";
import type { ReleaseKeys } from "./release-keys.ts";

const ROOT = join(import.meta.dir, "..", "..");

export interface ReleaseSpec {
  /** From makeKeys(), or a directory with root-*.key and release.key. */
  readonly keys: ReleaseKeys | string;
  readonly version: string;
  readonly channel: string;
  readonly sequence: number;
  /** A new (or empty) directory. */
  readonly out: string;
  /** Baked into the binary and install.sh. */
  readonly baseUrl?: string;
  /** Seconds from now until the manifest expires (default 30 days). */
  readonly expiresIn?: number;
  readonly keysetExpiresIn?: number;
  readonly rollout?: number;
  /** Seconds since 1970 used as "now" for `released`/`issued` and the build date. */
  readonly sourceDateEpoch?: number;
}

export interface BuiltRelease {
  readonly out: string;
  readonly target: string;
  /** out/connector-<host target>, 0755. */
  readonly binary: string;
  readonly manifest: string;
  readonly manifestSignature: string;
  readonly keyset: string;
  /** One per root, in the order of the keys' rootIds (root-*.key by file name). */
  readonly keysetSignatures: readonly string[];
  readonly installer: string;
  /** The tool's output, for a failing test's message. */
  readonly log: string;
}

const TIMEOUT_MS = 300_000;

/** Runs `bun run release -- … --targets host`; throws with the tool's output when it fails. */
export async function buildRelease(spec: ReleaseSpec): Promise<BuiltRelease> {
  const keysDir = typeof spec.keys === "string" ? spec.keys : spec.keys.dir;
  const args = [
    "--keys",
    keysDir,
    "--version",
    spec.version,
    "--channel",
    spec.channel,
    "--sequence",
    String(spec.sequence),
    "--out",
    spec.out,
    "--targets",
    "host",
  ];
  if (spec.baseUrl !== undefined) args.push("--base-url", spec.baseUrl);
  if (spec.expiresIn !== undefined) args.push("--expires-in", String(spec.expiresIn));
  if (spec.keysetExpiresIn !== undefined) args.push("--keyset-expires-in", String(spec.keysetExpiresIn));
  if (spec.rollout !== undefined) args.push("--rollout", String(spec.rollout));
  const env: Record<string, string | undefined> = {
    ...process.env,
    SOURCE_DATE_EPOCH: spec.sourceDateEpoch === undefined ? undefined : String(spec.sourceDateEpoch),
  };
  const proc = Bun.spawn([process.execPath, "run", "release", "--", ...args], {
    cwd: ROOT,
    env,
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), TIMEOUT_MS);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  const log = `${stdout}${stderr}`;
  if (code !== 0) throw new Error(`bun run release ${args.join(" ")} exited ${code}:\n${log}`);
  const target = hostTarget();
  const rootIds = typeof spec.keys === "string" ? loadReleaseKeys(spec.keys).roots.map((r) => r.id) : spec.keys.rootIds;
  return {
    out: spec.out,
    target,
    binary: join(spec.out, binaryFile(target)),
    manifest: join(spec.out, MANIFEST_FILE),
    manifestSignature: join(spec.out, MANIFEST_SIGNATURE_FILE),
    keyset: join(spec.out, KEYSET_FILE),
    keysetSignatures: rootIds.map((id) => join(spec.out, keysetSignatureFile(id))),
    installer: join(spec.out, "install.sh"),
    log,
  };
}
