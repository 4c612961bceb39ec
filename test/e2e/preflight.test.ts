/**
 * `connector preflight` end to end: the compiled binary against the reference cloud. Assertions are on
 * the net.* rows and the JSON schema, never on this machine's host facts (which may WARN or FAIL
 * here for reasons of the machine). A failing test prints the binary's output and the cloud's log
 * tail, and keeps its temp dir.
 */
import { afterAll, describe, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import { PreflightReportSchema, type CheckResult, type PreflightReport } from "../../src/preflight/report.ts";
import { connectorBinary, runConnector, type RunResult } from "../support/binary.ts";
import { startCloud, type CloudProcess } from "../support/cloud-process.ts";
import { startConnectProxy, type ConnectProxy } from "../support/connect-proxy.ts";
import { startInterceptingProxy, type InterceptingProxy } from "../support/intercepting-proxy.ts";

let cloud: CloudProcess;
let mitm: InterceptingProxy;
let proxy: ConnectProxy;
let root: string;
let keepRoot = false;
let keyFile: string;
const outputs: string[] = [];

beforeAll(async () => {
  connectorBinary();
  root = mkdtempSync(join(tmpdir(), "e2e-preflight-"));
  [cloud, mitm] = await Promise.all([startCloud({ gateways: 2, keyUses: 10 }), startInterceptingProxy()]);
  proxy = startConnectProxy();
  keyFile = join(root, "key");
  writeFileSync(keyFile, `${cloud.provisioningKey}\n`, { mode: 0o600 });
}, 120_000);

afterAll(async () => {
  proxy?.stop();
  await Promise.all([cloud?.stop(), mitm?.stop()]);
  if (keepRoot) console.log(`kept ${root} for inspection`);
  else rmSync(root, { recursive: true, force: true });
});

async function preflight(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  const result = await runConnector(["preflight", "--log-format", "json", ...args], { env, timeoutMs: 60_000 });
  outputs.push(result.stdout, result.stderr);
  return result;
}

/** Runs `assertions`; on failure prints what the binary and the cloud said and keeps the temp dir. */
function explained(result: RunResult, assertions: () => void): void {
  try {
    assertions();
  } catch (err) {
    keepRoot = true;
    console.error(
      `exit ${result.exitCode}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}\n--- cloud (tail)\n${cloud.output().slice(-4000)}`,
    );
    throw err;
  }
}

function report(result: RunResult): PreflightReport {
  return v.parse(PreflightReportSchema, JSON.parse(result.stdout));
}

const netRows = (r: PreflightReport): CheckResult[] => r.checks.filter((c) => c.id.startsWith("net."));
const hostFails = (r: PreflightReport): CheckResult[] =>
  r.checks.filter((c) => c.id.startsWith("host.") && c.status === "fail");
const stateDir = (name: string) => join(root, name, "state");

describe("connector preflight (compiled binary, reference cloud)", () => {
  test("--key-file and a state dir that does not exist yet: every net.* row passes; exit 0 unless a host fact of this machine fails", async () => {
    const result = await preflight(["--key-file", keyFile, "--state-dir", stateDir("fresh"), "--json"]);
    explained(result, () => {
      const r = report(result);
      const control = new URL(cloud.controlUrl).host;
      expect(netRows(r).map((c) => `${c.id} ${c.status}${c.target ? ` ${c.target}` : ""}`)).toEqual([
        "net.target pass",
        "net.proxy pass",
        `net.dns pass ${control}`,
        `net.tcp pass ${control}`,
        `net.tls pass ${control}`,
        `net.clock pass ${control}`,
      ]);
      expect(result.exitCode).toBe(hostFails(r).length === 0 ? 0 : 1);
      expect(r.result).not.toBe(hostFails(r).length === 0 ? "fail" : "pass");
    });
  });

  test("the human table: one line per check, fix lines under warnings and failures, the count line last", async () => {
    const result = await preflight(["--key-file", keyFile, "--state-dir", stateDir("human")]);
    explained(result, () => {
      const lines = result.stdout.trimEnd().split("\n");
      const rows = lines.filter((l) => /^(PASS|WARN|FAIL) {2}/.test(l));
      expect(rows.find((l) => l.includes("net.tls"))).toMatch(
        /^PASS {2}net\.tls +control plane: TLSv1\.[23], the certificate chains to the pinned cloud CA \[127\.0\.0\.1:\d+\]$/,
      );
      const fixes = lines.filter((l) => l.startsWith("      fix: ")).length;
      expect(fixes).toBe(rows.filter((l) => !l.startsWith("PASS")).length);
      const count = (s: string) => rows.filter((l) => l.startsWith(s)).length;
      expect(lines.at(-1)).toBe(`${count("PASS")} passed, ${count("WARN")} warnings, ${count("FAIL")} failed`);
    });
  });

  test("through a TLS-intercepting proxy (CONNECTOR_PROXY): exit 1, net.tls fails naming the interception and the bypass", async () => {
    const result = await preflight(["--key-file", keyFile, "--state-dir", stateDir("mitm"), "--json"], {
      CONNECTOR_PROXY: mitm.url,
    });
    explained(result, () => {
      expect(result.exitCode).toBe(1);
      const tls = report(result).checks.find((c) => c.id === "net.tls")!;
      expect(tls.status).toBe("fail");
      expect(tls.summary).toContain("TLS interception: the certificate is issued by Inspection CA");
      expect(tls.fix).toContain("TLS-inspection bypass");
      expect(mitm.targets).toContain(new URL(cloud.controlUrl).host);
    });
    const bypassed = await preflight(
      ["--key-file", keyFile, "--state-dir", stateDir("mitm"), "--json", "--no-proxy", "127.0.0.1"],
      { CONNECTOR_PROXY: mitm.url },
    );
    explained(bypassed, () => {
      const r = report(bypassed);
      expect(netRows(r).filter((c) => c.status !== "pass")).toEqual([]);
      expect(r.checks.find((c) => c.id === "net.proxy")?.summary).toContain("every endpoint bypasses it");
    });
  });

  test("a malformed key exits 2 and says why, without a table", async () => {
    const bad = join(root, "bad-key");
    writeFileSync(bad, `${cloud.provisioningKey.slice(0, -4)}\n`, { mode: 0o600 });
    const result = await preflight(["--key-file", bad, "--state-dir", stateDir("bad")]);
    explained(result, () => {
      expect(result.exitCode).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr).toContain("Invalid provisioning key");
    });
  });

  test("an invalid proxy setting exits 2", async () => {
    const result = await preflight([
      "--key-file",
      keyFile,
      "--state-dir",
      stateDir("badproxy"),
      "--proxy",
      "socks5://x:1",
    ]);
    explained(result, () => expect(result.exitCode).toBe(2));
  });

  test("with an identity enrolled by the binary, each gateway is checked, through a plain proxy too", async () => {
    const dir = stateDir("enrolled");
    const enroll = await runConnector(
      ["enroll", "--key-file", keyFile, "--state-dir", dir, "--name", "e2e-preflight", "--log-format", "json"],
      { timeoutMs: 60_000 },
    );
    outputs.push(enroll.stdout, enroll.stderr);
    explained(enroll, () => expect(enroll.exitCode).toBe(0));
    for (const extra of [[], ["--proxy", proxy.url]]) {
      const result = await preflight(["--state-dir", dir, "--json", ...extra]);
      explained(result, () => {
        const r = report(result);
        expect(netRows(r).filter((c) => c.status !== "pass")).toEqual([]);
        for (const gateway of cloud.gateways) {
          const target = new URL(gateway.url).host;
          expect(r.checks.filter((c) => c.target === target).map((c) => `${c.id} ${c.status}`)).toEqual([
            "net.dns pass",
            "net.tcp pass",
            "net.tls pass",
          ]);
        }
      });
    }
    for (const gateway of cloud.gateways) expect(proxy.targets).toContain(new URL(gateway.url).host);
  });

  test("the key from CONNECTOR_PROVISIONING_KEY works too, and no key material appears in any output", async () => {
    const result = await preflight(["--state-dir", stateDir("env"), "--json"], {
      CONNECTOR_PROVISIONING_KEY: cloud.provisioningKey,
    });
    explained(result, () =>
      expect(report(result).checks.find((c) => c.id === "net.target")?.summary).toContain("CONNECTOR_PROVISIONING_KEY"),
    );
    const secretPart = cloud.provisioningKey.slice(50, 90);
    for (const output of outputs) {
      expect(output).not.toContain(cloud.provisioningKey);
      expect(output).not.toContain(secretPart);
    }
  });
});
