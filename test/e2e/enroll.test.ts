/**
 * `connector enroll` end to end: the compiled binary as a subprocess against the reference cloud
 * (test/cloud), temp state dirs, JSON logs. Each failure mode has its own exit code and message.
 */
import { afterAll, describe, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { encodeProvisioningKey } from "../../src/identity/provisioning-key.ts";
import { connectorBinary, isolatedEnv, runConnector, type RunResult } from "../support/binary.ts";
import { startCloud, type CloudProcess } from "../support/cloud-process.ts";
import { startConnectProxy } from "../support/connect-proxy.ts";
import { isPrintable } from "../support/printable.ts";
import { startBrokenProxy } from "../support/tls-misfits.ts";
import { createTestCa } from "../support/test-pki.ts";
import { startFakeControlPlane } from "../control/fake-control-plane.ts";

let cloud: CloudProcess;
let otherCloud: CloudProcess;
const roots: string[] = [];
/** Every stdout/stderr of every run, checked at the end for key material. */
const outputs: string[] = [];
const durations: number[] = [];
const fakeCa = createTestCa("Fake Cloud CA");

beforeAll(async () => {
  connectorBinary();
  [cloud, otherCloud] = await Promise.all([startCloud({ keyUses: 100 }), startCloud()]);
}, 120_000);

afterAll(async () => {
  await Promise.all([cloud?.stop(), otherCloud?.stop()]);
  for (const root of roots) rmSync(root, { recursive: true, force: true });
  if (durations.length > 0) {
    const sorted = [...durations].sort((a, b) => a - b);
    console.log(
      `enroll wall time over ${sorted.length} successful runs: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms`,
    );
  }
});

function stateDir(): string {
  const root = mkdtempSync(join(tmpdir(), "e2e-enroll-"));
  roots.push(root);
  return join(root, "state");
}

async function enroll(
  dir: string,
  key: string | undefined,
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<RunResult> {
  const args = ["enroll", "--state-dir", dir, "--log-format", "json", "--name", "e2e-host", ...extra];
  if (key !== undefined) args.push("--key", key);
  const result = await runConnector(args, { env });
  outputs.push(result.stdout, result.stderr);
  if (result.exitCode === 0) durations.push(result.durationMs);
  return result;
}

/** The `error: … [CODE]` line main.ts prints for a failed command. */
function errorLine(result: RunResult): string {
  return result.stderr.split("\n").find((l) => l.startsWith("error: ")) ?? result.stderr;
}

function identityFiles(dir: string): Record<string, { bytes: string; mtimeMs: number; mode: number }> {
  const out: Record<string, { bytes: string; mtimeMs: number; mode: number }> = {};
  for (const name of readdirSync(join(dir, "identity"))) {
    const path = join(dir, "identity", name);
    const st = statSync(path);
    out[name] = { bytes: readFileSync(path, "base64"), mtimeMs: st.mtimeMs, mode: st.mode & 0o777 };
  }
  return out;
}

/** Nothing of an identity: no identity dir, no temp dir, no old dir. */
function expectNoIdentity(dir: string): void {
  const entries = existsSync(dir) ? readdirSync(dir) : [];
  expect(entries.filter((e) => e.includes("identity"))).toEqual([]);
}

describe("connector enroll (compiled binary, reference cloud)", () => {
  test("enrolls, prints the result as JSON without the key, stores the identity 0700/0600", async () => {
    const dir = stateDir();
    const result = await enroll(dir, cloud.provisioningKey, ["--json"]);
    expect(result.exitCode).toBe(0);
    const out = JSON.parse(result.stdout) as {
      connectorId: string;
      name: string;
      group: string;
      gateways: unknown[];
      certificate: { notAfter: string };
    };
    expect(out.connectorId.length).toBeGreaterThan(0);
    expect(out.name).toBe("e2e-host");
    expect(out.group.length).toBeGreaterThan(0);
    expect(out.gateways.length).toBeGreaterThan(0);
    expect(Date.parse(out.certificate.notAfter)).toBeGreaterThan(Date.now());
    expect(Object.keys(out).sort()).toEqual(["certificate", "connectorId", "gateways", "group", "name"]);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, "identity")).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, "identity", "key.pem")).mode & 0o777).toBe(0o600);
    const status = await runConnector(["status", "--state-dir", dir, "--json", "--log-format", "json"]);
    outputs.push(status.stdout, status.stderr);
    expect(JSON.parse(status.stdout)).toMatchObject({
      state: "not-running",
      connectorId: out.connectorId,
      name: "e2e-host",
    });
    expect(status.exitCode).toBe(42);
  });

  test("a second enroll without --force is refused (exit 20) and changes nothing; --force replaces", async () => {
    const dir = stateDir();
    expect((await enroll(dir, cloud.provisioningKey)).exitCode).toBe(0);
    const before = identityFiles(dir);
    const refused = await enroll(dir, cloud.provisioningKey);
    expect(refused.exitCode).toBe(20);
    expect(errorLine(refused)).toContain("--force");
    expect(identityFiles(dir)).toEqual(before);
    // daemon.lock: enroll holds the daemon's lock while it works (harmless when left behind).
    expect(readdirSync(dir).sort()).toEqual(["daemon.lock", "identity"]);
    const forced = await enroll(dir, cloud.provisioningKey, ["--force"]);
    expect(forced.exitCode).toBe(0);
    const after = identityFiles(dir);
    expect(after["key.pem"]!.bytes).not.toBe(before["key.pem"]!.bytes);
    expect(readdirSync(dir).sort()).toEqual(["daemon.lock", "identity"]);
  });

  test("a state dir other users can write into (1777) with a planted provision_key: refused STATE_DIR_UNSAFE, nothing spent or changed", async () => {
    const dir = stateDir();
    mkdirSync(dir);
    chmodSync(dir, 0o1777);
    const { key } = await cloud.createKey({ maxUses: 1 });
    writeFileSync(join(dir, "provision_key"), key);
    const result = await enroll(dir, undefined);
    expect(result.exitCode).toBe(1);
    expect(errorLine(result)).toContain("[STATE_DIR_UNSAFE]");
    expect(errorLine(result)).toContain("mode 1777");
    expect(errorLine(result)).toContain(`chmod go-w ${dir}`);
    expect(statSync(dir).mode & 0o7777).toBe(0o1777);
    expect(readdirSync(dir)).toEqual(["provision_key"]);
    // The key was not used: once the dir is fixed, it enrolls.
    chmodSync(dir, 0o700);
    expect((await enroll(dir, undefined)).exitCode).toBe(0);
  });

  test("a key used its maximum number of times: exit 13", async () => {
    const { key } = await cloud.createKey({ maxUses: 1 });
    expect((await enroll(stateDir(), key)).exitCode).toBe(0);
    const dir = stateDir();
    const result = await enroll(dir, key);
    expect(result.exitCode).toBe(13);
    expect(errorLine(result)).toContain("maximum number of times");
    expectNoIdentity(dir);
  });

  test("an expired key: exit 11", async () => {
    const { key } = await cloud.createKey({ expiresAt: new Date(Date.now() - 60_000) });
    const dir = stateDir();
    const result = await enroll(dir, key);
    expect(result.exitCode).toBe(11);
    expect(errorLine(result)).toContain("expired");
    expectNoIdentity(dir);
  });

  test("a revoked key: exit 12", async () => {
    const { id, key } = await cloud.createKey();
    await cloud.revokeKey(id);
    const result = await enroll(stateDir(), key);
    expect(result.exitCode).toBe(12);
    expect(errorLine(result)).toContain("revoked");
  });

  test("a key the control plane does not know: exit 14", async () => {
    const key = encodeProvisioningKey({
      controlUrl: cloud.controlUrl,
      caPin: cloud.caPin,
      secret: randomBytes(32).toString("base64url"),
    });
    const result = await enroll(stateDir(), key);
    expect(result.exitCode).toBe(14);
    expect(errorLine(result)).toContain("does not know this provisioning key");
  });

  test("a malformed key: exit 10", async () => {
    // Replace one character with a different one (an "x" where there was one would leave the key valid).
    const key = cloud.provisioningKey;
    const result = await enroll(stateDir(), `${key.slice(0, 40)}${key[40] === "x" ? "y" : "x"}${key.slice(41)}`);
    expect(result.exitCode).toBe(10);
    expect(errorLine(result)).toContain("Invalid provisioning key");
  });

  test("no key anywhere: exit 22", async () => {
    const result = await enroll(stateDir(), undefined);
    expect(result.exitCode).toBe(22);
    expect(errorLine(result)).toContain("CONNECTOR_PROVISIONING_KEY");
  });

  test("the key from CONNECTOR_PROVISIONING_KEY, quoted with a newline, is used", async () => {
    const result = await enroll(stateDir(), undefined, [], {
      CONNECTOR_PROVISIONING_KEY: `"${cloud.provisioningKey}"\n`,
    });
    expect(result.exitCode).toBe(0);
  });

  test("a control plane whose CA does not match the pin: exit 15 naming TLS inspection and the bypass", async () => {
    const key = encodeProvisioningKey({
      controlUrl: otherCloud.controlUrl,
      caPin: cloud.caPin,
      secret: randomBytes(32).toString("base64url"),
    });
    const dir = stateDir();
    const result = await enroll(dir, key);
    expect(result.exitCode).toBe(15);
    expect(errorLine(result)).toContain("TLS inspection");
    expect(errorLine(result)).toContain(
      `add ${new URL(otherCloud.controlUrl).hostname} to your TLS-inspection bypass list`,
    );
    expectNoIdentity(dir);
  });

  // The CA fetch is not verified yet: a TLS-inspecting proxy's 403, a claimed KEY_REVOKED or an API
  // error full of terminal escapes must all read as likely TLS inspection, and reach no terminal raw.
  const unverifiedAnswers: [string, () => Response][] = [
    [
      "a proxy's 403 page",
      () => new Response("<html>Blocked by policy</html>", { status: 403, headers: { "content-type": "text/html" } }),
    ],
    [
      "a claimed KEY_REVOKED",
      () => Response.json({ error: { code: "KEY_REVOKED", message: "revoked" } }, { status: 403 }),
    ],
    [
      "an API error full of terminal escapes",
      () =>
        Response.json(
          { error: { code: "BAD\u001b[31m", message: "\u001b]0;owned\u0007\u001b[2J\u009b" } },
          { status: 400 },
        ),
    ],
  ];
  for (const [name, answer] of unverifiedAnswers) {
    test(`${name} on GET /v1/ca: exit 15 naming TLS inspection, no control bytes on stderr`, async () => {
      const fake = startFakeControlPlane({ ca: fakeCa });
      try {
        fake.override("GET /v1/ca", answer);
        const key = encodeProvisioningKey({
          controlUrl: fake.url,
          caPin: fakeCa.pin,
          secret: randomBytes(32).toString("base64url"),
        });
        const dir = stateDir();
        const result = await enroll(dir, key);
        expect(result.exitCode).toBe(15);
        expect(errorLine(result)).toContain("add 127.0.0.1 to your TLS-inspection bypass list");
        expect(isPrintable(result.stderr)).toBe(true);
        expect(fake.requests).toEqual(["GET /v1/ca"]);
        expectNoIdentity(dir);
      } finally {
        fake.stop();
      }
    });
  }

  test("an unreachable control plane: exit 17", async () => {
    const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = listener.port;
    listener.stop(true);
    const key = encodeProvisioningKey({
      controlUrl: `https://127.0.0.1:${port}`,
      caPin: cloud.caPin,
      secret: randomBytes(32).toString("base64url"),
    });
    const result = await enroll(stateDir(), key);
    expect(result.exitCode).toBe(17);
    expect(errorLine(result)).toContain(`127.0.0.1:${port}`);
  });
});

