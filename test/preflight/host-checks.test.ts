/**
 * Host checks on faked hosts (test/support/fake-host.ts): files below a temp root, uname, statfs, the
 * clock's sync state and the binary's size injected. Each row changes one thing of a healthy host
 * and expects exactly that check to change.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DISK_MARGIN_BYTES, hostChecks } from "../../src/preflight/host-checks.ts";
import {
  readHostFacts,
  type HostFacts,
  type HostFactsOptions,
  type StateDirFacts,
} from "../../src/preflight/host-facts.ts";
import type { CheckResult } from "../../src/preflight/report.ts";
import { fakeHost, type FakeHost } from "../support/fake-host.ts";

const hosts: FakeHost[] = [];
afterAll(() => hosts.forEach((h) => h.remove()));

const MiB = 1024 * 1024;
const HEALTHY: Partial<HostFacts> = {
  platform: "linux",
  machine: "x86_64",
  kernel: "6.1.0-18-amd64",
  binaryTarget: "linux-x64",
  binarySize: 100 * MiB,
  clockSync: { state: "synced", detail: "adjtimex state 0, status 0x2001" },
};

interface Case {
  readonly name: string;
  readonly files?: Record<string, string | null>;
  readonly overrides?: Partial<HostFacts>;
  readonly stateDir?: (host: FakeHost) => string;
  readonly stateDirOverrides?: Partial<StateDirFacts>;
  readonly configuredName?: string;
  readonly expect: Partial<Record<CheckResult["id"], CheckResult["status"]>>;
  /** Words the changed check's summary must contain. */
  readonly says?: RegExp;
}

function run(
  c: Pick<Case, "files" | "overrides" | "stateDir" | "stateDirOverrides" | "configuredName">,
): CheckResult[] {
  const host = fakeHost(c.files);
  hosts.push(host);
  const options: HostFactsOptions = {
    root: host.root,
    stateDir: c.stateDir ? c.stateDir(host) : host.stateDir,
    overrides: { ...HEALTHY, ...c.overrides },
    stateDirOverrides: { freeBytes: 10_000 * MiB, ...c.stateDirOverrides },
    configuredName: c.configuredName,
  };
  return hostChecks(readHostFacts(options));
}

const statuses = (checks: CheckResult[]) => Object.fromEntries(checks.map((c) => [c.id, c.status]));

const ALL_PASS: Record<string, CheckResult["status"]> = Object.fromEntries(
  [
    "host.os",
    "host.distro",
    "host.arch",
    "host.cpu",
    "host.memory",
    "host.disk",
    "host.aes",
    "host.systemd",
    "host.hostname",
    "host.nofile",
    "host.nameservers",
    "host.state-dir",
    "host.clock-sync",
  ].map((id) => [id, "pass" as const]),
);

