/**
 * The outside programs the baselines need (iperf3, OpenSSH, socat, ApacheBench), found on PATH or in /usr/sbin, and
 * the machine/version lines of the report. A missing tool is a reason string, so its column is reported
 * as skipped with that reason — never dropped.
 */
import { existsSync, readFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";

export interface Tools {
  iperf3: string | undefined;
  ssh: string | undefined;
  sshd: string | undefined;
  sshKeygen: string | undefined;
  socat: string | undefined;
  /** ApacheBench: the real HTTP client of the `ab` scenario (http-rate.ts). */
  ab: string | undefined;
}

function find(name: string): string | undefined {
  return Bun.which(name) ?? ["/usr/sbin", "/usr/bin", "/sbin"].map((d) => `${d}/${name}`).find((p) => existsSync(p));
}

export function detectTools(): Tools {
  return {
    iperf3: find("iperf3"),
    ssh: find("ssh"),
    sshd: find("sshd"),
    sshKeygen: find("ssh-keygen"),
    socat: find("socat"),
    ab: find("ab"),
  };
}

/** Why the ssh -L baseline cannot run, or undefined. */
export function sshMissing(tools: Tools): string | undefined {
  const missing = (["ssh", "sshd", "sshKeygen"] as const).filter((t) => !tools[t]);
  return missing.length > 0
    ? `${missing.join(", ")} not installed (apt-get install openssh-server openssh-client)`
    : undefined;
}

export function socatMissing(tools: Tools): string | undefined {
  return tools.socat ? undefined : "socat not installed (apt-get install socat)";
}

/** The first line of a command's output that matches `pattern` (default: the first line), or null. */
function versionLine(cmd: string[], which: "stdout" | "stderr" = "stdout", pattern = /./): string | null {
  try {
    const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", timeout: 10_000 });
    const text = (which === "stdout" ? r.stdout : r.stderr).toString();
    return r.exitCode === 0
      ? (text
          .split("\n")
          .find((l) => pattern.test(l))
          ?.trim() ?? null)
      : null;
  } catch {
    return null;
  }
}

export function versions(tools: Tools, connectorBinary: string): Record<string, string | null> {
  return {
    bun: Bun.version,
    connector: existsSync(connectorBinary) ? versionLine([connectorBinary, "--version"]) : null,
    openssh: tools.ssh ? versionLine([tools.ssh, "-V"], "stderr") : null,
    socat: tools.socat
      ? (versionLine([tools.socat, "-V"], "stdout", /socat version/)?.replace(/^.*?(socat version \S+).*$/, "$1") ??
        null)
      : null,
    iperf3: tools.iperf3 ? versionLine([tools.iperf3, "--version"]) : null,
    ab: tools.ab ? versionLine([tools.ab, "-V"], "stdout", /ApacheBench/) : null,
  };
}

function osName(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(readFileSync("/etc/os-release", "utf8"))?.[1] ?? "linux";
  } catch {
    return "linux";
  }
}

/** The 1-minute load average, rounded: other work on the machine is the first suspect when numbers wobble. */
export function load1m(): number {
  return Math.round((loadavg()[0] ?? 0) * 10) / 10;
}

export function machineInfo(now: Date, loadAtStart: number): Record<string, string | number> {
  return {
    date: now.toISOString().replace(/\.\d{3}Z$/, "Z"),
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    os: osName(),
    load1mAtStart: loadAtStart,
    load1mAtEnd: load1m(),
  };
}
