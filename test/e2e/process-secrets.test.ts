/**
 * A running daemon keeps its secrets to itself (src/host/process-secrets.ts): the provisioning key
 * and the proxy URL (with its password) it was started with are gone from /proc/PID/environ, and the process is non-dumpable, which the
 * kernel shows by making its /proc files root's. Runs the daemon as an unprivileged user (nobody,
 * through setpriv) so that ownership tells; needs root, skipped with the reason otherwise.
 */
import { afterAll, describe, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { connectorBinary, isolatedEnv } from "../support/binary.ts";
import { startCloud, type CloudProcess } from "../support/cloud-process.ts";
import { startConnectProxy, type ConnectProxy } from "../support/connect-proxy.ts";

const NOBODY = 65534;
const setpriv = Bun.which("setpriv");
const skipReason =
  process.getuid?.() !== 0 ? "not root" : setpriv === null ? "setpriv (util-linux) is not installed" : "";
if (skipReason) console.warn(`process-secrets e2e skipped: ${skipReason}`);

let cloud: CloudProcess;
let root: string;
let daemon: Subprocess | undefined;
const output: string[] = [];
const proxies: ConnectProxy[] = [];

beforeAll(async () => {
  if (skipReason) return;
  connectorBinary();
  cloud = await startCloud();
  root = mkdtempSync(join(tmpdir(), "e2e-process-secrets-"));
  chmodSync(root, 0o755); // nobody must reach the state dir inside
  mkdirSync(join(root, "state"), { mode: 0o700 });
  chownSync(join(root, "state"), NOBODY, NOBODY);
}, 120_000);

afterAll(async () => {
  if (daemon && daemon.exitCode === null) daemon.kill("SIGKILL");
  await daemon?.exited;
  for (const proxy of proxies) proxy.stop();
  await cloud?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

async function waitForLog(text: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!output.join("").includes(text)) {
    if (daemon!.exitCode !== null || Date.now() > deadline) {
      throw new Error(
        `daemon did not log "${text}" (exit ${daemon!.exitCode}):\n${output.join("").slice(-4000)}\ncloud:\n${cloud.output().slice(-2000)}`,
      );
    }
    await Bun.sleep(50);
  }
}

describe.skipIf(skipReason !== "")("secrets do not linger in a running daemon", () => {
  test("the provisioning key and the proxy password are not in /proc/PID/environ (the proxy still used), and the process is non-dumpable", async () => {
    const key = cloud.provisioningKey;
    const proxyPassword = "proxy-pass-in-env-7";
    const proxy = startConnectProxy({ auth: { username: "connector", password: proxyPassword } });
    proxies.push(proxy);
    const args = [
      setpriv!,
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      "--clear-groups",
      connectorBinary(),
      "run",
      "--state-dir",
      join(root, "state"),
      "--log-format",
      "json",
    ];
    daemon = Bun.spawn(args, {
      env: isolatedEnv({ CONNECTOR_PROVISIONING_KEY: key, HTTPS_PROXY: proxy.urlWithAuth() }),
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const decoder = new TextDecoder();
    void (async () => {
      for await (const chunk of daemon!.stderr as ReadableStream<Uint8Array>)
        output.push(decoder.decode(chunk, { stream: true }));
    })();
    // Enrolled with the key from the environment: the daemon certainly had it.
    await waitForLog('"msg":"enrolled"', 60_000);

    const pid = daemon.pid;
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    expect(status).toMatch(new RegExp(`^Uid:\\s+${NOBODY}\\s`, "m"));
    const environ = readFileSync(`/proc/${pid}/environ`, "latin1");
    expect(environ).toContain("CONNECTOR_ENV_FILE=");
    expect(environ).not.toContain(key);
    expect(environ).not.toContain(key.slice(5, 25));
    expect(environ).not.toContain(proxyPassword);
    // Scrubbed from the environment, still a setting: enrollment went through the proxy, with the password.
    expect(proxy.tunnels).toBeGreaterThanOrEqual(1);
    // Non-dumpable: the kernel gives the process's /proc files to root although it runs as nobody.
    expect(statSync(`/proc/${pid}/environ`).uid).toBe(0);
    expect(output.join("")).not.toContain("could not be");

    daemon.kill("SIGTERM");
    expect(await daemon.exited).toBe(0);
  }, 120_000);
});
