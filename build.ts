/**
 * Release build: compiles src/main.ts into one self-contained executable per target, with the
 * version, git commit, build date and target embedded (`connector --version` prints them), and the
 * release trust: the root public keys every upgrade must chain to, and where releases come from.
 *
 *   bun run build              every target  -> dist/connector-<target>
 *   bun run build -- --host    this machine  -> dist/connector
 *
 * Options:
 *   --targets host|all          what to build (`--host` is `--targets host`); default all
 *   --out FILE                  output file of a host build (default dist/connector)
 *   --version V                 instead of package.json's version (MAJOR.MINOR.PATCH[-pre])
 *   --trust-roots DIR           every DIR/*.pub (Ed25519 SPKI PEM) is a trusted root; default keys/roots.
 *                               Fewer than ROOT_THRESHOLD roots fails the build.
 *   --release-base-url URL      http(s) base of the release host (<URL>/<channel>/manifest.json)
 *
 * The roots and base URL are compiled in (src/upgrade/trust-roots.ts): nothing at runtime changes them.
 * Reproducible dates: SOURCE_DATE_EPOCH, when set, replaces the current time.
 *
 * Nothing where the binary runs may change what it runs: no `.env`, `bunfig.toml`, `tsconfig.json`
 * or `package.json` is read from the working directory (an operator's `sudo connector status` in a
 * directory someone else controls must not load their preload script or settings), and the
 * runtime's own environment overrides are patched out of the executable (scripts/neutralize-runtime-env.ts).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { neutralizeRuntimeEnv } from "./scripts/neutralize-runtime-env.ts";
import {
  ed25519PublicKey,
  ROOT_THRESHOLD,
  spkiBase64OfPem,
  type Target,
  TARGETS,
  VERSION_PATTERN,
} from "./src/upgrade/format.ts";

export { TARGETS };
export type { Target };

const root = import.meta.dir;
const dist = join(root, "dist");
export const DEFAULT_TRUST_ROOTS_DIR = join(root, "keys", "roots");

/** A build refused because of what it was asked to embed or how it was called. */
export class BuildInputError extends Error {
  override readonly name = "BuildInputError";
}

/** HEAD's short hash, with "-dirty" when what goes into the binary differs from it (so a benchmark of
 * uncommitted code is never labelled as a commit). */
function gitCommit(): string {
  const result = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: root, stderr: "ignore" });
  if (result.exitCode !== 0) return "unknown";
  const clean = Bun.spawnSync(
    ["git", "diff", "--quiet", "HEAD", "--", "src", "build.ts", "keys", "package.json", "package-lock.json"],
    { cwd: root, stderr: "ignore" },
  );
  return `${result.stdout.toString().trim()}${clean.exitCode === 1 ? "-dirty" : ""}`;
}

/** The build's "now": SOURCE_DATE_EPOCH when set (reproducible builds and releases), else the clock. */
export function buildTime(): Date {
  const epoch = process.env.SOURCE_DATE_EPOCH;
  if (epoch === undefined || epoch === "") return new Date();
  if (!/^\d{1,12}$/.test(epoch))
    throw new BuildInputError(`SOURCE_DATE_EPOCH must be whole seconds since 1970, got ${JSON.stringify(epoch)}`);
  return new Date(Number(epoch) * 1000);
}

export function isoSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}
function isMusl(): boolean {
  return ["/lib/ld-musl-x86_64.so.1", "/lib/ld-musl-aarch64.so.1"].some((p) => existsSync(p));
}

function hasAvx2(): boolean {
  try {
    return /\bavx2\b/.test(readFileSync("/proc/cpuinfo", "utf8"));
  } catch {
    return false;
  }
}

export function hostTarget(): Target {
  if (process.platform !== "linux")
    throw new Error(`unsupported build host platform ${process.platform}: targets are Linux only`);
  const libc = isMusl() ? "-musl" : "";
  if (process.arch === "arm64") return `linux-arm64${libc}` as Target;
  if (process.arch !== "x64") throw new Error(`unsupported build host architecture ${process.arch}`);
  if (libc) return "linux-x64-musl";
  return hasAvx2() ? "linux-x64" : "linux-x64-baseline";
}

