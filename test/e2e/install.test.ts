/**
 * The README's install line on a real systemd: a booted nspawn container (test/support/nspawn.ts) with
 * the reference cloud inside serving signed releases (`--releases`), and, as root there, exactly
 *
 *   curl -fsSL <base>/install.sh | bash -s -- --key '<provisioning key>'
 *
 * 1. release A (9.1.0) installed: the service runs as `connector`, files, modes and owners as
 *    install.sh promises, the key in no file, unit, journal line or other process's argv;
 * 2. the same line again changes nothing and restarts nothing;
 * 3. release B (9.2.0) published, the line again: upgraded in place, the identity kept;
 * 4. `--uninstall` keeps the identity and the user, `--purge` removes them;
 * 5. on a host where systemd is not running (an unbooted container), the same line installs the files,
 *    enrolls and prints how to run the daemon in the foreground, and that command connects.
 * Versions are above the repository's own so no build of this tree is ever "newer" than the releases.
 * Needs root and systemd-nspawn (CI installs systemd-container); without them every test fails saying so.
 */
import { afterAll, describe, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startCloud, type CloudJson, type CloudProcess } from "../support/cloud-process.ts";
import {
  filesHolding,
  makeMarker,
  ownersAndModes,
  runInstallLine,
  secretNeedles,
  transcriptOf,
  type InstallRun,
} from "../support/install-host.ts";
import { createContainer, type Container } from "../support/nspawn.ts";
import { runPlainContainer } from "../support/nspawn-plain.ts";
import { makeKeys } from "../support/release-keys.ts";
import { buildRelease, type BuiltRelease } from "../support/releases.ts";
import {
  containerLogs,
  INSTALLED_BINARY,
  SERVICE_USER,
  startReferenceCloud,
  STATE_DIR,
  UNITS,
  until,
} from "../support/systemd-host.ts";
import type { StatusSnapshot } from "../../src/status/schema.ts";

const ETC_DIR = "/etc/connector";
const ENV_FILE = `${ETC_DIR}/connector.env`;
const UNIT_PATHS = UNITS.map((unit) => `/etc/systemd/system/${unit}`);
const PREV_BINARY = `${INSTALLED_BINARY}.prev`;
const IDENTITY_DIR = `${STATE_DIR}/identity`;
/** Made before the cloud (and so the key) exists: files changed later are the ones searched for the key. */
const MARKER = "/var/install-test.marker";
/** Where the key must not be: everything an installer could write, /proc and /sys aside. */
const SEARCHED = ["/etc", "/var", "/usr/local", "/run", "/root", "/tmp", "/home"];
/** Above every wait inside a test: an install (up to 90 s for status) and a connection. */
const TEST_TIMEOUT_MS = 400_000;

let ct: Container | undefined;
let cloud: CloudJson;
let baseUrl: string;
let releasesDir: string;
const built: Record<string, BuiltRelease> = {};
/** The installer's last run: its output goes into every failure message. */
let lastRun: InstallRun | undefined;
/** Every run of the line with the key, for the key checks. */
const keyedRuns: InstallRun[] = [];

// Cleanup is registered before anything is mounted: the container goes in every outcome.
afterAll(async () => {
  await ct?.stop();
}, 120_000);

