import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, watch } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import * as v from "valibot";
import { EnrollResponseSchema } from "../../src/control/api.ts";
import { decodeProvisioningKey } from "../../src/identity/provisioning-key.ts";
import { caPin } from "./ca.ts";
import { CloudJsonSchema, type CloudJson } from "./cloud-json.ts";
import { forgeCsr, rsaKeys } from "./fixtures.ts";
import { enrollBody, postEnroll } from "./test-client.ts";

const MAIN = join(import.meta.dir, "main.ts");
/** A safety deadline: starting the cloud and its gateway processes is slow on a loaded machine. */
const DEADLINE_MS = 60_000;
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Resolves with the parsed cloud.json as soon as it appears (fs events), or fails at the deadline or when the process exits. */
function waitForCloudJson(dir: string, proc: Subprocess): Promise<CloudJson> {
  const path = join(dir, "cloud.json");
  return new Promise((resolve, reject) => {
    const done = (err?: Error, json?: CloudJson) => {
      watcher.close();
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(json!);
    };
    // The file is renamed into place complete, so whenever it exists it parses.
    const check = () =>
      existsSync(path) && done(undefined, v.parse(CloudJsonSchema, JSON.parse(readFileSync(path, "utf8"))));
    const watcher = watch(dir, check);
    const timer = setTimeout(() => done(new Error(`no ${path} within ${DEADLINE_MS} ms`)), DEADLINE_MS);
    void proc.exited.then((code) => done(new Error(`main.ts exited with ${code} before writing cloud.json`)));
    check();
  });
}

async function exitCode(proc: Subprocess): Promise<number> {
  const timer = setTimeout(() => proc.kill("SIGKILL"), DEADLINE_MS);
  const code = await proc.exited;
  clearTimeout(timer);
  return code;
}

describe("bun test/cloud/main.ts", () => {
  test("writes cloud.json once ready, serves what it says, and exits 0 on SIGTERM", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cloud-main-"));
    dirs.push(dir);
    const proc = Bun.spawn(
      [
        process.execPath,
        MAIN,
        "--dir",
        dir,
        "--gateways",
        "2",
        "--app",
        "wiki=127.0.0.1:8080,127.0.0.1:8081",
        "--key-uses",
        "1",
      ],
      {
        stdout: "ignore",
        stderr: "ignore",
      },
    );
    try {
      const json = await waitForCloudJson(dir, proc);
      expect(statSync(join(dir, "cloud.json")).mode & 0o777).toBe(0o600);
      expect(json.gateways).toHaveLength(2);
      expect(json.apps.wiki?.listen).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(decodeProvisioningKey(json.provisioningKey)).toMatchObject({
        controlUrl: json.controlUrl,
        caPin: json.caPin,
      });

      // What a connector does first: fetch the CA without trusting it, then check the pin.
      const caPem = await (
        await fetch(`${json.controlUrl}/v1/ca`, {
          tls: { rejectUnauthorized: false },
          signal: AbortSignal.timeout(5_000),
        })
      ).text();
      expect(caPin(caPem)).toBe(json.caPin);
      const cloud = { controlUrl: json.controlUrl, caCertPem: caPem };
      const enrolled = await postEnroll(cloud, enrollBody(json.provisioningKey, forgeCsr(rsaKeys(3072))));
      expect(enrolled.status).toBe(201);
      expect(v.parse(EnrollResponseSchema, await enrolled.json()).gateways.map((g) => g.url)).toEqual(
        json.gateways.map((g) => g.url),
      );
      // --key-uses 1: the key is now used up.
      expect((await postEnroll(cloud, enrollBody(json.provisioningKey, forgeCsr(rsaKeys(3072))))).status).toBe(403);

      proc.kill("SIGTERM");
      expect(await exitCode(proc)).toBe(0);
    } finally {
      proc.kill("SIGKILL");
    }
  }, 150_000);

  test("a usage error exits 2 and prints the usage", async () => {
    const proc = Bun.spawn([process.execPath, MAIN, "--gateways", "2"], { stdout: "ignore", stderr: "pipe" });
    expect(await exitCode(proc)).toBe(2);
    expect(await new Response(proc.stderr).text()).toContain("usage: bun test/cloud/main.ts --dir DIR");
  });
});
