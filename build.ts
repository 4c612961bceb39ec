/**
 * Release build (§9): compiles src/main.ts into one self-contained executable per target, with the
 * version, git commit, build date and target embedded (`connector --version` prints them).
 *
 *   bun run build              every target  -> dist/connector-<target>
 *   bun run build -- --host    this machine  -> dist/connector
 *
 * Reproducible dates: SOURCE_DATE_EPOCH, when set, replaces the current time.
 *
 * Nothing where the binary runs may change what it runs: no `.env`, `bunfig.toml`, `tsconfig.json`
 * or `package.json` is read from the working directory (an operator's `sudo connector status` in a
 * directory someone else controls must not load their preload script or settings), and the
 * runtime's own environment overrides are patched out of the executable (scripts/neutralize-runtime-env.ts).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { neutralizeRuntimeEnv } from "./scripts/neutralize-runtime-env.ts";

export const TARGETS = ["linux-x64", "linux-x64-baseline", "linux-arm64", "linux-x64-musl", "linux-arm64-musl"] as const;
type Target = (typeof TARGETS)[number];

const root = import.meta.dir;
const dist = join(root, "dist");

/** HEAD's short hash, with "-dirty" when what goes into the binary differs from it (so a benchmark of
 * uncommitted code is never labelled as a commit). */
function gitCommit(): string {
  const result = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: root, stderr: "ignore" });
  if (result.exitCode !== 0) return "unknown";
  const clean = Bun.spawnSync(["git", "diff", "--quiet", "HEAD", "--", "src", "build.ts", "package.json", "package-lock.json"], { cwd: root, stderr: "ignore" });
  return `${result.stdout.toString().trim()}${clean.exitCode === 1 ? "-dirty" : ""}`;
}

function buildDate(): string {
  const epoch = process.env.SOURCE_DATE_EPOCH;
  return (epoch ? new Date(Number(epoch) * 1000) : new Date()).toISOString().replace(/\.\d{3}Z$/, "Z");
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
  if (process.platform !== "linux") throw new Error(`unsupported build host platform ${process.platform}: targets are Linux only`);
  const libc = isMusl() ? "-musl" : "";
  if (process.arch === "arm64") return `linux-arm64${libc}` as Target;
  if (process.arch !== "x64") throw new Error(`unsupported build host architecture ${process.arch}`);
  if (libc) return "linux-x64-musl";
  return hasAvx2() ? "linux-x64" : "linux-x64-baseline";
}

async function compile(target: Target, outfile: string, info: { version: string; commit: string; date: string }) {
  const compiled = `${outfile}.unpatched`;
  rmSync(outfile, { force: true }); // never leave an older binary behind that looks like this build
  const define = {
    BUILD_VERSION: info.version,
    BUILD_COMMIT: info.commit,
    BUILD_DATE: info.date,
    BUILD_TARGET: target,
  };
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
    ...Object.entries(define).map(([key, value]) => `--define=${key}=${JSON.stringify(value)}`),
    join(root, "src/main.ts"),
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

async function main(argv: string[]) {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  const info = { version: pkg.version, commit: gitCommit(), date: buildDate() };
  mkdirSync(dist, { recursive: true });
  if (argv.includes("--host")) {
    await compile(hostTarget(), join(dist, "connector"), info);
    return;
  }
  for (const target of TARGETS) await compile(target, join(dist, `connector-${target}`), info);
}

if (import.meta.main) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
