/**
 * The host checks: pure judgements of `HostFacts`, one result per host.* id, in the report's order.
 * FAIL only for what stops the connector working; WARN for what degrades it or may surprise the
 * operator. Each threshold below says why it is where it is.
 */
import { MAX_NAME_CHARS } from "../identity/config.ts";
import type { HostFacts } from "./host-facts.ts";
import { fail, pass, warn, type CheckResult } from "./report.ts";

const MiB = 1024 * 1024;
/** Below this the daemon (Bun runtime, TLS buffers, a few thousand streams) gets OOM-killed under load. */
export const MIN_MEMORY_BYTES = 256 * MiB;
/** What a busy connector (tens of thousands of streams, a hand-over running two processes) wants. */
export const RECOMMENDED_MEMORY_BYTES = 1024 * MiB;
/** Beyond two binaries (the download and the staged copy of an upgrade): identity, state files, headroom. */
export const DISK_MARGIN_BYTES = 32 * MiB;
/** Each stream holds an fd; a hard limit below this caps the connector at a few ten thousand streams. */
export const MIN_NOFILE_HARD = 65_536;
/** glibc's resolver reads only the first MAXNS (3) nameserver lines. */
export const MAX_USED_NAMESERVERS = 3;

const SUPPORTED_FAMILIES = [
  "debian",
  "ubuntu",
  "rhel",
  "centos",
  "fedora",
  "rocky",
  "almalinux",
  "ol",
  "amzn",
  "sles",
  "suse",
  "opensuse",
  "alpine",
];

const mib = (bytes: number): string => `${Math.round(bytes / MiB)} MiB`;

function os(f: HostFacts): CheckResult {
  if (f.platform !== "linux")
    return fail(
      "host.os",
      `not Linux (${f.platform})`,
      "the connector runs on Linux only: install it on a Linux host or VM",
    );
  return pass("host.os", `Linux ${f.kernel}`);
}

/** Alpine (or a host whose only loader is musl's): the glibc builds do not run there. */
function isMuslHost(f: HostFacts): boolean {
  const ids = [f.osRelease?.ID ?? "", ...(f.osRelease?.ID_LIKE ?? "").split(/\s+/)];
  return ids.includes("alpine") || (f.muslLoader !== undefined && f.osRelease === undefined);
}

function distro(f: HostFacts): CheckResult {
  if (f.osRelease === undefined) {
    return warn(
      "host.distro",
      "unknown distribution (no /etc/os-release)",
      "tested on Debian/Ubuntu, RHEL and its rebuilds, Fedora, SUSE and Alpine; on others check the service yourself after install",
    );
  }
  const name = f.osRelease.PRETTY_NAME ?? f.osRelease.NAME ?? f.osRelease.ID ?? "unknown";
  if (isMuslHost(f)) {
    const loader = f.muslLoader ? `, ${f.muslLoader}` : "";
    if (f.binaryTarget.endsWith("-musl"))
      return pass("host.distro", `${name} (musl libc${loader}; this is the ${f.binaryTarget} build)`);
    return warn(
      "host.distro",
      `${name} uses musl libc${loader}, but this is the ${f.binaryTarget} build (glibc)`,
      "install the -musl build for this host (install.sh picks linux-x64-musl or linux-arm64-musl on musl hosts)",
    );
  }
  const ids = [f.osRelease.ID ?? "", ...(f.osRelease.ID_LIKE ?? "").split(/\s+/)].map((s) => s.toLowerCase());
  if (ids.some((id) => SUPPORTED_FAMILIES.some((family) => id === family || id.startsWith(`${family}-`))))
    return pass("host.distro", name);
  return warn(
    "host.distro",
    `${name} is not a tested distribution`,
    "tested on Debian/Ubuntu, RHEL and its rebuilds, Fedora, SUSE and Alpine; on others check the service yourself after install",
  );
}

function arch(f: HostFacts): CheckResult {
  if (f.machine === "x86_64" || f.machine === "amd64") return pass("host.arch", `${f.machine} (linux-x64 builds)`);
  if (f.machine === "aarch64" || f.machine === "arm64") return pass("host.arch", `${f.machine} (linux-arm64 builds)`);
  return fail(
    "host.arch",
    `unsupported architecture ${f.machine}`,
    "the connector is built for x86_64 and arm64 (aarch64) only: use such a host or VM",
  );
}

