/**
 * The README's install line run inside a booted container (test/support/nspawn.ts), as an operator
 * would type it, and the checks that the provisioning key went nowhere it should not:
 *
 *   const run = await runInstallLine(ct, baseUrl, ["--key", key], { secret: key });
 *   run.code, run.stdout, run.stderr   // what the operator saw
 *   run.argvOffenders                  // processes whose argv held the key while the installer ran
 *   await filesHolding(ct, key, marker, ["/etc", …])   // files inside the container that hold it
 *
 * The argv watch reads /proc from the host (every process of the container is a host process in the
 * container's pid namespace): no helper process inside that could itself show up or miss a short-lived
 * command while it starts.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import type { Container, ExecResult } from "./nspawn.ts";

/** Re-reads /proc this often while the installer runs: a `runuser … enroll` lives far longer. */
const ARGV_POLL_MS = 50;
/** Above the installer's own bounds (downloads, preflight, enrollment, up to 90 s for status). */
export const INSTALL_TIMEOUT_MS = 240_000;

export interface ArgvOffender {
  readonly pid: number;
  readonly argv: readonly string[];
}

/** stdout holds both of the installer's streams in order; stderr only what the wrapping shell says. */
export interface InstallRun extends ExecResult {
  /** The line as typed, the key replaced by `<provisioning key>` (for transcripts). */
  readonly shown: string;
  /** Processes of the container, other than the operator's own `bash -s -- …`, whose argv held the secret. */
  readonly argvOffenders: readonly ArgvOffender[];
  /** How many times /proc was read while the installer ran (a watch that never ran proves nothing). */
  readonly argvScans: number;
}

const quote = (word: string) => (/^[A-Za-z0-9_./:=@-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);

/** `curl -fsSL <base>/install.sh | bash -s -- ARGS`: the README's line (root needs no sudo). */
export const installLine = (baseUrl: string, args: readonly string[]) =>
  `curl -fsSL ${baseUrl}/install.sh | bash -s -- ${args.map(quote).join(" ")}`.trimEnd();

/** Shortest run of the key's secret looked for: 16 base64 characters are 96 bits of it. */
const WINDOW = 16;

/**
 * What to look for: the whole key, and runs of its secret (a cut, wrapped or partly masked copy still
 * gives it away). A `cnk1.` key is base64url of caPin[32] | secret[32] | url | check[4]
 * (src/identity/provisioning-key.ts): the characters 48..89 encode secret bits only. The caPin part
 * is not looked for on its own: it is public (cloud.json, identity.json hold it).
 */
export function secretNeedles(key: string): string[] {
  if (!key.startsWith("cnk1.") || key.length < 100) return [key];
  const [from, to] = [5 + Math.ceil(256 / 6), 5 + Math.floor(512 / 6)];
  const runs: string[] = [];
  for (let start = from; start + WINDOW <= to; start += WINDOW / 2) runs.push(key.slice(start, start + WINDOW));
  runs.push(key.slice(to - WINDOW, to));
  return [key, ...new Set(runs)];
}

function pidNamespace(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

/** Every process in `ns` whose argv holds a needle, except those whose argv is exactly `allowed`. */
function scanArgv(
  ns: string,
  needles: readonly string[],
  allowed: readonly string[],
  found: Map<string, ArgvOffender>,
): void {
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    let raw: string;
    try {
      raw = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    if (!needles.some((n) => raw.includes(n)) || pidNamespace(pid) !== ns) continue;
    const argv = raw.split("\0").filter((_, i, all) => i < all.length - 1 || all[i] !== "");
    // The operator's `bash -s -- --key K` (and the subshells it forks, which keep its argv) is the one allowed.
    if (argv.length === allowed.length && argv.every((a, i) => a === allowed[i])) continue;
    found.set(`${pid} ${raw}`, { pid, argv });
  }
}

/**
 * Runs the install line as root inside `ct`. The line goes to `sh` on stdin, as typed at a prompt:
 * `sh -c LINE` would put the key in the argv of a shell the operator never has.
 */
export async function runInstallLine(
  ct: Container,
  baseUrl: string,
  args: readonly string[],
  options: { secret?: string; timeoutMs?: number } = {},
): Promise<InstallRun> {
  const line = installLine(baseUrl, args);
  const secret = options.secret;
  const shown = secret === undefined ? line : line.split(quote(secret)).join("'<provisioning key>'");
  const found = new Map<string, ArgvOffender>();
  let scans = 0;
  const ns = pidNamespace(ct.pid);
  if (ns === undefined) throw new Error(`cannot read the pid namespace of ${ct.name}'s PID 1 (${ct.pid})`);
  const needles = secret === undefined ? [] : secretNeedles(secret);
  const allowed = ["bash", "-s", "--", ...args];
  const timer =
    needles.length === 0
      ? undefined
      : setInterval(() => {
          scanArgv(ns, needles, allowed, found);
          scans += 1;
        }, ARGV_POLL_MS);
  try {
    // Both streams into one, in the order they came, as on the operator's terminal.
    const result = await ct.exec(["sh"], {
      input: `exec 2>&1\n${line}\n`,
      timeoutMs: options.timeoutMs ?? INSTALL_TIMEOUT_MS,
    });
    return { ...result, shown, argvOffenders: [...found.values()], argvScans: scans };
  } finally {
    clearInterval(timer);
  }
}

/** The run as the operator saw it: the command, then its output (both streams, in order). */
export const transcriptOf = (run: InstallRun) => `# ${run.shown}\n${run.stdout}${run.stderr}(exit ${run.code})\n`;

/**
 * Files under `roots` inside `ct` holding `secret` (or a piece of it), skipping `exclude` (paths) and
 * every special file; /proc and /sys are never searched. Only files whose inode changed after
 * `marker` (a file made before the secret existed) are read: a file holding the secret was written
 * after it was made, so its ctime (which no one can set back) is newer; the many gigabytes the
 * container shares unchanged with its host could not hold it.
 */
export async function filesHolding(
  ct: Container,
  secret: string,
  marker: string,
  roots: readonly string[],
  exclude: readonly string[] = [],
): Promise<string[]> {
  const patterns = secretNeedles(secret)
    .map((n) => `-e ${quote(n)}`)
    .join(" ");
  const prune = exclude.map((p) => `-path ${quote(p)} -prune -o`).join(" ");
  // Regular files only (no fifo or device a read would hang on); grep -l names the holders.
  const script = `find ${roots.map(quote).join(" ")} ${prune} -type f -cnewer ${quote(marker)} -print0 2>/dev/null | xargs -0 -r grep -lF ${patterns} -- 2>/dev/null; true`;
  const result = await ct.exec(["sh"], { input: script, timeoutMs: 180_000 });
  if (result.code !== 0) throw new Error(`searching ${roots.join(" ")} failed: ${result.stderr}`);
  return result.stdout.split("\n").filter(Boolean);
}

/** Makes `path` inside `ct` now: the `marker` of filesHolding. */
export async function makeMarker(ct: Container, path: string): Promise<void> {
  await ct.run(["sh", "-c", `: > ${quote(path)}`]);
}

/** `stat -c '%U:%G %a'` of each path, as a record path → "owner:group mode". */
export async function ownersAndModes(ct: Container, paths: readonly string[]): Promise<Record<string, string>> {
  const out = await ct.run(["stat", "-c", "%n|%U:%G %a", ...paths]);
  return Object.fromEntries(
    out
      .trim()
      .split("\n")
      .map((l) => l.split("|") as [string, string]),
  );
}