/** Base64 SPKI DER of one Ed25519 PEM public key; fails naming the file. */
function rootOfFile(path: string): string {
  let pem: string;
  try {
    pem = readFileSync(path, "utf8");
  } catch (err) {
    throw new BuildInputError(`trust root ${path} is unreadable: ${(err as Error).message}`);
  }
  let spki: string;
  try {
    spki = spkiBase64OfPem(pem);
  } catch {
    throw new BuildInputError(`trust root ${path} is not a PEM public key`);
  }
  if (!ed25519PublicKey(spki)) throw new BuildInputError(`trust root ${path} is not an Ed25519 public key`);
  return spki;
}

/**
 * The trusted roots to embed: every DIR/*.pub as base64 SPKI DER, sorted (the binary does not depend on
 * directory order), duplicates counted once. Fewer than ROOT_THRESHOLD distinct roots fails, because
 * such a binary could never accept a release.
 */
export function loadTrustRoots(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.endsWith(".pub"));
  } catch (err) {
    throw new BuildInputError(`trust roots directory ${dir} is unreadable: ${(err as Error).message}`);
  }
  return checkTrustRoots(
    names.map((name) => rootOfFile(join(dir, name))),
    dir,
  );
}

/** Sorted, distinct, each a valid Ed25519 SPKI, at least ROOT_THRESHOLD of them. */
export function checkTrustRoots(roots: readonly string[], source: string): string[] {
  for (const spki of roots)
    if (!ed25519PublicKey(spki))
      throw new BuildInputError(`trust root ${spki} from ${source} is not an Ed25519 public key`);
  const distinct = [...new Set(roots)].sort();
  if (distinct.length < ROOT_THRESHOLD) {
    throw new BuildInputError(
      `${source} holds ${distinct.length} distinct trust root(s); a build needs at least ${ROOT_THRESHOLD} (bun run keygen -- --out DIR --name root-N)`,
    );
  }
  return distinct;
}

export function checkVersion(version: string): string {
  if (version.length > 64 || !VERSION_PATTERN.test(version))
    throw new BuildInputError(
      `invalid version ${JSON.stringify(version)}: expected MAJOR.MINOR.PATCH[-pre-release], e.g. 1.4.2 or 1.5.0-rc.1`,
    );
  return version;
}