function cpu(f: HostFacts): CheckResult {
  if (f.cpuCount === undefined)
    return warn("host.cpu", "number of CPUs unknown (/proc/cpuinfo unreadable)", "give the connector at least 2 CPUs");
  if (f.cpuCount < 2)
    return warn(
      "host.cpu",
      `${f.cpuCount} CPU: TLS, relaying and upgrades share one core`,
      "give the connector's VM at least 2 vCPUs",
    );
  return pass("host.cpu", `${f.cpuCount} CPUs`);
}

function memory(f: HostFacts): CheckResult {
  const m = f.memTotalBytes;
  if (m === undefined)
    return warn(
      "host.memory",
      "memory size unknown (/proc/meminfo unreadable)",
      `give the host at least ${mib(RECOMMENDED_MEMORY_BYTES)} of memory`,
    );
  if (m < MIN_MEMORY_BYTES)
    return fail(
      "host.memory",
      `${mib(m)} of memory, less than the ${mib(MIN_MEMORY_BYTES)} minimum`,
      `give the host at least ${mib(RECOMMENDED_MEMORY_BYTES)} of memory`,
    );
  if (m < RECOMMENDED_MEMORY_BYTES)
    return warn(
      "host.memory",
      `${mib(m)} of memory: enough to start, tight under load`,
      `give the host at least ${mib(RECOMMENDED_MEMORY_BYTES)} of memory`,
    );
  return pass("host.memory", `${mib(m)} of memory`);
}

function disk(f: HostFacts): CheckResult {
  const free = f.stateDir.freeBytes;
  const need = 2 * f.binarySize + DISK_MARGIN_BYTES;
  const where = f.stateDir.probed;
  if (free === undefined)
    return warn(
      "host.disk",
      `free space on ${where} unknown`,
      `make sure ${where} has ${mib(need)} free (room for two binaries during an upgrade)`,
    );
  if (free < need) {
    return fail(
      "host.disk",
      `${mib(free)} free on ${where}, less than the ${mib(need)} an upgrade needs (two binaries of ${mib(f.binarySize)} plus ${mib(DISK_MARGIN_BYTES)})`,
      `free at least ${mib(need - free)} on the file system of ${where}, or choose another --state-dir`,
    );
  }
  return pass("host.disk", `${mib(free)} free on ${where} (${mib(need)} needed)`);
}

function aes(f: HostFacts): CheckResult {
  if (f.cpuFlags === undefined)
    return warn(
      "host.aes",
      "CPU features unknown (/proc/cpuinfo unreadable)",
      "make sure the CPU (or the VM's CPU model) exposes AES instructions",
    );
  if (f.cpuFlags.includes("aes")) return pass("host.aes", "AES instructions available");
  return warn(
    "host.aes",
    "no AES instructions: TLS encryption runs several times slower",
    "expose AES-NI to the VM (hypervisor CPU model host-passthrough or one with aes)",
  );
}

function systemd(f: HostFacts): CheckResult {
  if (f.systemd) return pass("host.systemd", "systemd is running");
  return warn(
    "host.systemd",
    "systemd is not running: connector.service and the upgrade units cannot be used",
    "run the daemon under your init system: runuser -u connector -- connector run (upgrades then need connector upgrade run by root)",
  );
}

function hostnameCheck(f: HostFacts): CheckResult {
  const fix = `enroll with --name NAME (at most ${MAX_NAME_CHARS} characters) or set CONNECTOR_NAME`;
  if (f.configuredName !== undefined) {
    if (f.configuredName.length > MAX_NAME_CHARS)
      return fail(
        "host.hostname",
        `the configured connector name is ${f.configuredName.length} characters, more than ${MAX_NAME_CHARS}`,
        fix,
      );
    return pass("host.hostname", `connector name "${f.configuredName}" from the settings`);
  }
  if (f.hostname === undefined || f.hostname.trim() === "")
    return warn("host.hostname", "the hostname is empty: the connector needs a name", fix);
  if (f.hostname.length > MAX_NAME_CHARS) {
    return warn(
      "host.hostname",
      `the hostname is ${f.hostname.length} characters: the connector name will be cut to "${f.hostname.slice(0, MAX_NAME_CHARS)}"`,
      fix,
    );
  }
  return pass("host.hostname", `connector name will be "${f.hostname}" (the hostname)`);
}

