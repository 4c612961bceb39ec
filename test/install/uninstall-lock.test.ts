/**
 * install.sh --uninstall / --purge on a host with systemd, and its lock against a second run, each an
 * install.sh function run against fakes (test/support/install-steps.ts): userdel, groupdel and
 * systemctl only log, and the files live under a temp root. Nothing on this machine is changed.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { snapshot } from "../support/installer.ts";
import { makeStepHarness, MUTATING, type Step, where } from "../support/install-steps.ts";

const work = mkdtempSync(join(tmpdir(), "install-uninstall-"));
const { step } = makeStepHarness(work);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("uninstall on a host with systemd", () => {
  const installed = (fake: string) => {
    mkdirSync(join(fake, "systemd"));
    for (const dir of ["usr/local/bin", "etc/connector", "etc/systemd/system", "var/lib/connector/identity"])
      mkdirSync(join(fake, "root", dir), { recursive: true });
    for (const file of [
      "usr/local/bin/connector",
      "usr/local/bin/connector.prev",
      "etc/connector/connector.env",
      "etc/systemd/system/connector.service",
      "etc/systemd/system/connector-upgrade.path",
      "etc/systemd/system/connector-upgrade.service",
      "var/lib/connector/identity/identity.json",
    ]) {
      writeFileSync(join(fake, "root", file), "x");
    }
  };
  /** Files (not directories) left under the fake root. */
  const files = (s: Step) =>
    [...snapshot(join(s.fake, "root"))].filter(([, f]) => f.type !== "dir").map(([path]) => path);

  test("--uninstall: units stopped and disabled, files removed, state and user kept", async () => {
    const s = await step(`ROOT="$FAKE/root" ROOT_GIVEN="" PURGE=""\nuninstall`, installed);
    expect(s.code, where(s)).toBe(0);
    expect(s.log("systemctl.log").filter((l) => MUTATING.test(l))).toEqual([
      "disable --now connector-upgrade.path connector.service",
      "stop connector-upgrade.service",
      "daemon-reload",
    ]);
    expect(files(s)).toEqual(["var/lib/connector/identity/identity.json"]);
    expect(s.log("users.log")).toEqual([]);
  });

  test("--purge: also the state dir, the user and its group", async () => {
    const s = await step(`ROOT="$FAKE/root" ROOT_GIVEN="" PURGE=1\nuninstall`, installed);
    expect(s.code, where(s)).toBe(0);
    expect(files(s)).toEqual([]);
    expect(existsSync(join(s.fake, "root", "var/lib/connector"))).toBe(false);
    expect(s.log("users.log")).toEqual(["userdel connector", "groupdel connector"]);
    expect(s.stderr).toContain("install.sh: removed the user connector");
  });
});

describe("one installer at a time", () => {
  test("a second run while another holds the lock: exit 1, saying so", async () => {
    const s = await step(
      [
        'LOCK_FILE="$FAKE/run/lock/connector-install.lock"',
        'mkdir -p "$FAKE/run/lock"',
        '( flock 9; touch "$FAKE/held"; exec sleep 30 ) 9>"$LOCK_FILE" &',
        "holder=$!",
        'for _ in $(seq 400); do [ -e "$FAKE/held" ] && break; sleep 0.05; done',
        "trap 'kill \"$holder\" 2>/dev/null' EXIT",
        "take_lock",
        "echo took it",
      ].join("\n"),
    );
    expect(s.code, where(s)).toBe(1);
    expect(s.stderr).toBe(
      `install.sh: another install.sh is running on this host (it holds ${s.fake}/run/lock/connector-install.lock): wait for it, then run again\n`,
    );
  });

  test("nobody holds it: the run goes on", async () => {
    const s = await step('LOCK_FILE="$FAKE/run/lock/connector-install.lock"\ntake_lock\necho took it');
    expect(s.code, where(s)).toBe(0);
    expect(s.stdout).toBe("took it\n");
  });
});