/** An http(s) base URL without credentials, query or fragment; returned without a trailing slash. */
export function checkReleaseBaseUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new BuildInputError(`invalid release base URL ${JSON.stringify(text)}`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw new BuildInputError(`release base URL must be http(s), got ${url.protocol}`);
  if (url.username || url.password || url.search || url.hash)
    throw new BuildInputError("release base URL must not carry credentials, a query or a fragment");
  // It is also baked into install.sh inside single quotes: nothing a shell would treat specially.
  if (/['"\\`$\s]/.test(url.href))
    throw new BuildInputError(`release base URL ${JSON.stringify(url.href)} holds a quote, backslash, "$" or backtick`);
  return url.href.replace(/\/+$/, "");
}

export interface BuildOptions {
  readonly target: Target;
  readonly outfile: string;
  /** Default: package.json's version. */
  readonly version?: string;
  /** Base64 SPKI DER roots to embed (the release tool derives them from the root keys) … */
  readonly trustRoots?: readonly string[];
  /** … or a directory of *.pub files; default keys/roots. */
  readonly trustRootsDir?: string;
  readonly releaseBaseUrl?: string;
  /** The program to compile; default src/main.ts (tests compile a probe through the same pipeline). */
  readonly entry?: string;
}

/** Compiles one target to `outfile` (created 0755, replaced only when the build succeeded). */
export async function buildBinary(options: BuildOptions): Promise<void> {
  const dir = options.trustRootsDir ?? DEFAULT_TRUST_ROOTS_DIR;
  const roots = options.trustRoots ? checkTrustRoots(options.trustRoots, "the given roots") : loadTrustRoots(dir);
  const version = checkVersion(options.version ?? packageVersion());
  const define: Record<string, string> = {
    BUILD_VERSION: JSON.stringify(version),
    BUILD_COMMIT: JSON.stringify(gitCommit()),
    BUILD_DATE: JSON.stringify(isoSeconds(buildTime())),
    BUILD_TARGET: JSON.stringify(options.target),
    // An array literal, not a string: src/upgrade/trust-roots.ts reads it as an array.
    BUILD_TRUST_ROOTS: JSON.stringify(roots),
  };
  if (options.releaseBaseUrl !== undefined)
    define.BUILD_RELEASE_BASE_URL = JSON.stringify(checkReleaseBaseUrl(options.releaseBaseUrl));
  await compile(options.target, resolve(options.outfile), define, options.entry ?? join(root, "src/main.ts"));
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;
}

async function compile(target: Target, outfile: string, define: Record<string, string>, entry: string) {
  mkdirSync(dirname(outfile), { recursive: true });
  const compiled = `${outfile}.unpatched`;
  rmSync(outfile, { force: true }); // never leave an older binary behind that looks like this build
  const args = [
    process.execPath,
    "build",
    "--compile",
    `--target=bun-${target}`,
    "--minify-syntax",
    "--minify-whitespace",
    "--sourcemap=none",
    "--no-compile-autoload-dotenv",
    "--no-compile-autoload-bunfig",
    "--no-compile-autoload-tsconfig",
    "--no-compile-autoload-package-json",
    ...Object.entries(define).map(([key, value]) => `--define=${key}=${value}`),
    entry,
    "--outfile",
    compiled,
  ];
  const proc = Bun.spawn(args, { cwd: root, stdout: "pipe", stderr: "pipe" });
  const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  if (code !== 0) throw new Error(`build for ${target} failed (exit ${code}):\n${stderr}`);
  // Patched beside the output and renamed over it: a failed patch never leaves an unpatched `outfile`.
  const binary = readFileSync(compiled);
  try {
    neutralizeRuntimeEnv(binary);
  } catch (err) {
    rmSync(compiled, { force: true });
    throw err;
  }
  writeFileSync(compiled, binary, { mode: 0o755 });
  renameSync(compiled, outfile);
  const mib = (statSync(outfile).size / (1024 * 1024)).toFixed(1);
  console.log(`built ${outfile} (${target}, ${mib} MiB)`);
}

function parseBuildArgs(argv: string[]) {
  let values: {
    host?: boolean;
    targets?: string;
    out?: string;
    version?: string;
    "trust-roots"?: string;
    "release-base-url"?: string;
  };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        host: { type: "boolean" },
        targets: { type: "string" },
        out: { type: "string" },
        version: { type: "string" },
        "trust-roots": { type: "string" },
        "release-base-url": { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new BuildInputError((err as Error).message);
  }
  const targets = values.targets ?? (values.host ? "host" : "all");
  if (targets !== "host" && targets !== "all")
    throw new BuildInputError(`--targets must be host or all, got ${JSON.stringify(targets)}`);
  if (values.host && targets !== "host") throw new BuildInputError("--host and --targets all contradict each other");
  if (values.out !== undefined && targets !== "host")
    throw new BuildInputError("--out names one file: use it with --host (or --targets host)");
  return { ...values, targets };
}

async function main(argv: string[]) {
  const args = parseBuildArgs(argv);
  // Checked once up front so a bad input fails before any target is compiled.
  const trustRoots = loadTrustRoots(args["trust-roots"] ?? DEFAULT_TRUST_ROOTS_DIR);
  const common = {
    trustRoots,
    version: checkVersion(args.version ?? packageVersion()),
    ...(args["release-base-url"] === undefined
      ? {}
      : { releaseBaseUrl: checkReleaseBaseUrl(args["release-base-url"]) }),
  };
  if (args.targets === "host") {
    await buildBinary({ ...common, target: hostTarget(), outfile: args.out ?? join(dist, "connector") });
    return;
  }
  for (const target of TARGETS) await buildBinary({ ...common, target, outfile: join(dist, `connector-${target}`) });
}

if (import.meta.main) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(err instanceof BuildInputError ? 2 : 1);
  });
}
