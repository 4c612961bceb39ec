/**
 * install.sh's command line: usage errors exit 2 before anything is downloaded or written, and the
 * secrets it is given (the provisioning key, a proxy password) never appear in what it prints —
 * also when it downloads through an authenticating proxy, which it reaches by CONNECT.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostTarget } from "../../build.ts";
import { silentLog } from "../cloud/test-client.ts";
import { startReleaseServer, type ReleaseServer } from "../cloud/releases/server.ts";
import { startConnectProxy, type ConnectProxy } from "../support/connect-proxy.ts";
import {
  bakeInstallerCopy,
  closedPort,
  describeRun,
  runInstaller,
  snapshot,
  startCountingServer,
  type CountingServer,
  type InstallerRun,
} from "../support/installer.ts";
import { makeFakeKeys, writeFakeRelease } from "../support/release-fixture.ts";

const KEY = "cnk1.S3cretProvisioningKeyMaterial_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
const PASSWORD = "pr0xy-Pa55word-zzz";
const work = mkdtempSync(join(tmpdir(), "install-usage-"));
const keys = makeFakeKeys();
let counter: CountingServer;
let script: string;
let rootCount = 0;

beforeAll(() => {
  counter = startCountingServer();
  script = bakeInstallerCopy(join(work, "install.sh"), {
    rootSpkis: keys.roots.map((r) => r.publicKey),
    baseUrl: counter.url,
  });
});

afterAll(() => {
  counter?.stop();
  rmSync(work, { recursive: true, force: true });
});

function freshRoot(): string {
  const root = join(work, `root-${++rootCount}`);
  mkdirSync(root);
  return root;
}

const noSecrets = (run: InstallerRun) => {
  for (const secret of [KEY, PASSWORD]) expect(`${run.stdout}${run.stderr}`).not.toContain(secret);
};

/** Exit 2 with this message, nothing downloaded, nothing written, no secret printed. */
async function expectUsageError(
  args: string[],
  message: string,
  env: Record<string, string> = {},
  installer = script,
): Promise<void> {
  const root = freshRoot();
  const before = counter.requests;
  const run = await runInstaller(
    installer,
    args.map((a) => a.replace("ROOT", root)),
    { env },
  );
  expect(run.code, describeRun(run)).toBe(2);
  expect(run.stderr).toContain(`install.sh: ${message}`);
  expect(counter.requests).toBe(before);
  expect([...snapshot(root).keys()]).toEqual([]);
  noSecrets(run);
}

