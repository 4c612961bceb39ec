/**
 * A booted container (test/support/nspawn.ts) set up as an operator would run the connector: the
 * reference cloud and an echo app inside (transient units), the binary at /usr/local/bin/connector
 * (root:root 0755), a `connector` system user, the units of packaging/systemd in /etc/systemd/system,
 * an enrollment as that user from a 0600 key file that is removed afterwards, and
 * `systemctl enable --now connector connector-upgrade.path`.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { CloudJson } from "./cloud-process.ts";
import type { Container, ExecResult } from "./nspawn.ts";
import type { TransferResult } from "./apps.ts";

const ROOT = join(import.meta.dir, "..", "..");
const BUN = join(ROOT, "node_modules", ".bin", "bun");
export const UNITS_DIR = join(ROOT, "packaging", "systemd");
export const UNITS = ["connector.service", "connector-upgrade.path", "connector-upgrade.service"] as const;
export const INSTALLED_BINARY = "/usr/local/bin/connector";
export const SERVICE_USER = "connector";
export const STATE_DIR = "/var/lib/connector";
const KEY_FILE = "/run/connector-enroll.key";

export interface SystemdHostOptions {
  /** The binary to install; default this worktree's dist/connector. */
  readonly binary?: string;
  /** Gateways of the reference cloud; default 2 (the connector's default of 2 tunnels to distinct gateways). */
  readonly gateways?: number;
  /** More arguments for test/cloud/main.ts (e.g. --releases DIR). */
  readonly cloudArgs?: readonly string[];
}

export interface SystemdHost {
  readonly ct: Container;
  readonly cloud: CloudJson;
  /** Where users of the echo app connect, inside the container. */
  readonly echoListen: string;
  /** `connector status --json` as the service user. */
  status(): Promise<ExecResult>;
  /** Polls status until it exits 0 (connected) or the deadline. */
  waitConnected(timeoutMs?: number): Promise<void>;
  /** `systemctl show UNIT -p PROP --value`. */
  show(unit: string, property: string): Promise<string>;
  /** A user inside the container sends `bytes` to an app's gateway listener (default the echo app) and reads the echo. */
  userTransfer(bytes: number, app?: string): Promise<TransferResult>;
  /** Journal tails of the connector units and the cloud, and the console tail: for failure messages. */
  logs(lines?: number): Promise<string>;
}

/** Polls `probe` until it returns a value; the error carries `detail()` (logs) when the deadline passes. */
export async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  detail: () => Promise<string>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await Bun.sleep(200);
  }
  throw new Error(`${what} not within ${timeoutMs} ms\n${await detail()}`);
}

function readJson<T>(path: string): T | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    return undefined; // being written
  }
}

/** Starts the echo app and the reference cloud inside as transient units; resolves with cloud.json. */
export async function startReferenceCloud(
  ct: Container,
  options: SystemdHostOptions = {},
): Promise<{ cloud: CloudJson; echoListen: string }> {
  const journal = async () =>
    (await ct.exec(["journalctl", "--no-pager", "-n", "100", "-u", "echoapp", "-u", "refcloud"])).stdout;
  const portFile = join(ct.shared, "echo.port");
  const transient = ["systemd-run", "--collect", "--setenv=HOME=/root", "--setenv=NO_COLOR=1"];
  await ct.run([
    ...transient,
    "--unit=echoapp",
    BUN,
    join(ROOT, "test", "support", "scripts", "echo-app.ts"),
    "serve",
    portFile,
  ]);
  const port = await until("echo app port", 30_000, async () => readJson<number>(portFile), journal);
  const cloudDir = join(ct.shared, "cloud");
  await ct.run([
    ...transient,
    "--unit=refcloud",
    BUN,
    join(ROOT, "test", "cloud", "main.ts"),
    "--dir",
    cloudDir,
    "--gateways",
    String(options.gateways ?? 2),
    "--app",
    `echo=127.0.0.1:${port}`,
    ...(options.cloudArgs ?? []),
  ]);
  const cloud = await until(
    "cloud.json",
    60_000,
    async () => readJson<CloudJson>(join(cloudDir, "cloud.json")),
    journal,
  );
  const echoListen = cloud.apps.echo?.listen;
  if (!echoListen) throw new Error(`cloud.json has no user listener for the echo app: ${JSON.stringify(cloud)}`);
  return { cloud, echoListen };
}

