/**
 * A faked host for preflight tests: a temp directory laid out like / (etc/os-release, proc/cpuinfo,
 * proc/meminfo, proc/self/limits, proc/self/mountinfo, etc/resolv.conf, run/systemd/system,
 * proc/sys/kernel/hostname), healthy by default; each file can be replaced or removed. The state dir
 * is a real directory next to it, so writability is probed for real.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export const HEALTHY_FILES: Readonly<Record<string, string>> = {
  "etc/os-release":
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
  "proc/cpuinfo": [0, 1, 2, 3]
    .map((i) => `processor\t: ${i}\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme sse sse2 aes avx avx2\n`)
    .join("\n"),
  "proc/meminfo": "MemTotal:        4015852 kB\nMemFree:          123456 kB\n",
  "proc/self/limits":
    "Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 524288               files     \n",
  "proc/self/mountinfo": "26 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n",
  "etc/resolv.conf": "# generated\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n",
  "proc/sys/kernel/hostname": "app-connector-01\n",
  "run/systemd/system/.keep": "",
};

export interface FakeHost {
  readonly root: string;
  /** A state dir that exists (0700), outside the faked root. */
  readonly stateDir: string;
  /** Replaces (text) or removes (null) one file below the root. */
  set(path: string, text: string | null): void;
  remove(): void;
}

export function fakeHost(changes: Record<string, string | null> = {}): FakeHost {
  const base = mkdtempSync(join(tmpdir(), "preflight-host-"));
  const root = join(base, "root");
  const stateDir = join(base, "state");
  mkdirSync(stateDir, { mode: 0o700 });
  const set = (path: string, text: string | null) => {
    const full = join(root, path);
    if (text === null) rmSync(full, { recursive: true, force: true });
    else {
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, text);
    }
  };
  for (const [path, text] of Object.entries({ ...HEALTHY_FILES, ...changes })) set(path, text);
  return { root, stateDir, set, remove: () => rmSync(base, { recursive: true, force: true }) };
}
