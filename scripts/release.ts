/**
 * Makes one signed release directory (format in src/upgrade/format.ts):
 *
 *   bun run release -- --keys DIR --version V --channel C --sequence N --out OUT [--base-url URL]
 *                      [--targets host|all] [--expires-in SECONDS] [--rollout PERCENT] [--keyset-expires-in SECONDS]
 *
 * DIR holds the root keys (root-*.key, at least ROOT_THRESHOLD) and exactly one release.key. Every
 * binary is built with version V, the roots' public keys and the base URL compiled in; then OUT gets
 * the binaries, manifest.json (+ .sig by the release key), release-keys.json (+ one .sig per root)
 * and install.sh with the roots baked in. OUT must be new or empty: a release is never patched.
 *
 * "Now" (released, issued) is SOURCE_DATE_EPOCH when set, like build.ts.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import * as v from "valibot";
import { BuildInputError, buildBinary, buildTime, checkReleaseBaseUrl, checkVersion, hostTarget } from "../build.ts";
import {
  binaryFile,
  Channel,
  KEYSET_FILE,
  keysetSignatureFile,
  MANIFEST_FILE,
  MANIFEST_SIGNATURE_FILE,
  type Target,
  TARGETS,
} from "../src/upgrade/format.ts";
import { ToolUsageError } from "./keygen.ts";
import {
  bakeInstaller,
  keysetText,
  loadReleaseKeys,
  manifestText,
  type SigningKey,
  signBytes,
} from "./release-files.ts";

const root = resolve(import.meta.dir, "..");
const DAY = 24 * 60 * 60;

export interface ReleaseOptions {
  readonly keys: string;
  readonly version: string;
  readonly channel: string;
  readonly sequence: number;
  readonly out: string;
  readonly baseUrl?: string;
  readonly targets: "host" | "all";
  readonly expiresIn: number;
  readonly rollout?: number;
  readonly keysetExpiresIn: number;
}

function integer(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,16}$/.test(text) || Number(text) < min || Number(text) > max)
    throw new ToolUsageError(`--${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return Number(text);
}

export function parseReleaseArgs(argv: string[]): ReleaseOptions {
  const str = { type: "string" } as const;
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        keys: str,
        version: str,
        channel: str,
        sequence: str,
        out: str,
        "base-url": str,
        targets: str,
        "expires-in": str,
        rollout: str,
        "keyset-expires-in": str,
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ToolUsageError((err as Error).message);
  }
  for (const name of ["keys", "version", "channel", "sequence", "out"])
    if (!values[name]) throw new ToolUsageError(`--${name} is required`);
  const targets = values.targets ?? "all";
  if (targets !== "host" && targets !== "all")
    throw new ToolUsageError(`--targets must be host or all, got ${JSON.stringify(targets)}`);
  if (!v.is(Channel, values.channel))
    throw new ToolUsageError(
      `invalid channel ${JSON.stringify(values.channel)}: lowercase letters, digits and "-", at most 32`,
    );
  const rollout = integer("rollout", values.rollout, 0, 100);
  const baseUrl = values["base-url"] === undefined ? undefined : checkReleaseBaseUrl(values["base-url"]);
  return {
    keys: values.keys!,
    version: checkVersion(values.version!),
    channel: values.channel,
    sequence: integer("sequence", values.sequence, 1, Number.MAX_SAFE_INTEGER)!,
    out: values.out!,
    ...(baseUrl === undefined ? {} : { baseUrl }),
    targets,
    expiresIn: integer("expires-in", values["expires-in"], 1, 10 * 365 * DAY) ?? 30 * DAY,
    ...(rollout === undefined ? {} : { rollout }),
    keysetExpiresIn: integer("keyset-expires-in", values["keyset-expires-in"], 1, 10 * 365 * DAY) ?? 365 * DAY,
  };
}

/** OUT must not exist or be an empty directory: files of an older release must never mix in. */
function checkOut(out: string): void {
  let entries: string[] | undefined;
  try {
    entries = readdirSync(out);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOTDIR") throw new ToolUsageError(`--out ${out} is not a directory`);
    if (code !== "ENOENT") throw err;
  }
  if (entries && entries.length > 0)
    throw new ToolUsageError(`--out ${out} is not empty: a release goes into a new directory`);
}

/**
 * A binary that does not carry its roots could never verify the next release: the fleet would be
 * stranded on it. So a release is refused unless every root and the base URL are in the bytes.
 */
