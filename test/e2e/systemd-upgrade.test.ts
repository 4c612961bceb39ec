/**
 * Signed self-upgrade under a real systemd, installed as an operator would (test/support/
 * systemd-host.ts: root-owned binary, `connector` system user, the units of packaging/systemd):
 *   1. release A runs; release B is published → the unprivileged daemon stages it, the path unit
 *      starts the root oneshot, which verifies and swaps; the hand-over moves systemd's MainPID to B
 *      with zero failed user connections while a long-lived stream stays on A; status shows B.
 *   2. release C, whose tunnels the cloud refuses, is published → staged, swapped, its hand-over never
 *      completes: connector.prev (B) is restored by the oneshot, C is marked skipped, and the process
 *      on B — which never stopped serving — carries on. Users never lose service.
 * Needs root and systemd-nspawn (CI installs systemd-container); without them it fails saying so.
 */
import { afterAll, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { createContainer, type Container } from "../support/nspawn.ts";
import { makeKeys } from "../support/release-keys.ts";
import { buildRelease, type BuiltRelease } from "../support/releases.ts";
import { containerLogs, INSTALLED_BINARY, setUpSystemdHost, until, type SystemdHost } from "../support/systemd-host.ts";
import type { StatusSnapshot } from "../../src/status/schema.ts";

const ROOT = join(import.meta.dir, "..", "..");
const BUN = join(ROOT, "node_modules", ".bin", "bun");
const USER_LOAD = join(ROOT, "test", "support", "scripts", "user-load.ts");
const ENV_FILE = "/etc/connector/connector.env";

let ct: Container | undefined;
let host: SystemdHost;
const built: Record<string, BuiltRelease> = {};
let loadFile: string;

afterAll(async () => {
  await ct?.stop();
}, 120_000);

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

async function installedSha(path = INSTALLED_BINARY): Promise<string> {
  return (await ct!.run(["sha256sum", path])).split(" ")[0]!;
}

async function snapshot(): Promise<StatusSnapshot | undefined> {
  const result = await host.status();
  try {
    return JSON.parse(result.stdout) as StatusSnapshot;
  } catch {
    return undefined;
  }
}

async function statusUntil(
  what: string,
  ok: (s: StatusSnapshot) => boolean,
  timeoutMs: number,
): Promise<StatusSnapshot> {
  let last: StatusSnapshot | undefined;
  return until(
    what,
    timeoutMs,
    async () => {
      last = await snapshot();
      return last && ok(last) ? last : undefined;
    },
    async () => `last status: ${JSON.stringify(last)}\n${await logs()}`,
  );
}

async function logs(): Promise<string> {
  const load = readFileSync(loadFile, "utf8").split("\n").filter(Boolean).slice(-3).join("\n");
  return `--- user load ---\n${load}\n${await containerLogs(ct!, 80)}`;
}

function loadReports(): {
  ok: number;
  failed: number;
  long: string;
  final?: boolean;
  maxLatencyMs: number;
  maxLatencyAt: string;
  longRoundTrips: number;
  reasons?: string[];
  slow?: string[];
}[] {
  return readFileSync(loadFile, "utf8")
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
}

/** A published release's binary for this machine. */
const released = (name: string) => join(ct!.shared, "releases", name, `connector-${built[name]!.target}`);

/** Publishing is a rename into the served directory: the release server never sees half a release. */
function publish(name: string): void {
  renameSync(built[name]!.out, join(ct!.shared, "releases", name));
}

async function mainPid(): Promise<number> {
  return Number(await host.show("connector.service", "MainPID"));
}

async function oneshotRuns(): Promise<number> {
  const out = await ct!.run(["journalctl", "--no-pager", "-o", "cat", "-u", "connector-upgrade.service"]);
  return out.split("\n").filter((l) => /Upgraded|Rolled back|refused|failed/.test(l)).length;
}

beforeAll(async () => {
  ct = createContainer();
  await ct.boot();
  const keys = makeKeys(join(ct.shared, "keys"));
  mkdirSync(join(ct.shared, "releases"));
  for (const [name, version, sequence] of [
    ["a", "1.0.0", 1],
    ["b", "1.1.0", 2],
    ["c", "1.2.0", 3],
  ] as const) {
    built[name] = await buildRelease({
      keys,
      version,
      channel: "stable",
      sequence,
      out: join(ct.shared, "built", name),
    });
  }
  publish("a");
  host = await setUpSystemdHost(ct, { binary: released("a"), cloudArgs: ["--releases", join(ct.shared, "releases")] });
  const manifestUrl = host.cloud.releases?.channels.stable?.manifestUrl;
  if (!manifestUrl)
    throw new Error(`the reference cloud serves no stable channel: ${JSON.stringify(host.cloud.releases)}`);
  // Checks every 10 s; a long grace period so the long-lived stream outlives every hand-over.
  await ct.run(["sh", "-c", `mkdir -p /etc/connector && umask 027 && cat > ${ENV_FILE}`], {
    input: `CONNECTOR_MANIFEST_URL=${manifestUrl}\nCONNECTOR_UPGRADE_INTERVAL=10\nCONNECTOR_UPGRADE_HEALTH_TIMEOUT=30\nCONNECTOR_GRACE_PERIOD=600\n`,
  });
  await ct.run(["chgrp", "connector", ENV_FILE]);
  await ct.run(["systemctl", "restart", "connector.service"], { timeoutMs: 120_000 });
  await host.waitConnected(90_000);
  // Users of the app: new connections every 20 ms and one long-lived stream, inside the container.
  loadFile = join(ct.shared, "load.jsonl");
  await ct.run([
    "systemd-run",
    "--collect",
    "--unit=userload",
    `--property=StandardOutput=file:${loadFile}`,
    "--property=StandardError=journal",
    BUN,
    USER_LOAD,
    host.echoListen,
    "20",
    "--until-sigterm",
  ]);
  await until(
    "the long-lived user stream",
    30_000,
    async () => (loadReports().at(-1)?.long === "alive" ? true : undefined),
    logs,
  );
}, 900_000);

test("B is staged by the daemon, swapped by the root oneshot, handed over with zero failed user connections", async () => {
  const before = await snapshot();
  expect(before?.version).toBe("1.0.0");
  const pidA = await mainPid();
  expect(before?.pid).toBe(pidA);

  publish("b");
  const onB = await statusUntil(
    "the connector on 1.1.0",
    (s) => s.version === "1.1.0" && s.state === "connected",
    300_000,
  );
  // systemd tracks the new process: MAINPID moved with the hand-over.
  expect(await mainPid()).toBe(onB.pid!);
  expect(onB.pid).not.toBe(pidA);
  expect(await host.show("connector.service", "ActiveState")).toBe("active");
  expect(await installedSha()).toBe(sha256(released("b")));
  expect(await installedSha(`${INSTALLED_BINARY}.prev`)).toBe(sha256(released("a")));
  expect((await ct!.run([INSTALLED_BINARY, "--version"])).trim()).toStartWith("connector 1.1.0");
  // Root did the swap (the daemon cannot write the binary): the oneshot ran.
  expect(await oneshotRuns()).toBeGreaterThanOrEqual(1);
  expect((await ct!.run(["stat", "-c", "%U:%G %a", INSTALLED_BINARY])).trim()).toBe("root:root 755");
  expect(onB.upgrade?.lastOutcome).toMatchObject({ from: "1.0.0", to: "1.1.0", result: "installed" });
  const load = loadReports().at(-1)!;
  expect(load.failed).toBe(0);
  expect(load.long).toBe("alive"); // still on A, which drains
}, 400_000);

test("C, whose tunnels the cloud refuses, is rolled back to B by itself and skipped; users never lose service", async () => {
  const pidB = await mainPid();
  await ct!.run([
    "curl",
    "-fsS",
    "-X",
    "POST",
    "-H",
    "content-type: application/json",
    "-d",
    '{"version":"1.2.0"}',
    `${host.cloud.adminUrl}/admin/refuse-version`,
  ]);
  publish("c");
  const rolledBack = await statusUntil(
    "C rolled back and skipped",
    (s) => (s.upgrade?.skipped ?? []).includes("1.2.0") && s.upgrade?.lastOutcome?.result === "rolled-back",
    400_000,
  );
  expect(rolledBack.version).toBe("1.1.0");
  expect(rolledBack.pid).toBe(pidB); // the process on B never stopped serving
  expect(await mainPid()).toBe(pidB);
  expect(await installedSha()).toBe(sha256(released("b")));
  expect(rolledBack.state).toBe("connected");
  const reports = JSON.parse(await ct!.run(["curl", "-fsS", `${host.cloud.adminUrl}/admin/upgrade-reports`])) as {
    result: string;
    code?: string;
  }[];
  expect(reports.map((r) => `${r.result}${r.code ? `:${r.code}` : ""}`)).toEqual(
    expect.arrayContaining(["installed", "failed:HEALTH_GATE_FAILED", "rolled-back"]),
  );

  await ct!.run(["systemctl", "stop", "userload"]);
  const final = await until("the final user-load report", 30_000, async () => loadReports().find((r) => r.final), logs);
  console.log(
    `systemd upgrade e2e: ${final.ok} user connections, ${final.failed} failed; longest connect+echo ${final.maxLatencyMs.toFixed(1)} ms at ${final.maxLatencyAt}; ` +
      `long-lived stream ${final.long} after ${final.longRoundTrips} round trips; over 500 ms: ${(final.slow ?? []).join(", ") || "none"}`,
  );
  expect(final.failed).toBe(0);
  expect(final.long).toBe("alive");
  // With its last stream gone, A (draining since the first hand-over) has left: one connector process.
  await until(
    "the first process to exit",
    60_000,
    async () =>
      (await ct!.run(["pgrep", "-c", "-f", `${INSTALLED_BINARY} run`]).catch(() => "0")).trim() === "1"
        ? true
        : undefined,
    logs,
  );
}, 600_000);