async function withLogs(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    const installer = lastRun
      ? `--- installer: ${lastRun.shown} (exit ${lastRun.code}) ---\n${lastRun.stdout.slice(-6000)}${lastRun.stderr.slice(-2000)}`
      : "(installer not run)";
    const logs = ct ? await containerLogs(ct, 60).catch((e: unknown) => `(no logs: ${String(e)})`) : "(no container)";
    throw new Error(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n${installer}\n${logs}`);
  }
}

/** The README line with `args`; printed as the operator saw it. */
async function install(args: readonly string[], secret?: string): Promise<InstallRun> {
  lastRun = await runInstallLine(ct!, baseUrl, args, secret === undefined ? {} : { secret });
  if (secret !== undefined) keyedRuns.push(lastRun);
  console.log(`--- transcript ---\n${transcriptOf(lastRun)}--- end transcript ---`);
  return lastRun;
}

const show = async (unit: string, property: string) =>
  (await ct!.run(["systemctl", "show", unit, "-p", property, "--value"])).trim();
const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
const installedSha = async (path: string) => (await ct!.run(["sha256sum", path])).split(" ")[0];

/** `connector status --json` as root, through PATH as the operator types it. */
async function status(): Promise<{ code: number; snapshot: StatusSnapshot | undefined; text: string }> {
  const result = await ct!.exec(["connector", "status", "--json"], { timeoutMs: 15_000 });
  try {
    return { code: result.code, snapshot: JSON.parse(result.stdout) as StatusSnapshot, text: result.stdout };
  } catch {
    return { code: result.code, snapshot: undefined, text: `${result.stdout}${result.stderr}` };
  }
}

async function statusUntil(
  what: string,
  ok: (s: StatusSnapshot, code: number) => boolean,
  timeoutMs = 90_000,
): Promise<StatusSnapshot> {
  let last = "";
  return until(
    what,
    timeoutMs,
    async () => {
      const { code, snapshot, text } = await status();
      last = `exit ${code}: ${text.slice(-1500)}`;
      return snapshot && ok(snapshot, code) ? snapshot : undefined;
    },
    async () => `last status ${last}\n${await containerLogs(ct!)}`,
  );
}

/** Inode and modification time of the installed files: a rewrite (even of equal bytes) changes them. */
async function fileIdentities(): Promise<string> {
  return ct!.run(["stat", "-c", "%n %i %y", INSTALLED_BINARY, ENV_FILE, ...UNIT_PATHS]);
}

/**
 * How often PID 1 has reloaded its units so far. Not NeedDaemonReload alone: that says nothing of a
 * reload that was done without need (on systemd 252 every `systemctl enable` does one, even of a unit
 * already enabled).
 */
async function daemonReloads(): Promise<number> {
  const out = await ct!.run(["journalctl", "--no-pager", "-o", "cat", "_PID=1"]);
  return out.split("\n").filter((line) => /^Reloading/.test(line)).length;
}

/** The key in no file changed since the marker, no unit, no journal line and not in the installer's output. */
async function expectKeyNowhere(run: InstallRun): Promise<void> {
  const key = cloud.provisioningKey;
  // ct.shared is the test's own directory (cloud.json holds the key, by the cloud's contract).
  expect(await filesHolding(ct!, key, MARKER, SEARCHED, [ct!.shared])).toEqual([]);
  const pieces = (text: string) => secretNeedles(key).filter((needle) => text.includes(needle));
  const units = await ct!.run(["systemctl", "cat", ...UNITS]);
  expect(units).toContain("[Service]");
  expect(pieces(units)).toEqual([]);
  const journal = await ct!.run(["journalctl", "--no-pager", "-o", "cat"], { timeoutMs: 60_000 });
  expect(journal).toContain("connector"); // the whole journal, the installer's runs included
  expect(pieces(journal)).toEqual([]);
  expect(pieces(`${run.stdout}${run.stderr}`)).toEqual([]);
}

/** Publishing is a rename into the served directory: the release server never sees half a release. */
function publish(name: string): void {
  renameSync(built[name]!.out, join(releasesDir, name));
}

/** A published release's binary for this machine. */
const released = (name: string) => join(releasesDir, name, `connector-${built[name]!.target}`);

beforeAll(async () => {
  ct = createContainer();
  await ct.boot();
  await makeMarker(ct, MARKER);
  releasesDir = join(ct.shared, "releases");
  mkdirSync(releasesDir);
  ({ cloud } = await startReferenceCloud(ct, { cloudArgs: ["--releases", releasesDir] }));
  if (!cloud.releases) throw new Error(`the reference cloud serves no releases: ${JSON.stringify(cloud)}`);
  baseUrl = cloud.releases.baseUrl;
  const keys = makeKeys(join(ct.shared, "keys"));
  // Built after the cloud printed its URL: install.sh and the binary carry it baked in.
  for (const [name, version, sequence] of [
    ["a", "9.1.0", 1],
    ["b", "9.2.0", 2],
  ] as const) {
    built[name] = await buildRelease({
      keys,
      version,
      channel: "stable",
      sequence,
      baseUrl,
      out: join(ct.shared, "built", name),
    });
  }
  publish("a");
}, 900_000);

describe("curl -fsSL <base>/install.sh | bash -s -- --key KEY", () => {
  test(
    "installs release A, enrolls and starts connector.service as the connector user",
    () =>
      withLogs(async () => {
        const run = await install(["--key", cloud.provisioningKey], cloud.provisioningKey);
        expect(run.code).toBe(0);
        expect(await show("connector.service", "ActiveState")).toBe("active");
        expect(await show("connector-upgrade.path", "ActiveState")).toBe("active");
        expect(await show("connector.service", "UnitFileState")).toBe("enabled");
        const pid = Number(await show("connector.service", "MainPID"));
        expect(pid).toBeGreaterThan(0);
        // The owner of /proc/PID is the process's user.
        expect((await ct!.run(["stat", "-c", "%U", `/proc/${pid}`])).trim()).toBe(SERVICE_USER);
        expect(await installedSha(INSTALLED_BINARY)).toBe(sha256(released("a")));
        const connected = await statusUntil("connector status exit 0 (connected)", (_, code) => code === 0);
        expect(connected.version).toBe("9.1.0");
        expect(connected.connectorId).toBeTruthy();
      }),
    TEST_TIMEOUT_MS,
  );

  test(
    "files, modes and owners: root's binary, config and units; the connector user's state",
    () =>
      withLogs(async () => {
        expect(await ownersAndModes(ct!, [INSTALLED_BINARY, ETC_DIR, ENV_FILE, STATE_DIR, ...UNIT_PATHS])).toEqual({
          [INSTALLED_BINARY]: "root:root 755",
          [ETC_DIR]: `root:${SERVICE_USER} 750`,
          [ENV_FILE]: `root:${SERVICE_USER} 640`,
          [STATE_DIR]: `${SERVICE_USER}:${SERVICE_USER} 700`,
          ...Object.fromEntries(UNIT_PATHS.map((path) => [path, "root:root 644"])),
        });
        const identity = (await ct!.run(["find", IDENTITY_DIR, "-type", "f"])).trim().split("\n");
        expect(identity).toContain(`${IDENTITY_DIR}/identity.json`);
        expect(identity).toContain(`${IDENTITY_DIR}/key.pem`);
        for (const [path, mode] of Object.entries(await ownersAndModes(ct!, identity)))
          expect({ path, mode }).toEqual({ path, mode: `${SERVICE_USER}:${SERVICE_USER} 600` });
        // Settings only: the proxy, and where upgrades come from when not the baked defaults; never the key.
        const settings = (await ct!.run(["cat", ENV_FILE]))
          .split("\n")
          .filter((line) => line.trim() !== "" && !line.startsWith("#"));
        for (const line of settings)
          expect(line).toMatch(/^CONNECTOR_(PROXY|NO_PROXY|CHANNEL|MANIFEST_URL|PIN_VERSION)=/);
        // A system user whose home is the state dir and who cannot log in.
        const [, , uid, , , home, shell] = (await ct!.run(["getent", "passwd", SERVICE_USER])).trim().split(":");
        expect(Number(uid)).toBeLessThan(1000);
        expect(home).toBe(STATE_DIR);
        expect(shell).toMatch(/\/(nologin|false)$/);
        // The units installed are the packaged ones, byte for byte.
        for (const unit of UNITS)
          expect(await installedSha(`/etc/systemd/system/${unit}`)).toBe(
            sha256(join(import.meta.dir, "..", "..", "packaging", "systemd", unit)),
          );
      }),
    TEST_TIMEOUT_MS,
  );

  test(
    "the key is in no file, no unit, no journal line and no other process's argv",
    () =>
      withLogs(async () => {
        const run = keyedRuns[0]!;
        // The watch did run while the installer did (a watch that never looked would pass anything).
        expect(run.argvScans).toBeGreaterThan(10);
        expect(run.argvOffenders).toEqual([]);
        await expectKeyNowhere(run);
      }),
    TEST_TIMEOUT_MS,
  );

  test(
    "systemd-analyze verify is clean for the three installed units",
    () =>
      withLogs(async () => {
        for (const path of UNIT_PATHS) {
          const verify = await ct!.exec(["systemd-analyze", "verify", path]);
          expect({ path, ...verify }).toEqual({ path, code: 0, stdout: "", stderr: "" });
        }
        for (const unit of ["connector.service", "connector-upgrade.service", "ssh.service"]) {
          const report = await ct!.exec(["systemd-analyze", "security", "--no-pager", unit]);
          console.log(
            `--- systemd-analyze security ${unit} (exit ${report.code}) ---\n${report.stdout}${report.stderr}--- end security ---`,
          );
        }
      }),
    TEST_TIMEOUT_MS,
  );

  test(
    "the same line again: exit 0, unchanged, nothing rewritten or restarted",
    () =>
      withLogs(async () => {
        const before = {
          pid: await show("connector.service", "MainPID"),
          restarts: await show("connector.service", "NRestarts"),
          files: await fileIdentities(),
          reloads: await daemonReloads(),
        };
        const run = await install(["--key", cloud.provisioningKey], cloud.provisioningKey);
        expect(run.code).toBe(0);
        expect(`${run.stdout}${run.stderr}`).toMatch(/unchanged/i);
        expect(run.argvOffenders).toEqual([]);
        const after = {
          pid: await show("connector.service", "MainPID"),
          restarts: await show("connector.service", "NRestarts"),
          files: await fileIdentities(),
          reloads: await daemonReloads(),
        };
        expect(after).toEqual(before);
        for (const unit of UNITS) expect(await show(unit, "NeedDaemonReload")).toBe("no");
        expect(await show("connector.service", "ActiveState")).toBe("active");
      }),
    TEST_TIMEOUT_MS,
  );

  test(
    "release B published, the line again: upgraded in place to 9.2.0, the identity kept; then no key needed",
    () =>
      withLogs(async () => {
        // The daemon upgrades itself from the same release host (its URL is baked in): left on, it could
        // take B on its own while the installer runs, and the test would not know which of the two did.
        // install.sh keeps the env values it is not given, so this setting survives the re-run.
        await ct!.run(["sh", "-c", `echo CONNECTOR_AUTO_UPGRADE=off >> ${ENV_FILE}`]);
        await ct!.run(["systemctl", "restart", "connector.service"], { timeoutMs: 120_000 });
        const onA = await statusUntil(
          "connected on 9.1.0 after the restart",
          (s, code) => code === 0 && s.version === "9.1.0",
        );
        publish("b");
        const run = await install(["--key", cloud.provisioningKey], cloud.provisioningKey);
        expect(run.code).toBe(0);
        expect(run.argvOffenders).toEqual([]);
        expect((await ct!.run(["connector", "--version"])).trim()).toStartWith("connector 9.2.0");
        const onB = await statusUntil("connected on 9.2.0", (s, code) => code === 0 && s.version === "9.2.0");
        expect(onB.connectorId).toBe(onA.connectorId);
        expect(await installedSha(INSTALLED_BINARY)).toBe(sha256(released("b")));
        expect(await installedSha(PREV_BINARY)).toBe(sha256(released("a")));
        expect(await ownersAndModes(ct!, [INSTALLED_BINARY])).toEqual({ [INSTALLED_BINARY]: "root:root 755" });
        expect(await ct!.run(["cat", ENV_FILE])).toContain("CONNECTOR_AUTO_UPGRADE=off");
        expect(Number(await show("connector.service", "MainPID"))).toBe(onB.pid!);
        // The key went through preflight again (the identity made enrollment unnecessary): still nowhere.
        await expectKeyNowhere(run);
        // An enrolled host needs no key: root's preflight judges the connector user's state dir for that
        // user, and the run changes nothing.
        const keyless = await install([]);
        expect(keyless.code).toBe(0);
        expect(`${keyless.stdout}${keyless.stderr}`).toMatch(/unchanged/i);
        expect(Number(await show("connector.service", "MainPID"))).toBe(onB.pid!);
      }),
    TEST_TIMEOUT_MS,
  );
});

describe("removal", () => {
  test(
    "--uninstall: units, service, binaries and config gone; identity and user kept",
    () =>
      withLogs(async () => {
        const run = await install(["--uninstall"]);
        expect(run.code).toBe(0);
        for (const path of [...UNIT_PATHS, INSTALLED_BINARY, PREV_BINARY, ETC_DIR])
          expect({ path, exists: (await ct!.exec(["test", "-e", path])).code === 0 }).toEqual({ path, exists: false });
        expect(await show("connector.service", "LoadState")).toBe("not-found");
        expect(await show("connector-upgrade.path", "LoadState")).toBe("not-found");
        expect((await ct!.exec(["pgrep", "-u", SERVICE_USER])).stdout.trim()).toBe("");
        expect((await ct!.exec(["test", "-f", `${IDENTITY_DIR}/identity.json`])).code).toBe(0);
        expect((await ct!.exec(["getent", "passwd", SERVICE_USER])).code).toBe(0);
      }),
    TEST_TIMEOUT_MS,
  );

  test(
    "--purge: the state dir and the user gone too",
    () =>
      withLogs(async () => {
        const run = await install(["--purge"]);
        expect(run.code).toBe(0);
        expect((await ct!.exec(["test", "-e", STATE_DIR])).code).not.toBe(0);
        expect((await ct!.exec(["getent", "passwd", SERVICE_USER])).code).not.toBe(0);
        expect((await ct!.exec(["getent", "group", SERVICE_USER])).code).not.toBe(0);
      }),
    TEST_TIMEOUT_MS,
  );
});

describe("a host without systemd running", () => {
  let hostCloud: CloudProcess | undefined;
  let hostReleases: string | undefined;
  let hostKeys: string | undefined;

  // Cleanup first: the cloud and its releases go in every outcome.
  afterAll(async () => {
    await hostCloud?.stop();
    for (const dir of [hostReleases, hostKeys]) if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  beforeAll(async () => {
    // The unbooted container shares the host's network: the cloud runs on the host, at its own URL,
    // and the release is built for that URL.
    hostReleases = mkdtempSync("/var/tmp/install-releases-");
    hostCloud = await startCloud({ releases: hostReleases, gateways: 1 });
    const base = hostCloud.releases?.baseUrl;
    if (!base) throw new Error(`the reference cloud serves no releases: ${hostCloud.output()}`);
    hostKeys = mkdtempSync("/var/tmp/install-keys-");
    const keys = makeKeys(join(hostKeys, "keys"));
    const release = await buildRelease({
      keys,
      version: "9.1.0",
      channel: "stable",
      sequence: 1,
      baseUrl: base,
      out: join(hostKeys, "a"),
    });
    renameSync(release.out, join(hostReleases, "a"));
  }, 600_000);

  test("the line installs and enrolls, prints the foreground command, and that command connects", async () => {
    const cloudNow = hostCloud!;
    const line = `curl -fsSL ${cloudNow.releases!.baseUrl}/install.sh | bash -s -- --key '${cloudNow.provisioningKey}'`;
    // The script arrives on stdin (never in an argv); every step prints a line the test reads back.
    const script = [
      "exec 2>&1",
      `out=$(${line} 2>&1); code=$?`,
      "printf '%s\\n' \"$out\"",
      'echo "install-exit=$code"',
      `stat -c 'stat %n|%U:%G %a' ${[INSTALLED_BINARY, ETC_DIR, ENV_FILE, STATE_DIR, ...UNIT_PATHS].join(" ")}`,
      `test -f ${IDENTITY_DIR}/identity.json && echo identity=yes`,
      // The command exactly as the installer printed it, run as printed.
      `fg=$(printf '%s\\n' "$out" | grep -o 'runuser -u connector -- [^ ]*connector run' | head -n 1)`,
      'echo "foreground=$fg"',
      'if [ -n "$fg" ]; then',
      "  $fg </dev/null >/tmp/run.log 2>&1 &",
      "  pid=$!",
      "  for i in $(seq 1 180); do connector status >/dev/null 2>&1 && break; sleep 0.5; done",
      '  connector status >/dev/null 2>&1; echo "status-exit=$?"',
      "  kill -TERM $pid; for i in $(seq 1 60); do kill -0 $pid 2>/dev/null || break; sleep 0.5; done",
      "  tail -n 5 /tmp/run.log",
      "fi",
    ].join("\n");
    const result = await runPlainContainer(`${script}\n`, { timeoutMs: 300_000 });
    const out = result.stdout;
    const transcript = `# ${line.replace(cloudNow.provisioningKey, "<provisioning key>")}\n${out.slice(0, out.indexOf("install-exit="))}`;
    console.log(`--- transcript (no systemd) ---\n${transcript}--- end transcript ---`);
    const context = `container output:\n${out.slice(-6000)}\n${result.stderr.slice(-2000)}\ncloud:\n${cloudNow.output().slice(-2000)}`;
    try {
      expect(out).toContain("install-exit=0");
      expect(out).toMatch(/systemd is not running/);
      expect(out).toContain("identity=yes");
      const stats = Object.fromEntries([...out.matchAll(/^stat (\S+)\|(.+)$/gm)].map((m) => [m[1], m[2]]));
      expect(stats).toEqual({
        [INSTALLED_BINARY]: "root:root 755",
        [ETC_DIR]: `root:${SERVICE_USER} 750`,
        [ENV_FILE]: `root:${SERVICE_USER} 640`,
        [STATE_DIR]: `${SERVICE_USER}:${SERVICE_USER} 700`,
        ...Object.fromEntries(UNIT_PATHS.map((path) => [path, "root:root 644"])),
      });
      expect(out).toMatch(/^foreground=runuser -u connector -- (\/usr\/local\/bin\/)?connector run$/m);
      expect(out).toContain("status-exit=0");
      for (const needle of secretNeedles(cloudNow.provisioningKey)) expect(out).not.toContain(needle);
    } catch (err) {
      throw new Error(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n${context}`);
    }
  }, 400_000);
});
