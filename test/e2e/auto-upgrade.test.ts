/**
 * The daemon upgrades itself, end to end, without systemd (it may replace its own binary here, so it
 * applies releases itself): release A runs and serves a steady load of new user connections plus one
 * long-lived stream; release B is published → the daemon takes it, hands over, and no user connection
 * fails. Release C, whose tunnels the cloud refuses, is published → the hand-over's health gate fails,
 * connector.prev (B) is restored, C is marked skipped, and users never lose service.
 * (test/e2e/systemd-upgrade.test.ts does the same under a real systemd with the privilege split.)
 */
import { afterAll, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startCloud, type CloudProcess } from "../support/cloud-process.ts";
import { allTunnelsUp, startDaemon, type DaemonProcess } from "../support/daemon-process.ts";
import { makeKeys } from "../support/release-keys.ts";
import { buildRelease, type BuiltRelease } from "../support/releases.ts";
import { until } from "../support/wait.ts";
import type { StatusSnapshot } from "../../src/status/schema.ts";

let tmp: string;
let echo: ReturnType<typeof Bun.spawn>;
let cloud: CloudProcess;
let daemon: DaemonProcess;
const builds: Record<string, BuiltRelease> = {};
let load: ReturnType<typeof Bun.spawn> | undefined;
const loadLines: string[] = [];
let keep = false;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "auto-upgrade-e2e-"));
  const keys = makeKeys(join(tmp, "keys"));
  mkdirSync(join(tmp, "releases"));
  for (const [name, version, sequence] of [
    ["a", "1.0.0", 1],
    ["b", "1.1.0", 2],
    ["c", "1.2.0", 3],
  ] as const) {
    builds[name] = await buildRelease({ keys, version, channel: "stable", sequence, out: join(tmp, "built", name) });
  }
  publish("a");
  // The app runs in its own process: this test reads 100 MiB binaries, which must not stall the app.
  const portFile = join(tmp, "echo.port");
  echo = Bun.spawn(
    [process.execPath, join(import.meta.dir, "..", "support", "scripts", "echo-app.ts"), "serve", portFile],
    { stdout: "inherit", stderr: "inherit" },
  );
  const port = await until(
    "the echo app's port",
    () => (existsSync(portFile) ? readFileSync(portFile, "utf8").trim() : undefined),
    30_000,
  );
  cloud = await startCloud({ gateways: 2, apps: [`echo=127.0.0.1:${port}`], releases: join(tmp, "releases") });
}, 600_000);

afterAll(async () => {
  load?.kill("SIGKILL");
  const pid = (await daemon?.status().catch(() => undefined))?.snapshot?.pid;
  await daemon?.stop(10_000);
  // After a hand-over the daemon answering is the successor, not the process the test started.
  if (pid !== undefined && pid !== daemon?.proc.pid) killAndWait(pid);
  await cloud?.stop();
  echo?.kill();
  if (keep || process.env.KEEP_E2E) {
    await Bun.write(join(tmp, "daemon.log"), daemon?.output() ?? "");
    console.error(`auto-upgrade e2e: kept ${tmp}`);
  } else rmSync(tmp, { recursive: true, force: true });
});

function killAndWait(pid: number): void {
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  for (let i = 0; i < 200 && existsSync(`/proc/${pid}`); i++) Bun.sleepSync(50);
  if (existsSync(`/proc/${pid}`)) process.kill(pid, "SIGKILL");
}

/** Publishing is a rename into the served directory: the server never sees half a release. */
function publish(name: string): void {
  renameSync(builds[name]!.out, join(tmp, "releases", name));
}

const sameBytes = (path: string, name: string) =>
  readFileSync(path).equals(readFileSync(join(tmp, "releases", name, `connector-${builds[name]!.target}`)));

function logs(): string {
  Bun.write(join(tmp, "daemon.log"), daemon.output());
  return `--- user load ---\n${loadLines.slice(-5).join("\n")}\n--- connector (old and new) ---\n${daemon.output().slice(-8000)}\n--- cloud ---\n${cloud.output().slice(-3000)}`;
}

/** Status until `ok`, whichever process answers (the one the test started exits at its hand-over). */
async function statusUntil(
  what: string,
  ok: (s: StatusSnapshot) => boolean,
  timeoutMs: number,
): Promise<StatusSnapshot> {
  return until(
    what,
    async () => {
      const { snapshot } = await daemon.status();
      return snapshot && ok(snapshot) ? snapshot : undefined;
    },
    timeoutMs,
    async () => (await daemon.status()).snapshot,
  );
}

