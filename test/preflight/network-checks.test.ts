/**
 * Network checks against the real reference cloud (test/support/cloud-process.ts): direct, through a
 * plain CONNECT proxy, through a TLS-intercepting one, with an enrolled identity's gateways, and with
 * the injected seams (an unresolvable name, a connect or lookup that never answers) and clock (skew).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { enrollExclusively } from "../../src/identity/enroll.ts";
import { encodeProvisioningKey } from "../../src/identity/provisioning-key.ts";
import { createLogger } from "../../src/log.ts";
import { NET_TIMEOUTS, systemNet, type NetSeams } from "../../src/preflight/net-probe.ts";
import { networkChecks, type NetworkCheckInput } from "../../src/preflight/network-checks.ts";
import type { CheckResult } from "../../src/preflight/report.ts";
import { chooseTargets } from "../../src/preflight/targets.ts";
import { startCloud, type CloudProcess } from "../support/cloud-process.ts";
import { startConnectProxy, type ConnectProxy } from "../support/connect-proxy.ts";
import { startInterceptingProxy, type InterceptingProxy } from "../support/intercepting-proxy.ts";

let cloud: CloudProcess;
let plainProxy: ConnectProxy;
let mitm: InterceptingProxy;
let enrolledDir: string;
const roots: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "preflight-net-"));
  roots.push(dir);
  return dir;
}

beforeAll(async () => {
  [cloud, mitm] = await Promise.all([startCloud({ gateways: 2, keyUses: 10 }), startInterceptingProxy()]);
  plainProxy = startConnectProxy();
  enrolledDir = join(tempDir(), "state");
  await enrollExclusively({
    stateDir: enrolledDir,
    key: cloud.provisioningKey,
    env: {},
    name: "preflight-test",
    force: false,
    log: createLogger({ level: "silent", format: "json" }),
  });
}, 60_000);

afterAll(async () => {
  plainProxy?.stop();
  await Promise.all([cloud?.stop(), mitm?.stop()]);
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

const keyFor = (controlUrl: string) =>
  encodeProvisioningKey({ controlUrl, caPin: cloud.caPin, secret: randomBytes(32).toString("base64url") });

async function checks(
  options: { key?: string; stateDir?: string } & Partial<Omit<NetworkCheckInput, "targets">>,
): Promise<CheckResult[]> {
  const choice = chooseTargets({ key: options.key, env: {}, stateDir: options.stateDir ?? join(tempDir(), "none") });
  expect(choice.targets).toBeDefined();
  return [choice.check, ...(await networkChecks({ noProxy: [], ...options, targets: choice.targets! }))];
}

const row = (list: CheckResult[], id: CheckResult["id"], target?: string) => {
  const found = list.filter((c) => c.id === id && (target === undefined || c.target === target));
  expect(found.length, `${id} ${target ?? ""} in ${JSON.stringify(list, null, 1)}`).toBe(1);
  return found[0]!;
};
const controlTarget = () => new URL(cloud.controlUrl).host;
const statusesOf = (list: CheckResult[]) =>
  list.map((c) => [c.id, c.target, c.status].filter((x) => x !== undefined).join(" "));

describe("network checks against the reference cloud", () => {
  test("healthy, key only: net.proxy, dns, tcp, tls and clock pass for the control plane", async () => {
    const list = await checks({ key: cloud.provisioningKey });
    const t = controlTarget();
    expect(statusesOf(list)).toEqual([
      "net.target pass",
      "net.proxy pass",
      `net.dns ${t} pass`,
      `net.tcp ${t} pass`,
      `net.tls ${t} pass`,
      `net.clock ${t} pass`,
    ]);
    expect(row(list, "net.tls").summary).toContain("chains to the pinned cloud CA");
  });

  test("with an enrolled identity and no key, each gateway is checked too", async () => {
    const list = await checks({ stateDir: enrolledDir });
    expect(row(list, "net.target").summary).toContain("2 gateway(s)");
    for (const gateway of cloud.gateways) {
      const target = new URL(gateway.url).host;
      for (const id of ["net.dns", "net.tcp", "net.tls"] as const) expect(row(list, id, target).status).toBe("pass");
      expect(row(list, "net.tls", target).summary).toStartWith("gateway: TLS");
    }
    expect(list.every((c) => c.status === "pass")).toBe(true);
  });

  test("a host name is looked up with the system resolver (localhost)", async () => {
    const url = new URL(cloud.controlUrl);
    const list = await checks({ key: keyFor(`https://localhost:${url.port}`) });
    expect(row(list, "net.dns").summary).toMatch(/localhost resolves to (127\.0\.0\.1|::1)/);
    expect(list.every((c) => c.status === "pass")).toBe(true);
  });

  test("an unresolvable host: net.dns fails, tcp and tls are not tried", async () => {
    const looked: string[] = [];
    const seams: NetSeams = {
      ...systemNet,
      lookup: async (host) => {
        looked.push(host);
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
      },
      connect: () => Promise.reject(new Error("must not connect")),
    };
    const list = await checks({ key: keyFor("https://cloud.invalid:4443"), seams });
    expect(looked).toEqual(["cloud.invalid"]);
    expect(row(list, "net.dns")).toMatchObject({
      status: "fail",
      target: "cloud.invalid:4443",
      summary: "control plane: cannot resolve cloud.invalid (ENOTFOUND)",
    });
    expect(row(list, "net.dns").fix).toContain("/etc/resolv.conf");
    expect(row(list, "net.tcp").status).toBe("warn");
    expect(row(list, "net.tls").status).toBe("warn");
  });

  test("a closed port: net.tcp fails with connection refused", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const list = await checks({ key: keyFor(`https://127.0.0.1:${port}`) });
    expect(row(list, "net.tcp")).toMatchObject({
      status: "fail",
      summary: `control plane: cannot connect to 127.0.0.1:${port} (connection refused)`,
    });
    expect(row(list, "net.tcp").fix).toContain("firewall");
  });

  test("a TLS-intercepting CONNECT proxy: net.tls fails naming the interception, its issuer and the bypass", async () => {
    const list = await checks({ key: cloud.provisioningKey, proxy: mitm.url });
    expect(row(list, "net.proxy").status).toBe("pass");
    expect(row(list, "net.tcp").status).toBe("pass");
    const tls = row(list, "net.tls");
    expect(tls.status).toBe("fail");
    expect(tls.summary).toContain("TLS interception: the certificate is issued by Inspection CA");
    expect(tls.fix).toBe(
      "add 127.0.0.1 to the proxy's TLS-inspection bypass (and to --no-proxy / CONNECTOR_NO_PROXY if the proxy is not needed)",
    );
    expect(mitm.targets).toContain(controlTarget());
  });

  test("the same proxy with the control plane on the bypass list: direct, all pass", async () => {
    const before = mitm.targets.length;
    const list = await checks({ key: cloud.provisioningKey, proxy: mitm.url, noProxy: ["127.0.0.1"] });
    expect(list.every((c) => c.status === "pass")).toBe(true);
    expect(row(list, "net.proxy").summary).toContain("every endpoint bypasses it");
    expect(mitm.targets.length).toBe(before);
  });

  test("a plain CONNECT proxy: everything passes through it, gateways included", async () => {
    const list = await checks({ stateDir: enrolledDir, proxy: plainProxy.url });
    expect(list.filter((c) => c.status !== "pass")).toEqual([]);
    expect(row(list, "net.proxy").summary).toContain(`proxy ${plainProxy.url} reachable`);
    expect(row(list, "net.tcp", controlTarget()).summary).toContain(`through the proxy ${plainProxy.url}`);
    for (const gateway of cloud.gateways) expect(plainProxy.targets).toContain(new URL(gateway.url).host);
    expect(plainProxy.targets).toContain(controlTarget());
  });

  test("a proxy that refuses CONNECT (403) or wants credentials (407): net.tcp fails saying which", async () => {
    const refusing = startConnectProxy({ refuseConnect: true });
    const authed = startConnectProxy({ auth: { username: "u", password: "secret-pw" } });
    try {
      const refused = row(await checks({ key: cloud.provisioningKey, proxy: refusing.url }), "net.tcp");
      expect(refused.status).toBe("fail");
      expect(refused.summary).toContain("refused CONNECT");
      expect(refused.summary).toContain("403");
      const unauth = row(await checks({ key: cloud.provisioningKey, proxy: authed.url }), "net.tcp");
      expect(unauth.summary).toContain("refused authentication");
      expect(unauth.fix).toContain("USER:PASS");
      const ok = await checks({ key: cloud.provisioningKey, proxy: authed.urlWithAuth() });
      expect(ok.every((c) => c.status === "pass")).toBe(true);
      expect(JSON.stringify(ok)).not.toContain("secret-pw");
    } finally {
      refusing.stop();
      authed.stop();
    }
  });

  test("a proxy nobody listens on: net.proxy fails", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const list = await checks({ key: cloud.provisioningKey, proxy: `http://127.0.0.1:${port}` });
    expect(row(list, "net.proxy")).toMatchObject({
      status: "fail",
      summary: `cannot connect to the proxy http://127.0.0.1:${port} (ECONNREFUSED)`,
    });
    expect(row(list, "net.tcp").status).toBe("fail");
  });

  test("clock skew against the control plane's Date: +10 min fails, +2 min and -2 min warn", async () => {
    const skewed = (ms: number) => ({ wallNow: () => new Date(Date.now() + ms) });
    const ahead10 = row(await checks({ key: cloud.provisioningKey, clock: skewed(10 * 60_000) }), "net.clock");
    expect(ahead10.status).toBe("fail");
    expect(ahead10.summary).toMatch(/^this host's clock is (9 min 59|10 min [01]) s ahead of the control plane's/);
    const ahead2 = row(await checks({ key: cloud.provisioningKey, clock: skewed(2 * 60_000) }), "net.clock");
    expect(ahead2.status).toBe("warn");
    const behind2 = row(await checks({ key: cloud.provisioningKey, clock: skewed(-2 * 60_000) }), "net.clock");
    expect(behind2).toMatchObject({ status: "warn", summary: expect.stringContaining("behind") });
  });
});

describe("every network wait has a deadline", () => {
  const short = { ...NET_TIMEOUTS, dnsMs: 200, tcpMs: 200, tlsMs: 300, httpMs: 300 };

  test("a lookup that never answers: net.dns fails after the DNS timeout", async () => {
    const seams: NetSeams = { ...systemNet, lookup: () => new Promise(() => {}) };
    const list = await checks({ key: keyFor("https://cloud.example:443"), seams, timeouts: short });
    expect(row(list, "net.dns").summary).toContain("no answer within 0.2 s");
  });

  test("a connect that never completes: net.tcp fails after the TCP timeout", async () => {
    const seams: NetSeams = { ...systemNet, connect: () => new Promise(() => {}) };
    const list = await checks({ key: cloud.provisioningKey, seams, timeouts: short });
    expect(row(list, "net.tcp")).toMatchObject({
      status: "fail",
      summary: expect.stringContaining("no answer within 0.2 s"),
    });
  });

  test("a server that accepts TCP but never speaks TLS: net.tls fails after the TLS timeout", async () => {
    const held: Socket[] = [];
    const server = createServer((s) => held.push(s));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const list = await checks({ key: keyFor(`https://127.0.0.1:${port}`), timeouts: short });
      expect(row(list, "net.tcp").status).toBe("pass");
      expect(row(list, "net.tls")).toMatchObject({
        status: "fail",
        summary: "control plane: the TLS handshake did not finish within 0.3 s",
      });
      expect(row(list, "net.clock").status).toBe("warn");
    } finally {
      held.forEach((s) => s.destroy());
      server.close();
    }
  });
});
