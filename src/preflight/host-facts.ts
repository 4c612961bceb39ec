/**
 * Everything preflight knows about the host, gathered once into plain data (`HostFacts`) that the
 * checks judge (host-checks.ts). Files are read below a root directory (default "/"), and any fact
 * can be overridden, so a test fakes a whole host with a temp dir: /etc/os-release, /proc/cpuinfo,
 * /proc/meminfo, /proc/self/limits, /proc/self/mountinfo, /etc/resolv.conf, /run/systemd/system,
 * the musl loader /lib/ld-musl-*.so.1, /proc/sys/kernel/hostname. uname, statfs, the clock's sync
 * state and the binary's size come from the running system unless overridden.
 *
 * The state dir is a real path (not below the root): its nearest existing directory is probed, since
 * install.sh runs preflight before it creates the state dir.
 */
import { randomBytes } from "node:crypto";
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statfsSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { hostname, machine, platform, release } from "node:os";
import { dirname, join, resolve } from "node:path";
import { describeError, errnoCode } from "../errors.ts";
import { readClockSync, type ClockSync } from "../host/adjtimex.ts";
import { assertStateDirSafe } from "../state/state-dir-safety.ts";
import { buildInfo } from "../version.ts";
import {
  mountOf,
  parseCpuinfo,
  parseMemTotal,
  parseMountinfo,
  parseNameservers,
  parseNoFileLimit,
  parseOsRelease,
  type MountEntry,
} from "./proc-files.ts";

export interface StateDirFacts {
  /** The configured state dir. */
  readonly path: string;
  /** The directory that was examined: the state dir, or its nearest existing parent when it does not exist yet. */
  readonly probed: string;
  readonly exists: boolean;
  /** Why nothing can be created there (an errno or a reason), undefined when a probe file was written and removed. */
  readonly writeError: string | undefined;
  /** Why the connector would refuse the existing state dir (another user could write into it). */
  readonly unsafe: string | undefined;
  /** The mount the probed directory lives on, from mountinfo. */
  readonly mount: MountEntry | undefined;
  /** Bytes available to unprivileged users on that file system (statfs f_bavail × f_bsize). */
  readonly freeBytes: number | undefined;
}

export interface HostFacts {
  /** `process.platform` style: "linux", "darwin", … */
  readonly platform: string;
  /** uname -m: "x86_64", "aarch64", … */
  readonly machine: string;
  /** uname -r. */
  readonly kernel: string;
  readonly osRelease: Readonly<Record<string, string>> | undefined;
  /** Path of the musl dynamic loader when the host has one. */
  readonly muslLoader: string | undefined;
  /** The build target of this binary (`linux-x64`, `linux-x64-musl`, …). */
  readonly binaryTarget: string;
  readonly cpuCount: number | undefined;
  readonly cpuFlags: readonly string[] | undefined;
  readonly memTotalBytes: number | undefined;
  readonly noFile: { readonly soft: number; readonly hard: number } | undefined;
  readonly nameservers: readonly string[] | undefined;
  /** /run/systemd/system exists: systemd is the running init. */
  readonly systemd: boolean;
  readonly hostname: string | undefined;
  /** The connector name from the settings (--name, CONNECTOR_NAME), if any. */
  readonly configuredName: string | undefined;
  readonly stateDir: StateDirFacts;
  /** Size of the running binary: an upgrade needs room for a download and a staged copy. */
  readonly binarySize: number;
  readonly clockSync: ClockSync;
}

export interface HostFactsOptions {
  /** Where /etc, /proc and /run are read from; default "/". */
  readonly root?: string;
  readonly stateDir: string;
  readonly configuredName?: string | undefined;
  /** Facts to take as given instead of reading them. */
  readonly overrides?: Partial<HostFacts>;
  /** Single state-dir facts to take as given (free space, say), the rest probed. */
  readonly stateDirOverrides?: Partial<StateDirFacts>;
}

function readText(root: string, path: string): string | undefined {
  try {
    return readFileSync(join(root, path), "utf8");
  } catch {
    return undefined;
  }
}

function findMuslLoader(root: string): string | undefined {
  for (const dir of ["lib", "usr/lib"]) {
    try {
      const name = readdirSync(join(root, dir)).find((n) => /^ld-musl-.+\.so\.1$/.test(n));
      if (name) return `/${dir}/${name}`;
    } catch {
      // no such directory
    }
  }
  return undefined;
}

