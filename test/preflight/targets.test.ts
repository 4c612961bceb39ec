/** net.target: where the key and the identity point the network checks, and what a bad key is. */
import { afterAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConnectorError } from "../../src/errors.ts";
import { encodeProvisioningKey } from "../../src/identity/provisioning-key.ts";
import { chooseTargets } from "../../src/preflight/targets.ts";

const root = mkdtempSync(join(tmpdir(), "preflight-targets-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const pin = randomBytes(32).toString("base64url");
const secret = randomBytes(32).toString("base64url");
const key = encodeProvisioningKey({ controlUrl: "https://cloud.example:8443", caPin: pin, secret });

function usageError(run: () => unknown): ConnectorError {
  try {
    run();
  } catch (err) {
    if (err instanceof ConnectorError) return err;
    throw err;
  }
  throw new Error("no error thrown");
}

describe("chooseTargets", () => {
  test("no key and no identity: net.target warns that network checks are skipped, naming --key-file", () => {
    const choice = chooseTargets({ env: {}, stateDir: join(root, "empty") });
    expect(choice.targets).toBeUndefined();
    expect(choice.check).toMatchObject({
      id: "net.target",
      status: "warn",
      summary: "no provisioning key or identity: network checks skipped",
    });
    expect(choice.check.fix).toContain("--key-file");
  });

  test("root on the service user's 0700 state dir (an installed host re-run without a key): its provision_key is read, nothing fails", () => {
    if (process.geteuid?.() !== 0) throw new Error("this test chowns a directory: run it as root, as CI does");
    const dir = join(root, "service-user");
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, 65534, 65534);
    expect(chooseTargets({ env: {}, stateDir: dir }).check.status).toBe("warn"); // nothing there yet: skipped, not failed
    writeFileSync(join(dir, "provision_key"), key, { mode: 0o600 });
    chownSync(join(dir, "provision_key"), 65534, 65534);
    const choice = chooseTargets({ env: {}, stateDir: dir });
    expect(choice.check.status).toBe("pass");
    expect(choice.targets?.controlUrl).toBe("https://cloud.example:8443");
  });

  test("a key from the environment gives the control plane and pin, never the secret", () => {
    const choice = chooseTargets({ env: { CONNECTOR_PROVISIONING_KEY: key }, stateDir: join(root, "empty") });
    expect(choice.targets).toEqual({
      controlUrl: "https://cloud.example:8443",
      caPin: pin,
      caPem: undefined,
      gateways: [],
      client: undefined,
    });
    expect(choice.check.summary).toContain("environment variable CONNECTOR_PROVISIONING_KEY");
    expect(JSON.stringify(choice)).not.toContain(secret);
    expect(JSON.stringify(choice)).not.toContain(key);
  });

  test("a malformed key is a usage error (exit 2), whichever source it came from", () => {
    expect(usageError(() => chooseTargets({ key: "cnk1.garbage", env: {}, stateDir: root })).exitCode).toBe(2);
    expect(
      usageError(() => chooseTargets({ env: { CONNECTOR_PROVISIONING_KEY: "nonsense" }, stateDir: root })).exitCode,
    ).toBe(2);
    const file = join(root, "key");
    writeFileSync(file, `${key.slice(0, -3)}\n`);
    expect(usageError(() => chooseTargets({ keyFile: file, env: {}, stateDir: root })).code).toBe("KEY_CHECKSUM");
  });

  test("a --key-file that does not exist is a usage error (exit 2)", () => {
    const err = usageError(() => chooseTargets({ keyFile: join(root, "missing"), env: {}, stateDir: root }));
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain("does not exist");
  });
});