describe("interrupted enrollment", () => {
  /** Spawns enroll and returns the process plus a promise of its stderr text. */
  function spawnEnroll(dir: string, key: string) {
    const proc = Bun.spawn(
      [connectorBinary(), "enroll", "--state-dir", dir, "--key", key, "--log-format", "json", "--log-level", "debug"],
      {
        env: isolatedEnv(),
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    return proc;
  }

  async function waitForLine(stream: ReadableStream<Uint8Array>, needle: string, deadlineMs: number): Promise<string> {
    const decoder = new TextDecoder();
    let text = "";
    const reader = stream.getReader();
    const deadline = setTimeout(() => void reader.cancel(), deadlineMs);
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) throw new Error(`stream ended before "${needle}":\n${text}`);
        text += decoder.decode(value, { stream: true });
        if (text.includes(needle)) return text;
      }
    } finally {
      clearTimeout(deadline);
      reader.releaseLock();
    }
  }

  test("killed (SIGKILL) while waiting on a control plane that never answers: no identity, status not-enrolled", async () => {
    let connected: () => void = () => undefined;
    const accepted = new Promise<void>((resolve) => (connected = resolve));
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: () => connected(), data() {} } });
    try {
      const dir = stateDir();
      const key = encodeProvisioningKey({
        controlUrl: `https://127.0.0.1:${silent.port}`,
        caPin: cloud.caPin,
        secret: randomBytes(32).toString("base64url"),
      });
      const proc = spawnEnroll(dir, key);
      // 45 s: a safety deadline for a loaded machine (starting the binary is most of it).
      await Promise.race([accepted, Bun.sleep(45_000).then(() => Promise.reject(new Error("enroll never connected")))]);
      proc.kill("SIGKILL");
      await proc.exited;
      expectNoIdentity(dir);
      const status = await runConnector(["status", "--state-dir", dir, "--json"]);
      expect(status.exitCode).toBe(44);
      expect(JSON.parse(status.stdout).state).toBe("not-enrolled");
    } finally {
      silent.stop(true);
    }
  }, 90_000);

  test("killed (SIGKILL) while generating its key pair: no identity", async () => {
    const dir = stateDir();
    const proc = spawnEnroll(dir, cloud.provisioningKey);
    // "enrolling" is logged right before key generation and the CA fetch start.
    const seen = await waitForLine(proc.stderr, '"msg":"enrolling"', 45_000);
    proc.kill("SIGKILL");
    await proc.exited;
    outputs.push(seen);
    expectNoIdentity(dir);
  }, 90_000);
});