function nofile(f: HostFacts): CheckResult {
  const fix =
    "connector.service sets LimitNOFILE=1048576; outside it raise the hard limit (ulimit -Hn 1048576, or nofile in /etc/security/limits.conf)";
  if (f.noFile === undefined)
    return warn("host.nofile", "file-descriptor limit unknown (/proc/self/limits unreadable)", fix);
  const hard = f.noFile.hard === Infinity ? "unlimited" : String(f.noFile.hard);
  if (f.noFile.hard < MIN_NOFILE_HARD)
    return warn(
      "host.nofile",
      `hard file-descriptor limit ${hard} here (below ${MIN_NOFILE_HARD}): each stream needs one`,
      fix,
    );
  return pass("host.nofile", `hard file-descriptor limit ${hard}`);
}

function nameservers(f: HostFacts): CheckResult {
  const fix = `keep 1 to ${MAX_USED_NAMESERVERS} nameserver lines in /etc/resolv.conf (or point it at a local resolver such as systemd-resolved)`;
  const list = f.nameservers;
  if (list === undefined)
    return warn("host.nameservers", "no /etc/resolv.conf: name lookups fall back to 127.0.0.1", fix);
  if (list.length === 0)
    return warn("host.nameservers", "no nameserver in /etc/resolv.conf: name lookups fall back to 127.0.0.1", fix);
  if (list.length > MAX_USED_NAMESERVERS) {
    return warn(
      "host.nameservers",
      `${list.length} nameservers: glibc uses only the first ${MAX_USED_NAMESERVERS} (${list.slice(0, MAX_USED_NAMESERVERS).join(", ")})`,
      fix,
    );
  }
  return pass("host.nameservers", `${list.length} nameserver${list.length === 1 ? "" : "s"} (${list.join(", ")})`);
}

function stateDir(f: HostFacts): CheckResult {
  const s = f.stateDir;
  const where = s.exists ? s.path : `${s.path} does not exist yet; its parent ${s.probed}`;
  const writeFix = `run preflight as the user the connector runs as (or root), or choose a writable --state-dir / CONNECTOR_STATE_DIR`;
  if (s.writeError !== undefined) return fail("host.state-dir", `${where} is not writable (${s.writeError})`, writeFix);
  if (s.mount?.options.includes("ro"))
    return fail(
      "host.state-dir",
      `${where} is on the read-only mount ${s.mount.mountPoint}`,
      `remount ${s.mount.mountPoint} read-write, or choose a --state-dir on a writable file system`,
    );
  if (s.unsafe !== undefined)
    return fail("host.state-dir", s.unsafe, `chmod 700 ${s.path} and chown it to the connector's user`);
  if (s.mount?.options.includes("noexec")) {
    return warn(
      "host.state-dir",
      `${where} is on the noexec mount ${s.mount.mountPoint}`,
      "nothing to change for upgrades: a staged binary is only read there and is run (its --version self-check) beside /usr/local/bin/connector; remount without noexec only if your tools run files from it",
    );
  }
  return pass("host.state-dir", s.exists ? `${s.path} is writable` : `${where} takes new entries`);
}

function clockSync(f: HostFacts): CheckResult {
  const fix = "enable systemd-timesyncd or chrony (timedatectl set-ntp true)";
  if (f.clockSync.state === "synced")
    return pass("host.clock-sync", `clock is NTP-synchronised (${f.clockSync.detail})`);
  if (f.clockSync.state === "unsynced")
    return warn("host.clock-sync", `clock is not NTP-synchronised (${f.clockSync.detail})`, fix);
  return warn("host.clock-sync", `cannot tell whether the clock is NTP-synchronised (${f.clockSync.detail})`, fix);
}

/** Every host check, in the report's order. */
export function hostChecks(facts: HostFacts): CheckResult[] {
  return [
    os,
    distro,
    arch,
    cpu,
    memory,
    disk,
    aes,
    systemd,
    hostnameCheck,
    nofile,
    nameservers,
    stateDir,
    clockSync,
  ].map((check) => check(facts));
}