function checkEmbedded(path: string, file: string, rootSpkis: readonly string[], baseUrl: string | undefined): void {
  const bytes = readFileSync(path);
  for (const spki of rootSpkis)
    if (!bytes.includes(spki))
      throw new Error(`${file} does not embed root ${spki}: does src/ still import src/upgrade/trust-roots.ts?`);
  if (baseUrl !== undefined && !bytes.includes(baseUrl))
    throw new Error(`${file} does not embed the release base URL ${baseUrl}`);
}

export interface ReleaseResult {
  readonly out: string;
  readonly files: string[];
  readonly manifestKeyId: string;
  readonly rootIds: string[];
}

/**
 * Written into a hidden sibling of OUT and renamed over it when complete (rename(2) replaces an empty
 * directory): a release host that serves the newest directory never serves a half-written release,
 * and a failed release leaves nothing behind.
 */
export async function makeRelease(options: ReleaseOptions): Promise<ReleaseResult> {
  const { roots, release } = loadReleaseKeys(options.keys);
  const out = resolve(options.out);
  checkOut(out);
  mkdirSync(dirname(out), { recursive: true });
  const staging = join(dirname(out), `.${basename(out)}.partial-${randomBytes(6).toString("hex")}`);
  mkdirSync(staging, { mode: 0o755 });
  try {
    const result = await writeRelease(options, staging, roots, release);
    chmodSync(staging, 0o755);
    renameSync(staging, out);
    return { ...result, out };
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}

async function writeRelease(
  options: ReleaseOptions,
  out: string,
  roots: SigningKey[],
  release: SigningKey,
): Promise<ReleaseResult> {
  const now = buildTime();
  const rootSpkis = roots.map((r) => r.spki);
  const targets: readonly Target[] = options.targets === "host" ? [hostTarget()] : TARGETS;
  const binaries: Array<{ target: Target; file: string; bytes: Uint8Array }> = [];
  for (const target of targets) {
    const file = binaryFile(target);
    const path = join(out, file);
    await buildBinary({
      target,
      outfile: path,
      version: options.version,
      trustRoots: rootSpkis,
      ...(options.baseUrl === undefined ? {} : { releaseBaseUrl: options.baseUrl }),
    });
    chmodSync(path, 0o755);
    checkEmbedded(path, file, rootSpkis, options.baseUrl);
    binaries.push({ target, file, bytes: readFileSync(path) });
  }
  const { text: manifest } = manifestText({
    version: options.version,
    channel: options.channel,
    sequence: options.sequence,
    now,
    expiresInSeconds: options.expiresIn,
    ...(options.rollout === undefined ? {} : { rollout: options.rollout }),
    keyId: release.id,
    binaries,
  });
  const { text: keyset } = keysetText(release, now, options.keysetExpiresIn);
  const written: Array<[string, string | Uint8Array]> = [
    [MANIFEST_FILE, manifest],
    [MANIFEST_SIGNATURE_FILE, signBytes(release, Buffer.from(manifest))],
    [KEYSET_FILE, keyset],
    ...roots.map((r): [string, Uint8Array] => [keysetSignatureFile(r.id), signBytes(r, Buffer.from(keyset))]),
    [
      "install.sh",
      bakeInstaller(readFileSync(join(root, "install.sh"), "utf8"), {
        rootSpkis,
        channel: options.channel,
        ...(options.baseUrl === undefined ? {} : { baseUrl: options.baseUrl }),
      }),
    ],
  ];
  for (const [name, data] of written)
    writeFileSync(join(out, name), data, { mode: name === "install.sh" ? 0o755 : 0o644 });
  return {
    out,
    files: [...binaries.map((b) => b.file), ...written.map(([name]) => name)],
    manifestKeyId: release.id,
    rootIds: roots.map((r) => r.id),
  };
}

const USAGE =
  "usage: bun run release -- --keys DIR --version V --channel C --sequence N --out OUT [--base-url URL]\n" +
  "         [--targets host|all] [--expires-in SECONDS] [--rollout PERCENT] [--keyset-expires-in SECONDS]";

export async function main(argv: string[]): Promise<number> {
  try {
    const options = parseReleaseArgs(argv);
    const result = await makeRelease(options);
    console.log(`release ${options.version} (${options.channel}, sequence ${options.sequence}) in ${result.out}`);
    console.log(
      `  manifest signed by release key ${result.manifestKeyId}; key set signed by roots ${result.rootIds.join(", ")}`,
    );
    for (const file of result.files) console.log(`  ${file}`);
    return 0;
  } catch (err) {
    if (err instanceof ToolUsageError || err instanceof BuildInputError) {
      console.error(`release: ${err.message}\n${USAGE}`);
      return 2;
    }
    console.error(`release: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
