/**
 * The release server as the CLI contract shows it (`bun test/cloud/main.ts --releases DIR
 * --release-signing-keys KEYDIR`, through test/support/cloud-process.ts): cloud.json names it and each
 * channel's manifest, the helpers drive misbehaviour, refused versions and upgrade reports, and a cloud
 * without the signing keys refuses the modes that need them with 409.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import { ManifestSchema } from "../../../src/upgrade/format.ts";
import { startCloud, type CloudProcess } from "../../support/cloud-process.ts";
import { makeFakeKeys, writeFakeRelease, writeKeyDir } from "../../support/release-fixture.ts";
import { ecKeys, nativeCsr } from "../fixtures.ts";
import { enrollBody, postEnroll } from "../test-client.ts";

let work: string;
let cloud: CloudProcess;
const BINARY = Buffer.from("a binary of some size ".repeat(50));

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "cloud-releases-"));
  const keys = makeFakeKeys();
  writeFakeRelease({
    dir: join(work, "releases", "r1"),
    keys,
    version: "1.0.0",
    channel: "stable",
    sequence: 1,
    binary: () => BINARY,
  });
  cloud = await startCloud({
    releases: join(work, "releases"),
    releaseSigningKeys: writeKeyDir(join(work, "keys"), keys),
  });
});

afterAll(async () => {
  await cloud?.stop();
  rmSync(work, { recursive: true, force: true });
});

const fetchBytes = async (url: string) =>
  Buffer.from(await (await fetch(url, { signal: AbortSignal.timeout(5_000) })).arrayBuffer());

describe("main.ts --releases", () => {
  test("cloud.json names the release server and the manifest of each channel found at start", async () => {
    const onDisk = JSON.parse(readFileSync(join(cloud.dir, "cloud.json"), "utf8"));
    expect(onDisk.releases).toEqual(cloud.releases);
    expect(cloud.releases!.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(cloud.releases!.channels).toEqual({
      stable: { manifestUrl: `${cloud.releases!.baseUrl}/stable/manifest.json` },
    });
    const manifest = v.parse(
      ManifestSchema,
      JSON.parse((await fetchBytes(cloud.releases!.channels.stable!.manifestUrl)).toString()),
    );
    expect(manifest.version).toBe("1.0.0");
  });

  test("misbehave() changes what a channel serves, and 'none' puts it back", async () => {
    const binaryUrl = `${cloud.releases!.baseUrl}/stable/connector-linux-x64`;
    await cloud.misbehave("wrong-hash", "stable");
    expect(await fetchBytes(binaryUrl)).not.toEqual(BINARY);
    await cloud.misbehave("expired-manifest");
    const expired = v.parse(
      ManifestSchema,
      JSON.parse((await fetchBytes(cloud.releases!.channels.stable!.manifestUrl)).toString()),
    );
    expect(Date.parse(expired.expires)).toBeLessThan(Date.now());
    await cloud.misbehave("none");
    expect(await fetchBytes(binaryUrl)).toEqual(BINARY);
    await expect(cloud.misbehave("sideways" as never)).rejects.toThrow("400");
  });

  test("refuseVersion() and allowVersion() set what the gateways refuse", async () => {
    const refused = async () =>
      (await (await fetch(`${cloud.adminUrl}/admin/refuse-version`)).json()) as { refused: string[] };
    await cloud.refuseVersion("1.0.0");
    expect(await refused()).toEqual({ refused: ["1.0.0"] });
    await cloud.allowVersion("1.0.0");
    expect(await refused()).toEqual({ refused: [] });
  });

  test("upgradeReports() lists what an enrolled connector reported", async () => {
    const caCertPem = await (await fetch(`${cloud.controlUrl}/v1/ca`, { tls: { rejectUnauthorized: false } })).text();
    const target = { controlUrl: cloud.controlUrl, caCertPem };
    const keys = ecKeys("prime256v1");
    const enrolled = (await (await postEnroll(target, enrollBody(cloud.provisioningKey, nativeCsr(keys)))).json()) as {
      connectorId: string;
      certificate: string;
    };
    const report = { from: "1.0.0", to: "1.1.0", result: "installed", at: new Date().toISOString() };
    const answer = await fetch(`${cloud.controlUrl}/v1/upgrade-report`, {
      method: "POST",
      body: JSON.stringify(report),
      headers: { "content-type": "application/json" },
      tls: {
        ca: caCertPem,
        cert: enrolled.certificate,
        key: keys.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      },
      signal: AbortSignal.timeout(5_000),
    });
    expect(answer.status).toBe(204);
    expect(await cloud.upgradeReports(enrolled.connectorId)).toEqual([
      expect.objectContaining({ connectorId: enrolled.connectorId, ...report }),
    ]);
    expect(await cloud.upgradeReports("c-0000000000000000")).toEqual([]);
  });
});

describe("main.ts --releases without --release-signing-keys", () => {
  test("the modes that re-sign with the release key are refused with 409, the others work", async () => {
    const bare = await startCloud({ releases: join(work, "releases") });
    try {
      await expect(bare.misbehave("older-sequence")).rejects.toThrow(/409.*--release-signing-keys/);
      await bare.misbehave("unvouched-key");
    } finally {
      await bare.stop();
    }
  });
});