/** Installs binary, user and units as the operator docs say. */
export async function installConnector(ct: Container, binary = join(ROOT, "dist", "connector")): Promise<void> {
  if (!existsSync(binary))
    throw new Error(`${binary} is missing: build it first with ./node_modules/.bin/bun build.ts --host`);
  await ct.run(["install", "-o", "root", "-g", "root", "-m", "0755", binary, INSTALLED_BINARY]);
  await ct.run([
    "useradd",
    "--system",
    "--user-group",
    "--no-create-home",
    "--home-dir",
    STATE_DIR,
    "--shell",
    "/usr/sbin/nologin",
    SERVICE_USER,
  ]);
  await ct.run([
    "install",
    "-o",
    "root",
    "-g",
    "root",
    "-m",
    "0644",
    ...UNITS.map((unit) => join(UNITS_DIR, unit)),
    "/etc/systemd/system/",
  ]);
  await ct.run(["systemctl", "daemon-reload"]);
}

/** Enrolls as the service user from a 0600 key file (never argv), then removes the file. */
export async function enrollAsServiceUser(ct: Container, key: string): Promise<void> {
  await ct.run(["install", "-d", "-o", SERVICE_USER, "-g", SERVICE_USER, "-m", "0700", STATE_DIR]);
  await ct.run(["sh", "-c", `umask 077 && cat > ${KEY_FILE} && chown ${SERVICE_USER}:${SERVICE_USER} ${KEY_FILE}`], {
    input: key,
  });
  try {
    await ct.run([INSTALLED_BINARY, "enroll", "--key-file", KEY_FILE, "--state-dir", STATE_DIR, "--name", ct.name], {
      user: SERVICE_USER,
    });
  } finally {
    await ct.run(["rm", "-f", KEY_FILE]);
  }
}

/** Journal tails of the connector units and the cloud, and the console's tail. */
export async function containerLogs(ct: Container, lines = 80): Promise<string> {
  const tail = async (unit: string) =>
    `--- journal ${unit} ---\n${(await ct.exec(["journalctl", "--no-pager", "-o", "cat", "-n", String(lines), "-u", unit]).catch((err: unknown) => ({ stdout: String(err) }))).stdout}`;
  const parts = await Promise.all(
    ["connector.service", "connector-upgrade.path", "connector-upgrade.service", "refcloud"].map(tail),
  );
  return [...parts, `--- console ---\n${ct.console(2000)}`].join("\n");
}

/** All of the above, then `systemctl enable --now` (which returns once the daemon said READY=1). */
export async function setUpSystemdHost(ct: Container, options: SystemdHostOptions = {}): Promise<SystemdHost> {
  const { cloud, echoListen } = await startReferenceCloud(ct, options);
  try {
    await installConnector(ct, options.binary);
    await enrollAsServiceUser(ct, cloud.provisioningKey);
    await ct.run(["systemctl", "enable", "--now", "connector.service", "connector-upgrade.path"], {
      timeoutMs: 120_000,
    });
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${await containerLogs(ct)}`);
  }
  const host: SystemdHost = {
    ct,
    cloud,
    echoListen,
    status: () =>
      ct.exec([INSTALLED_BINARY, "status", "--json", "--state-dir", STATE_DIR], {
        user: SERVICE_USER,
        timeoutMs: 15_000,
      }),
    async waitConnected(timeoutMs = 60_000) {
      let last: ExecResult | undefined;
      await until(
        "connector status exit 0 (connected)",
        timeoutMs,
        async () => {
          last = await host.status();
          return last.code === 0 ? true : undefined;
        },
        async () =>
          `last status: exit ${last?.code} ${last?.stdout.slice(-2000)} ${last?.stderr.slice(-1000)}\n${await host.logs()}`,
      );
    },
    async show(unit, property) {
      return (await ct.run(["systemctl", "show", unit, "-p", property, "--value"])).trim();
    },
    async userTransfer(bytes, app = "echo") {
      const listen = cloud.apps[app]?.listen;
      if (!listen) throw new Error(`cloud.json has no user listener for app ${app}`);
      const out = await ct.run(
        [BUN, join(ROOT, "test", "support", "scripts", "echo-app.ts"), "transfer", listen, String(bytes)],
        { timeoutMs: 60_000 },
      );
      return JSON.parse(out) as TransferResult;
    },
    logs: (lines) => containerLogs(ct, lines),
  };
  await host.waitConnected();
  return host;
}
