/**
 * Where the benchmark's processes run: on this host, or inside a network namespace the harness creates for
 * the long-distance scenario (only loopback inside, with netem delay on lo). Each namespace is named after
 * this process so a crashed run's namespace can be found and removed; deletion also runs on Ctrl-C.
 */
import { BenchError } from "./procs.ts";

export interface Host {
  /** "host" or the namespace name, for messages. */
  label: string;
  /** The command line that runs `cmd` on this host (inside the namespace when there is one). */
  wrap(cmd: string[]): string[];
}

export const LOCAL_HOST: Host = { label: "host", wrap: (cmd) => cmd };

export function namespaceHost(name: string): Host {
  return { label: `netns ${name}`, wrap: (cmd) => ["ip", "netns", "exec", name, ...cmd] };
}

function run(cmd: string[]): { ok: boolean; err: string } {
  const result = Bun.spawnSync(cmd, { stdout: "ignore", stderr: "pipe", timeout: 10_000 });
  return { ok: result.exitCode === 0, err: result.stderr.toString().trim() };
}

/** Why a namespace with netem cannot be made here, or undefined when it can be tried. */
export function namespaceUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (ip netns add)";
  for (const tool of ["ip", "tc"]) {
    if (!Bun.which(tool)) return `\`${tool}\` not found (install iproute2)`;
  }
  return undefined;
}

/** Creates the namespace with lo up. Throws BenchError with ip's message on failure. */
export function createNamespace(name: string): void {
  for (const cmd of [
    ["ip", "netns", "add", name],
    ["ip", "-n", name, "link", "set", "lo", "up"],
  ]) {
    const r = run(cmd);
    if (!r.ok) throw new BenchError(`${cmd.join(" ")}: ${r.err}`);
  }
}

/**
 * Sets lo's one-way delay (every packet crosses lo once, so RTT = 2 × delayMs). `limit` is raised from
 * netem's 1,000 packets, which would drop at multi-Gbit/s × tens of ms in flight.
 */
export function setDelay(name: string, delayMs: number): void {
  const r = run([
    "ip",
    "netns",
    "exec",
    name,
    "tc",
    "qdisc",
    "replace",
    "dev",
    "lo",
    "root",
    "netem",
    "delay",
    `${delayMs}ms`,
    "limit",
    "1000000",
  ]);
  if (!r.ok)
    throw new BenchError(`tc netem on lo: ${r.err}${/unknown/i.test(r.err) ? " (this kernel has no sch_netem)" : ""}`);
}

export function deleteNamespace(name: string): void {
  run(["ip", "netns", "delete", name]);
}

/** Namespaces left by earlier runs that died without cleaning up (their owner pid is gone). */
export function staleNamespaces(prefix: string): string[] {
  const r = Bun.spawnSync(["ip", "netns", "list"], { stdout: "pipe", stderr: "ignore", timeout: 10_000 });
  return r.stdout
    .toString()
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((name) => name.startsWith(prefix))
    .filter((name) => {
      const pid = Number(name.slice(prefix.length).split("-")[0]);
      if (!Number.isInteger(pid) || pid <= 0) return false;
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    });
}
