/**
 * The steps install.sh takes only on a real host (never with --root): preflight, enrollment and the
 * systemd calls, each an install.sh function run against fakes (test/support/install-steps.ts): a temp
 * state dir, a fake connector, logging systemctl and friends. The real host is the nspawn e2e test's
 * (test/e2e/install.test.ts). Nothing on this machine is changed.
 */
import { afterAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fakeConnector, makeStepHarness, MUTATING, script, type Step, where } from "../support/install-steps.ts";

const KEY = "cnk1.S3cretKeyMaterial-for-the-service-steps_0123456789";
const PASSWORD = "pa55-in-proxy-url";
const work = mkdtempSync(join(tmpdir(), "install-steps-"));
const { step } = makeStepHarness(work);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("preflight (before any file is written)", () => {
  for (const [exit, expected, message] of [
    [0, 0, "after"],
    [
      1,
      6,
      "install.sh: preflight found a problem (above): fix it and run again, or add --skip-preflight to install anyway",
    ],
    [2, 2, "install.sh: preflight refused the settings or the key (above)"],
    [70, 6, "install.sh: preflight failed (exit 70)"],
  ] as const) {
    test(`preflight exit ${exit}: install.sh ${expected === 0 ? "goes on" : `exits ${expected}`}`, async () => {
      const s = await step(
        `KEY='${KEY}' PROXY='http://u:${PASSWORD}@proxy.example:3128' PROXY_PASSWORD='${PASSWORD}'\nrun_preflight\necho after`,
        (fake) => fakeConnector(fake, exit),
      );
      expect(s.code, where(s)).toBe(expected);
      expect(`${s.stdout}${s.stderr}`).toContain(message);
      const log = s.log("connector.log");
      // The key reaches preflight in a 0600 file, the proxy in its environment: neither in argv.
      expect(log[0]).toBe(`args: preflight --state-dir ${s.fake}/state --key-file ${s.fake}/work/preflight.key`);
      expect(log).toContain(`proxy: http://u:${PASSWORD}@proxy.example:3128`);
      expect(log).toContain("key env: ");
      expect(log).toContain(`key file: 600 ${KEY}`);
      expect(existsSync(join(s.fake, "work", "preflight.key"))).toBe(false);
      expect(`${s.stdout}${s.stderr}`).not.toContain(KEY);
      expect(`${s.stdout}${s.stderr}`).not.toContain(PASSWORD);
    });
  }

  test("--skip-preflight: not run", async () => {
    const s = await step("SKIP_PREFLIGHT=1\nrun_preflight\necho after", (fake) => fakeConnector(fake, 1));
    expect(s.code, where(s)).toBe(0);
    expect(s.stderr).toBe("install.sh: preflight skipped (--skip-preflight)\n");
    expect(s.log("connector.log")).toEqual([]);
  });

  test("without a key (an enrolled host): no --key-file", async () => {
    const s = await step("run_preflight", (fake) => fakeConnector(fake, 0));
    expect(s.code, where(s)).toBe(0);
    expect(s.log("connector.log")[0]).toBe(`args: preflight --state-dir ${s.fake}/state`);
  });
});

describe("enrollment", () => {
  test("as the service user, the key in a 0600 file handed to that user in a root directory it can only traverse, removed after", async () => {
    const s = await step(`KEY='${KEY}' NAME='edge-1'\nenroll\necho "identity changed: $CHANGED_IDENTITY"`, (fake) =>
      fakeConnector(fake, 0, 'echo "Enrolled connector c-1"'),
    );
    expect(s.code, where(s)).toBe(0);
    const keyFile = readFileSync(join(s.fake, "key-file-path"), "utf8").trim();
    // Not in the state dir: the service user could swap the file for a symlink between root's write and chown.
    expect(keyFile).toStartWith(`${s.fake}/run/connector-enroll.`);
    expect(s.log("connector.log")).toContain("key dir: 711");
    expect(s.log("connector.log")[0]).toBe(
      `args: enroll --log-level warn --state-dir ${s.fake}/state --key-file ${keyFile} --name edge-1`,
    );
    expect(s.log("connector.log")).toContain(`key file: 600 ${KEY}`);
    expect(s.log("chown.log")).toEqual([`connector:connector ${keyFile}`]);
    expect(readdirSync(join(s.fake, "state"))).toEqual([]);
    expect(readdirSync(join(s.fake, "run"))).toEqual([]);
    expect(s.stdout).toContain("identity changed: 1");
    expect(s.stderr).toContain("Enrolled connector c-1");
  });

  test("a failed enrollment: exit 7 with enroll's exit code, its output shown without the key, the key file removed", async () => {
    const s = await step(`KEY='${KEY}'\nenroll`, (fake) => fakeConnector(fake, 15, `echo "refused key ${KEY}" >&2`));
    expect(s.code, where(s)).toBe(7);
    expect(s.stderr).toContain("refused key <key>");
    expect(s.stderr).toContain("install.sh: enrollment failed (connector enroll exited 15)");
    expect(s.stderr).not.toContain(KEY);
    expect(readdirSync(join(s.fake, "state"))).toEqual([]);
  });

  test("an existing identity is kept: enroll is not run and the key not used", async () => {
    const s = await step(`KEY='${KEY}'\nenroll`, (fake) => {
      fakeConnector(fake, 0);
      mkdirSync(join(fake, "state", "identity"));
      writeFileSync(join(fake, "state", "identity", "identity.json"), "{}");
    });
    expect(s.code, where(s)).toBe(0);
    expect(s.stderr).toBe(
      `install.sh: this host is already enrolled (${s.fake}/state/identity): identity kept, the key was not used\n`,
    );
    expect(s.log("connector.log")).toEqual([]);
  });
});