/** The state dir, or the nearest existing ancestor when it does not exist. */
function nearestExisting(path: string): string {
  let dir = resolve(path);
  while (!existsSync(dir)) {
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return dir;
}

/**
 * Writes and removes a probe file in an existing state dir (what the daemon does first). For a state
 * dir that does not exist yet, only asks the kernel whether its parent takes new entries (access(2)
 * reports a read-only file system as EROFS): preflight writes nothing outside the state dir.
 */
function probeWritable(dir: string, exists: boolean): string | undefined {
  try {
    if (!statSync(dir).isDirectory()) return "it is not a directory";
  } catch (err) {
    return errnoCode(err) ?? describeError(err);
  }
  if (!exists) {
    try {
      accessSync(dir, constants.W_OK | constants.X_OK);
      return undefined;
    } catch (err) {
      return errnoCode(err) ?? describeError(err);
    }
  }
  const probe = join(dir, `.preflight.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fd = openSync(probe, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      writeSync(fd, "preflight\n");
    } finally {
      closeSync(fd);
    }
    unlinkSync(probe);
    return undefined;
  } catch (err) {
    try {
      unlinkSync(probe);
    } catch {
      // never created
    }
    return errnoCode(err) ?? describeError(err);
  }
}

function stateDirFacts(root: string, path: string): StateDirFacts {
  const exists = existsSync(path);
  const probed = nearestExisting(path);
  let real = probed;
  try {
    real = realpathSync(probed);
  } catch {
    // keep the path as given
  }
  let unsafe: string | undefined;
  if (exists) {
    try {
      // Root (install.sh, an operator with sudo) checks a dir the connector's user owns and the daemon
      // runs as: judge it for its owner, or every installed host would fail as "owned by another user".
      assertStateDirSafe(path, process.geteuid?.() === 0 ? "owner" : "self");
    } catch (err) {
      unsafe = describeError(err);
    }
  }
  let freeBytes: number | undefined;
  try {
    const fs = statfsSync(probed);
    freeBytes = fs.bavail * fs.bsize;
  } catch {
    freeBytes = undefined;
  }
  const mountinfo = readText(root, "proc/self/mountinfo");
  return {
    path,
    probed,
    exists,
    writeError: probeWritable(probed, exists),
    unsafe,
    mount: mountinfo === undefined ? undefined : mountOf(parseMountinfo(mountinfo), real),
    freeBytes,
  };
}

function binarySize(): number {
  try {
    return statSync(process.execPath).size;
  } catch {
    return 0;
  }
}

/** Reads the host's facts; `overrides` win over anything read. */
export function readHostFacts(options: HostFactsOptions): HostFacts {
  const root = options.root ?? "/";
  const o = options.overrides ?? {};
  const onThisHost = resolve(root) === "/";
  const osText = readText(root, "etc/os-release") ?? readText(root, "usr/lib/os-release");
  const cpu = (() => {
    const text = readText(root, "proc/cpuinfo");
    return text === undefined ? undefined : parseCpuinfo(text);
  })();
  const meminfo = readText(root, "proc/meminfo");
  const limits = readText(root, "proc/self/limits");
  const resolv = readText(root, "etc/resolv.conf");
  const hostText = readText(root, "proc/sys/kernel/hostname")?.trim();
  return {
    platform: o.platform ?? platform(),
    machine: o.machine ?? machine(),
    kernel: o.kernel ?? release(),
    osRelease: "osRelease" in o ? o.osRelease : osText === undefined ? undefined : parseOsRelease(osText),
    muslLoader: "muslLoader" in o ? o.muslLoader : findMuslLoader(root),
    binaryTarget: o.binaryTarget ?? buildInfo.target,
    cpuCount: "cpuCount" in o ? o.cpuCount : cpu && cpu.count > 0 ? cpu.count : undefined,
    cpuFlags: "cpuFlags" in o ? o.cpuFlags : cpu?.flags,
    memTotalBytes: "memTotalBytes" in o ? o.memTotalBytes : meminfo === undefined ? undefined : parseMemTotal(meminfo),
    noFile: "noFile" in o ? o.noFile : limits === undefined ? undefined : parseNoFileLimit(limits),
    nameservers: "nameservers" in o ? o.nameservers : resolv === undefined ? undefined : parseNameservers(resolv),
    systemd: o.systemd ?? existsSync(join(root, "run/systemd/system")),
    hostname: "hostname" in o ? o.hostname : (hostText ?? (onThisHost ? hostname() : undefined)),
    configuredName: options.configuredName,
    stateDir: o.stateDir ?? { ...stateDirFacts(root, options.stateDir), ...options.stateDirOverrides },
    binarySize: o.binarySize ?? binarySize(),
    clockSync: o.clockSync ?? (onThisHost ? readClockSync() : { state: "unknown", detail: "not read on a faked host" }),
  };
}