describe("install.sh usage errors exit 2 and change nothing", () => {
  test("an unknown flag", () =>
    expectUsageError(["--root", "ROOT", "--frobnicate"], 'unknown argument "--frobnicate"'));
  test("a flag without its value", () => expectUsageError(["--root", "ROOT", "--channel"], "--channel needs a value"));
  test("--key with --root: an identity is made on the host that uses it", () =>
    expectUsageError(
      ["--root", "ROOT", "--key", KEY],
      "--key cannot be used with --root: enroll on the host that runs the connector",
    ));
  test("CONNECTOR_KEY with --root", () =>
    expectUsageError(["--root", "ROOT"], "CONNECTOR_KEY cannot be used with --root", { CONNECTOR_KEY: KEY }));
  test("--key-file with --root", () => {
    const keyFile = join(work, "key");
    writeFileSync(keyFile, `${KEY}\n`, { mode: 0o600 });
    return expectUsageError(["--root", "ROOT", "--key-file", keyFile], "--key-file cannot be used with --root");
  });
  test("--key and --key-file together", () =>
    expectUsageError(
      ["--root", "ROOT", "--key", KEY, "--key-file", "/nonexistent"],
      "give --key or --key-file, not both",
    ));
  test("a proxy that is not http://", () =>
    expectUsageError(
      ["--root", "ROOT", "--proxy", `https://u:${PASSWORD}@proxy.example:3128`],
      "--proxy must be an http:// URL",
    ));
  test("a malformed version", () =>
    expectUsageError(["--root", "ROOT", "--version", "v1"], '--version must be a version such as 1.4.2, got "v1"'));
  test("a malformed channel", () =>
    expectUsageError(["--root", "ROOT", "--channel", "Stable"], "--channel must be lowercase letters"));
  test("a relative --root", () => expectUsageError(["--root", "relative/dir"], "--root needs an absolute path"));
  test("no release host: the script names none and --base-url is missing", () => {
    const unbaked = bakeInstallerCopy(join(work, "no-url.sh"), { rootSpkis: keys.roots.map((r) => r.publicKey) });
    return expectUsageError(
      ["--root", "ROOT"],
      "no release host: this install.sh names none, give --base-url URL",
      {},
      unbaked,
    );
  });

  test("--help prints the usage and exits 0", async () => {
    const run = await runInstaller(script, ["--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("usage: curl -fsSL <base>/install.sh | sudo bash -s -- [options]");
    for (const flag of [
      "--key",
      "--key-file",
      "--proxy",
      "--no-proxy",
      "--version",
      "--channel",
      "--name",
      "--base-url",
      "--skip-preflight",
      "--root",
      "--uninstall",
      "--purge",
    ]) {
      expect(run.stdout).toContain(`  ${flag} `);
    }
  });

  test("not root (and no --root): exit 1 before anything else", async () => {
    // A copy user nobody can read; the script is piped as the README line does.
    const proc = Bun.spawn(
      ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", "-s", "--", "--key", KEY],
      {
        cwd: "/",
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
        stdin: new Blob([readFileSync(script)]),
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    const [stdout, stderr, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    expect(code, `${stdout}${stderr}`).toBe(1);
    expect(stderr).toBe("install.sh: run as root (curl … | sudo bash -s -- …)\n");
    expect(counter.requests).toBe(0);
  });

  test("the repository's unbaked install.sh refuses: it carries no release roots", async () => {
    const run = await runInstaller(join(import.meta.dir, "..", "..", "install.sh"), [
      "--root",
      freshRoot(),
      "--base-url",
      counter.url,
    ]);
    expect(run.code, describeRun(run)).toBe(1);
    expect(run.stderr).toContain("this install.sh carries 0 release root key(s)");
    expect(counter.requests).toBe(0);
  });
});

describe("install.sh through a proxy", () => {
  let server: ReleaseServer;
  let proxy: ConnectProxy;
  let proxied: string;

  beforeAll(async () => {
    mkdirSync(join(work, "rel"));
    writeFakeRelease({
      dir: join(work, "rel", "a"),
      keys,
      version: "1.0.0",
      channel: "stable",
      sequence: 1,
      targets: [hostTarget()],
    });
    server = await startReleaseServer({ dir: join(work, "rel"), log: silentLog });
    proxy = startConnectProxy({ auth: { username: "installer", password: PASSWORD } });
    proxied = bakeInstallerCopy(join(work, "proxied.sh"), {
      rootSpkis: keys.roots.map((r) => r.publicKey),
      baseUrl: server.baseUrl,
    });
  });

  afterAll(async () => {
    proxy?.stop();
    await server?.stop();
  });

  test("downloads through an authenticating proxy by CONNECT; the password is written to the settings file only", async () => {
    const root = freshRoot();
    const run = await runInstaller(proxied, ["--root", root, "--proxy", proxy.urlWithAuth()]);
    expect(run.code, describeRun(run)).toBe(0);
    expect(proxy.tunnels).toBeGreaterThanOrEqual(5); // manifest, its signature, the key set, 2 root signatures, the binary
    noSecrets(run);
    expect(readFileSync(join(root, "etc/connector/connector.env"), "utf8")).toContain(
      `\nCONNECTOR_PROXY=${proxy.urlWithAuth()}\n`,
    );
    expect(snapshot(root).get("etc/connector/connector.env")?.mode).toBe(0o640);
  });

  test("--no-proxy (or CONNECTOR_NO_PROXY) sends the release host around the proxy", async () => {
    const before = proxy.connects;
    const run = await runInstaller(proxied, ["--root", freshRoot()], {
      env: { CONNECTOR_PROXY: proxy.urlWithAuth(), CONNECTOR_NO_PROXY: "127.0.0.1" },
    });
    expect(run.code, describeRun(run)).toBe(0);
    expect(proxy.connects).toBe(before);
  });

  test("a ~/.curlrc (here: IPv6 only, which cannot reach 127.0.0.1) does not change how it downloads", async () => {
    const home = join(work, "home");
    mkdirSync(home);
    writeFileSync(join(home, ".curlrc"), "ipv6\n");
    const run = await runInstaller(proxied, ["--root", freshRoot()], { env: { HOME: home } });
    expect(run.code, describeRun(run)).toBe(0);
  });

  test("a proxy that refuses the password: exit 5, and the password is not printed", async () => {
    const run = await runInstaller(proxied, [
      "--root",
      freshRoot(),
      "--proxy",
      proxy.urlWithAuth("installer", `${PASSWORD}-wrong`),
    ]);
    expect(run.code, describeRun(run)).toBe(5);
    expect(`${run.stdout}${run.stderr}`).not.toContain(PASSWORD);
  });

  test("an unreachable proxy with a password in HTTPS_PROXY: exit 5, and the password is not printed", async () => {
    const run = await runInstaller(proxied, ["--root", freshRoot()], {
      env: { HTTPS_PROXY: `http://installer:${PASSWORD}@127.0.0.1:${closedPort()}` },
    });
    expect(run.code, describeRun(run)).toBe(5);
    noSecrets(run);
  });
});