describe("systemd", () => {
  /** A connector whose `status` exits with each of `codes` in turn (the last one for ever). */
  const statusSequence = (codes: number[]) => (fake: string) => {
    mkdirSync(join(fake, "systemd"));
    writeFileSync(join(fake, "codes"), `${codes.join("\n")}\n`);
    script(
      join(fake, "connector"),
      `n=$(($(cat "$FAKE/count" 2>/dev/null || echo 0) + 1)); echo $n > "$FAKE/count"
code=$(sed -n "\${n}p" "$FAKE/codes"); [ -n "$code" ] || code=$(tail -n 1 "$FAKE/codes")
echo "status answer $n ($*)"; exit $code`,
    );
  };
  const mutating = (s: Step) => s.log("systemctl.log").filter((l) => MUTATING.test(l));

  test("first install: daemon-reload, enable and start both units, wait for status and print it", async () => {
    const s = await step(
      "CHANGED_UNITS=1 CHANGED_BINARY=1 CHANGED_ENV=1 CHANGED_IDENTITY=1\nstart_service",
      statusSequence([42, 41, 0]),
    );
    expect(s.code, where(s)).toBe(0);
    expect(mutating(s)).toEqual([
      "daemon-reload",
      "enable connector.service",
      "start connector.service",
      "enable connector-upgrade.path",
      "start connector-upgrade.path",
    ]);
    expect(s.stdout).toBe(`status answer 3 (status --state-dir ${s.fake}/state)\n`);
  });

  test("an unchanged re-run of a running service: no reload, no enable, no start, no restart", async () => {
    const s = await step("start_service", (fake) => {
      statusSequence([0])(fake);
      for (const unit of ["connector.service", "connector-upgrade.path"]) {
        writeFileSync(join(fake, `enabled-${unit}`), "");
        writeFileSync(join(fake, `active-${unit}`), "");
      }
    });
    expect(s.code, where(s)).toBe(0);
    expect(mutating(s)).toEqual([]);
    expect(s.stdout).toBe(`status answer 1 (status --state-dir ${s.fake}/state)\n`);
  });

  test("a new binary under a running service: restarted, nothing else", async () => {
    const s = await step("CHANGED_BINARY=1\nstart_service", (fake) => {
      statusSequence([40])(fake);
      for (const unit of ["connector.service", "connector-upgrade.path"]) {
        writeFileSync(join(fake, `enabled-${unit}`), "");
        writeFileSync(join(fake, `active-${unit}`), "");
      }
    });
    expect(s.code, where(s)).toBe(0);
    expect(mutating(s)).toEqual(["restart connector.service"]);
    expect(s.stderr).toContain("install.sh: restarted connector.service");
  });

  test("an earlier run cut short after the swap: the daemon still runs the unlinked old binary, so it is restarted", async () => {
    // A process whose executable was deleted, as the daemon is once a rename replaced its binary.
    const dir = mkdtempSync(join(tmpdir(), "install-deleted-exe-"));
    const exe = join(dir, "old-connector");
    copyFileSync("/bin/sleep", exe);
    chmodSync(exe, 0o755);
    const daemon = Bun.spawn([exe, "300"]);
    try {
      unlinkSync(exe);
      const s = await step("start_service", (fake) => {
        statusSequence([0])(fake);
        writeFileSync(join(fake, "main-pid"), `${daemon.pid}\n`);
        for (const unit of ["connector.service", "connector-upgrade.path"]) {
          writeFileSync(join(fake, `enabled-${unit}`), "");
          writeFileSync(join(fake, `active-${unit}`), "");
        }
      });
      expect(s.code, where(s)).toBe(0);
      expect(mutating(s)).toEqual(["restart connector.service"]);
    } finally {
      daemon.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("status never answers: exit 8 after the wait, with the journal's last lines", async () => {
    const s = await step("STATUS_WAIT_SECONDS=2\nstart_service", statusSequence([42]));
    expect(s.code, where(s)).toBe(8);
    expect(s.stderr).toContain("install.sh: connector status did not answer within 2 s (exit 42):");
    expect(s.stderr).toContain("journal: last lines");
    expect(s.stderr).toContain(
      "install.sh: the service did not start: see systemctl status connector and journalctl -u connector",
    );
  });

  test("a revoked identity: exit 8 at once", async () => {
    const s = await step("start_service", statusSequence([45]));
    expect(s.code, where(s)).toBe(8);
    expect(s.stderr).toContain("install.sh: this connector's identity is revoked");
    expect(readFileSync(join(s.fake, "count"), "utf8").trim()).toBe("1");
  });

  test("no systemd: nothing started, the foreground command printed", async () => {
    const s = await step("CHANGED_UNITS=1\nstart_service", (fake) => fakeConnector(fake, 0));
    expect(s.code, where(s)).toBe(0);
    expect(s.stderr).toBe(
      "install.sh: systemd is not running on this host: the units are installed but nothing was started.\n" +
        "install.sh: run the daemon in the foreground with: runuser -u connector -- /usr/local/bin/connector run\n",
    );
    expect(s.log("systemctl.log")).toEqual([]);
  });
});