describe("through an HTTP CONNECT proxy", () => {
  test("enrolls through the proxy (every request is tunnelled through it)", async () => {
    const proxy = startConnectProxy({ auth: { username: "connector", password: "proxy-pass-1" } });
    try {
      const result = await enroll(stateDir(), cloud.provisioningKey, ["--proxy", proxy.urlWithAuth()]);
      expect(result.exitCode).toBe(0);
      expect(proxy.tunnels).toBeGreaterThanOrEqual(2);
      expect(proxy.targets.every((t) => t === new URL(cloud.controlUrl).host)).toBe(true);
    } finally {
      proxy.stop();
    }
  });

  test("HTTPS_PROXY from the environment is honoured, and NO_PROXY bypasses it", async () => {
    const proxy = startConnectProxy();
    try {
      const viaEnv = await enroll(stateDir(), cloud.provisioningKey, [], { HTTPS_PROXY: proxy.url });
      expect(viaEnv.exitCode).toBe(0);
      const used = proxy.connects;
      expect(used).toBeGreaterThanOrEqual(2);
      const bypass = await enroll(stateDir(), cloud.provisioningKey, [], {
        HTTPS_PROXY: proxy.url,
        NO_PROXY: "localhost,127.0.0.1",
      });
      expect(bypass.exitCode).toBe(0);
      expect(proxy.connects).toBe(used);
    } finally {
      proxy.stop();
    }
  });

  test("wrong proxy credentials: exit 19, the proxy named, its password never shown", async () => {
    const proxy = startConnectProxy({ auth: { username: "connector", password: "right-pass" } });
    try {
      const dir = stateDir();
      const result = await enroll(dir, cloud.provisioningKey, [
        "--proxy",
        proxy.urlWithAuth("connector", "wrong-pass-42"),
        "--log-level",
        "trace",
      ]);
      expect(result.exitCode).toBe(19);
      expect(errorLine(result)).toContain(`127.0.0.1:${proxy.port}`);
      expect(errorLine(result)).toContain("407");
      expect(result.stdout + result.stderr).not.toContain("wrong-pass-42");
      expectNoIdentity(dir);
    } finally {
      proxy.stop();
    }
  });

  for (const mode of ["reset", "close-after-200"] as const) {
    test(`a proxy that does "${mode}" at CONNECT: exit 19 naming the proxy, not 17 blaming the control plane`, async () => {
      const proxy = startBrokenProxy(mode);
      try {
        const dir = stateDir();
        const result = await enroll(dir, cloud.provisioningKey, ["--proxy", proxy.url]);
        expect(result.exitCode).toBe(19);
        expect(errorLine(result)).toContain(`The proxy ${proxy.url} failed`);
        expect(errorLine(result)).not.toContain("Cannot connect to the control plane");
        expectNoIdentity(dir);
      } finally {
        proxy.stop();
      }
    });
  }
});

describe("secrets", () => {
  test("a trace-level enroll logs neither a private key nor the key's secret; no output of any run does", async () => {
    const dir = stateDir();
    const result = await enroll(dir, cloud.provisioningKey, ["--log-level", "trace"]);
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain('"level":"debug"');
    // Every private key any run of this file stored.
    const keyLines: string[] = [];
    for (const root of roots) {
      const path = join(root, "state", "identity", "key.pem");
      if (existsSync(path))
        keyLines.push(
          ...readFileSync(path, "utf8")
            .split("\n")
            .filter((l) => l.length > 40)
            .slice(0, 2),
        );
    }
    expect(keyLines.length).toBeGreaterThan(10);
    const secretPart = cloud.provisioningKey.slice(5);
    for (const text of outputs) {
      expect(text).not.toContain("PRIVATE KEY");
      expect(text).not.toContain(secretPart);
      for (const line of keyLines) expect(text).not.toContain(line);
    }
  });
});