async function loadStats(): Promise<{
  ok: number;
  failed: number;
  long: string;
  reasons?: string[];
  maxLatencyMs: number;
}> {
  const line = await until("a user-load report", () => loadLines.at(-1), 30_000);
  return JSON.parse(line);
}

test("A → B by itself with zero failed user connections; C that never comes up is rolled back to B and skipped", async () => {
  const bin = join(tmp, "bin", "connector");
  mkdirSync(join(tmp, "bin"));
  copyFileSync(join(tmp, "releases", "a", `connector-${builds.a!.target}`), bin);
  chmodSync(bin, 0o755);
  const manifestUrl = cloud.releases!.channels.stable!.manifestUrl;
  daemon = await startDaemon({
    binary: bin,
    key: cloud.provisioningKey,
    tunnels: 2,
    // A long grace period: the long-lived stream stays on the process it began on, whatever happens meanwhile.
    gracePeriodSeconds: 600,
    extraArgs: ["--manifest-url", manifestUrl, "--upgrade-interval", "10", "--upgrade-health-timeout", "20"],
  });
  try {
    await daemon.waitFor("connected", allTunnelsUp(2), 60_000);
    const first = (await daemon.status()).snapshot!;
    expect(first.version).toBe("1.0.0");

    load = Bun.spawn(
      [
        process.execPath,
        join(import.meta.dir, "..", "support", "scripts", "user-load.ts"),
        cloud.apps.echo!.listen!,
        "20",
      ],
      { stdin: "pipe", stdout: "pipe", stderr: "inherit" },
    );
    void (async () => {
      const decoder = new TextDecoder();
      let buffer = "";
      for await (const chunk of load!.stdout as ReadableStream<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        const lines = buffer.split("\n");
        buffer = lines.pop()!;
        loadLines.push(...lines.filter((l) => l.startsWith("{")));
      }
    })();
    await until(
      "the long-lived stream to be up",
      async () => ((await loadStats()).long === "alive" ? true : undefined),
      60_000,
    );

    // B: taken at the next check, installed, handed over to.
    publish("b");
    const onB = await statusUntil(
      "upgraded to 1.1.0",
      (s) => s.version === "1.1.0" && s.state === "connected",
      180_000,
    );
    expect(onB.pid).not.toBe(first.pid);
    expect(sameBytes(bin, "b")).toBe(true);
    expect(sameBytes(`${bin}.prev`, "a")).toBe(true);
    expect(onB.upgrade?.lastOutcome).toMatchObject({ from: "1.0.0", to: "1.1.0", result: "installed" });
    const afterB = await loadStats();
    expect(afterB.failed).toBe(0);
    expect(afterB.long).toBe("alive");

    // C: its tunnels are refused, so its hand-over never completes: rolled back to B.
    await cloud.refuseVersion("1.2.0");
    publish("c");
    const rolledBack = await statusUntil(
      "C rolled back",
      (s) => (s.upgrade?.skipped ?? []).includes("1.2.0") && s.upgrade?.lastOutcome?.result === "rolled-back",
      240_000,
    );
    expect(rolledBack.version).toBe("1.1.0");
    expect(rolledBack.pid).toBe(onB.pid); // the process on B never stopped serving
    expect(sameBytes(bin, "b")).toBe(true);
    // C is not taken again at the next checks.
    const reports = await cloud.upgradeReports();
    expect(reports.map((r) => `${r.result}${r.code ? `:${r.code}` : ""}`)).toEqual(
      expect.arrayContaining(["installed", "failed:HEALTH_GATE_FAILED", "rolled-back"]),
    );

    (load.stdin as import("bun").FileSink).end();
    const final = JSON.parse(
      await until("the final user-load report", () => loadLines.find((l) => l.includes('"final":true')), 30_000),
    );
    console.log(
      `auto-upgrade e2e: ${final.ok} user connections, ${final.failed} failed, longest connect+echo ${final.maxLatencyMs.toFixed(1)} ms at ${final.maxLatencyAt}, long-lived stream ${final.long} after ${final.longRoundTrips} round trips; over 500 ms: ${final.slow.join(", ") || "none"}`,
    );
    expect(final.failed).toBe(0);
    expect(final.long).toBe("alive");
    // The first process drained: once its last (long-lived) stream ended, it left with 0.
    expect(await daemon.proc.exited).toBe(0);
  } catch (err) {
    keep = true;
    throw new Error(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n${logs()}`);
  }
}, 600_000);