const CASES: Case[] = [
  {
    name: "little memory (200 MiB)",
    files: { "proc/meminfo": "MemTotal:  204800 kB\n" },
    expect: { "host.memory": "fail" },
    says: /200 MiB.*256 MiB minimum/,
  },
  {
    name: "under 1 GiB of memory",
    files: { "proc/meminfo": "MemTotal:  786432 kB\n" },
    expect: { "host.memory": "warn" },
    says: /768 MiB/,
  },
  {
    name: "no AES flag",
    files: { "proc/cpuinfo": "processor\t: 0\nflags\t: fpu sse2 avx\n\nprocessor\t: 1\nflags\t: fpu sse2 avx\n" },
    expect: { "host.aes": "warn" },
    says: /no AES/,
  },
  {
    name: "arm64 Features with aes",
    files: {
      "proc/cpuinfo":
        "processor\t: 0\nFeatures\t: fp asimd aes pmull sha1\n\nprocessor\t: 1\nFeatures\t: fp asimd aes pmull sha1\n",
    },
    overrides: { machine: "aarch64" },
    expect: {},
  },
  {
    name: "one CPU",
    files: { "proc/cpuinfo": "processor\t: 0\nflags\t: aes\n" },
    expect: { "host.cpu": "warn" },
    says: /1 CPU/,
  },
  {
    name: "4 nameservers",
    files: {
      "etc/resolv.conf": "nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n",
    },
    expect: { "host.nameservers": "warn" },
    says: /4 nameservers.*first 3 \(10\.0\.0\.1, 10\.0\.0\.2, 10\.0\.0\.3\)/,
  },
  {
    name: "no nameserver",
    files: { "etc/resolv.conf": "search example.com\n" },
    expect: { "host.nameservers": "warn" },
  },
  {
    name: "a noexec state dir (mountinfo)",
    files: {},
    stateDir: (h) => {
      writeFileSync(
        join(h.root, "proc/self/mountinfo"),
        `26 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n40 26 0:50 / ${join(h.stateDir, "..")} rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw\n`,
      );
      return h.stateDir;
    },
    expect: { "host.state-dir": "warn" },
    says: /noexec mount/,
  },
  {
    name: "a read-only state dir mount (mountinfo)",
    stateDir: (h) => {
      writeFileSync(
        join(h.root, "proc/self/mountinfo"),
        `26 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n41 26 8:2 / ${h.stateDir} ro,relatime - ext4 /dev/sda2 ro\n`,
      );
      return h.stateDir;
    },
    expect: { "host.state-dir": "fail" },
    says: /read-only mount/,
  },
  {
    name: "a state dir that is not writable (a file where a directory should be)",
    stateDir: (h) => {
      const file = join(h.stateDir, "..", "plainfile");
      writeFileSync(file, "x");
      return join(file, "state");
    },
    expect: { "host.state-dir": "fail" },
    says: /not writable \(it is not a directory\)/,
  },
  {
    name: "a state dir other users can write into",
    stateDir: (h) => {
      chmodSync(h.stateDir, 0o777);
      return h.stateDir;
    },
    expect: { "host.state-dir": "fail" },
    says: /writable by its group and all users/,
  },
  {
    name: "a state dir that does not exist yet (nearest existing parent probed)",
    stateDir: (h) => join(h.stateDir, "var", "lib", "connector"),
    expect: {},
    says: undefined,
  },
  {
    name: "a 64-character hostname",
    files: { "proc/sys/kernel/hostname": `${"h".repeat(64)}\n` },
    expect: { "host.hostname": "warn" },
    says: /64 characters.*cut to "h{63}"/,
  },
  {
    name: "a 64-character hostname with a configured name",
    files: { "proc/sys/kernel/hostname": `${"h".repeat(64)}\n` },
    configuredName: "edge-1",
    expect: {},
  },
  { name: "no systemd", files: { "run/systemd/system/.keep": null }, expect: { "host.systemd": "warn" } },
  {
    name: "musl (os-release ID=alpine + the musl loader), glibc build",
    files: { "etc/os-release": 'PRETTY_NAME="Alpine Linux v3.20"\nID=alpine\n', "lib/ld-musl-x86_64.so.1": "" },
    expect: { "host.distro": "warn" },
    says: /musl libc, \/lib\/ld-musl-x86_64\.so\.1.*linux-x64 build/,
  },
  {
    name: "musl host, musl build",
    files: { "etc/os-release": 'PRETTY_NAME="Alpine Linux v3.20"\nID=alpine\n', "lib/ld-musl-x86_64.so.1": "" },
    overrides: { binaryTarget: "linux-x64-musl" },
    expect: {},
  },
  {
    name: "an unknown distribution",
    files: { "etc/os-release": "ID=exotic\nNAME=Exotic\n" },
    expect: { "host.distro": "warn" },
  },
  {
    name: "a RHEL rebuild via ID_LIKE",
    files: { "etc/os-release": 'ID=rocky\nID_LIKE="rhel centos fedora"\n' },
    expect: {},
  },
  { name: "not Linux", overrides: { platform: "darwin" }, expect: { "host.os": "fail" }, says: /not Linux \(darwin\)/ },
  {
    name: "unsupported architecture",
    overrides: { machine: "riscv64" },
    expect: { "host.arch": "fail" },
    says: /riscv64/,
  },
  {
    name: "too little free disk (room for fewer than two binaries)",
    stateDirOverrides: { freeBytes: 200 * MiB + DISK_MARGIN_BYTES - 1 },
    expect: { "host.disk": "fail" },
  },
  { name: "just enough free disk", stateDirOverrides: { freeBytes: 200 * MiB + DISK_MARGIN_BYTES }, expect: {} },
  {
    name: "low hard fd limit",
    files: { "proc/self/limits": "Max open files            1024                 4096                 files\n" },
    expect: { "host.nofile": "warn" },
    says: /4096/,
  },
  {
    name: "clock not synchronised",
    overrides: { clockSync: { state: "unsynced", detail: "adjtimex state 5, status 0x0040" } },
    expect: { "host.clock-sync": "warn" },
    says: /not NTP-synchronised/,
  },
];

describe("host checks on faked hosts", () => {
  test("a healthy host: every host check passes, in the report's order", () => {
    const checks = run({});
    expect(statuses(checks)).toEqual(ALL_PASS);
    expect(checks.map((c) => c.id)).toEqual(Object.keys(ALL_PASS) as CheckResult["id"][]);
    expect(checks.every((c) => c.fix === undefined)).toBe(true);
  });

  for (const c of CASES) {
    test(c.name, () => {
      const checks = run(c);
      expect(statuses(checks)).toEqual({ ...ALL_PASS, ...c.expect });
      for (const check of checks.filter((k) => k.status !== "pass")) expect(check.fix).toBeString();
      const changed = checks.find((k) => k.id === Object.keys(c.expect)[0]);
      if (c.says) expect(changed?.summary).toMatch(c.says);
    });
  }

  test("the noexec WARN says why upgrades do not need exec in the state dir", () => {
    const checks = run(CASES.find((c) => c.name.startsWith("a noexec"))!);
    expect(checks.find((c) => c.id === "host.state-dir")?.fix).toMatch(/beside \/usr\/local\/bin\/connector/);
  });

  test("free disk needed scales with the binary's size", () => {
    const checks = run({ overrides: { binarySize: 5000 * MiB } });
    expect(checks.find((c) => c.id === "host.disk")).toMatchObject({
      status: "fail",
      summary: expect.stringContaining("10032 MiB an upgrade needs"),
    });
  });

  test("the probe file in the state dir is removed again", () => {
    const host = fakeHost();
    hosts.push(host);
    mkdirSync(join(host.stateDir, "identity"), { mode: 0o700 });
    readHostFacts({ root: host.root, stateDir: host.stateDir, overrides: HEALTHY });
    expect(readdirSync(host.stateDir)).toEqual(["identity"]);
  });
});
