import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  bakeInstaller,
  keysetText,
  loadReleaseKeys,
  manifestText,
  readUnitFiles,
  UNIT_FILES,
} from "../../scripts/release-files.ts";
import { makeKeys } from "../support/release-keys.ts";

const ROOT = join(import.meta.dir, "..", "..");
const work = mkdtempSync(join(tmpdir(), "release-files-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const keys = makeKeys(join(work, "keys"));
const now = new Date("2026-01-02T03:04:05.678Z");

describe("release files", () => {
  test("the signing keys: the roots (sorted by file) and the release key, with their ids", () => {
    const loaded = loadReleaseKeys(keys.dir);
    expect(loaded.roots.map((r) => r.id)).toEqual([...keys.rootIds]);
    expect(loaded.release.id).toBe(keys.releaseKeyId);
  });

  test("a private key others can read is refused", () => {
    const loose = join(work, "loose");
    makeKeys(loose);
    chmodSync(join(loose, "root-2.key"), 0o640);
    expect(() => loadReleaseKeys(loose)).toThrow(
      `${join(loose, "root-2.key")} is readable or writable by others (mode 640)`,
    );
  });

  test("the manifest is the format's rendering, with whole-second times and one line per target", () => {
    const { release } = loadReleaseKeys(keys.dir);
    const bytes = new TextEncoder().encode("abc");
    const { text } = manifestText({
      version: "1.0.0",
      channel: "stable",
      sequence: 3,
      now,
      expiresInSeconds: 60,
      keyId: release.id,
      binaries: [{ target: "linux-arm64", file: "connector-linux-arm64", bytes }],
    });
    expect(JSON.parse(text)).toEqual({
      schema: 1,
      product: "connector",
      channel: "stable",
      version: "1.0.0",
      sequence: 3,
      released: "2026-01-02T03:04:05Z",
      expires: "2026-01-02T03:05:05Z",
      keyId: release.id,
      targets: {
        "linux-arm64": {
          url: "connector-linux-arm64",
          size: 3,
          sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        },
      },
    });
    expect(text).toContain('\n    "linux-arm64": {"url":"connector-linux-arm64","size":3,"sha256":"ba7816bf');
  });

  test("a manifest the connector would refuse as malformed is never produced", () => {
    const input = {
      version: "1.0.0",
      channel: "stable",
      sequence: 1,
      now,
      expiresInSeconds: 60,
      keyId: keys.releaseKeyId,
      binaries: [{ target: "linux-x64" as const, file: "connector-linux-x64", bytes: new Uint8Array(1) }],
    };
    expect(() => manifestText({ ...input, binaries: [] })).toThrow("the manifest would be malformed: no targets");
    expect(() => manifestText({ ...input, binaries: [{ ...input.binaries[0]!, bytes: new Uint8Array(0) }] })).toThrow(
      "the manifest would be malformed",
    );
    expect(() => manifestText({ ...input, rollout: 101 })).toThrow("the manifest would be malformed");
  });

  test("the key set lists the release key and expires when asked", () => {
    const { release } = loadReleaseKeys(keys.dir);
    const { keyset } = keysetText(release, now, 3600);
    expect(keyset).toMatchObject({
      issued: "2026-01-02T03:04:05Z",
      expires: "2026-01-02T04:04:05Z",
      keys: [{ id: release.id, publicKey: release.spki }],
    });
  });

  test("install.sh: only the marked block changes; a value that could end its quote is refused", () => {
    const template = readFileSync(join(ROOT, "install.sh"), "utf8");
    const baked = bakeInstaller(template, {
      rootSpkis: keys.rootSpkis,
      baseUrl: "https://r.example.com",
      channel: "stable",
    });
    const outside = (text: string) =>
      text
        .replace(/# >>> baked values[\s\S]*# <<< baked values/, "")
        .replace(/# >>> baked units[\s\S]*# <<< baked units/, "");
    expect(outside(baked)).toBe(outside(template));
    expect(baked).toContain("RELEASE_BASE_URL='https://r.example.com'");
    expect(
      bakeInstaller(baked, { rootSpkis: keys.rootSpkis, baseUrl: "https://r.example.com", channel: "stable" }),
    ).toBe(baked);
    expect(() =>
      bakeInstaller(template, {
        rootSpkis: keys.rootSpkis,
        baseUrl: "https://r.example.com/'$(id)'",
        channel: "stable",
      }),
    ).toThrow("cannot bake");
    expect(() => bakeInstaller("#!/bin/sh\n", { rootSpkis: keys.rootSpkis, channel: "stable" })).toThrow("has no");
  });

  test("install.sh: the units of packaging/systemd/ are baked in, and `unit_text NAME` prints each byte for byte", () => {
    const template = readFileSync(join(ROOT, "install.sh"), "utf8");
    const script = join(work, "units.sh");
    const baked = bakeInstaller(template, { rootSpkis: keys.rootSpkis, channel: "stable" });
    // Everything but the final call: the functions are defined and nothing runs.
    writeFileSync(script, baked.replace(/\{ main "\$@"; \}\n$/, ""));
    for (const name of UNIT_FILES) {
      const printed = Bun.spawnSync(["bash", "-c", `source "$0" && constants && unit_text "$1"`, script, name], {
        stdout: "pipe",
        stderr: "pipe",
      });
      expect(printed.exitCode, printed.stderr.toString()).toBe(0);
      expect(printed.stdout.toString()).toBe(readFileSync(join(ROOT, "packaging", "systemd", name), "utf8"));
    }
    expect(Bun.spawnSync(["bash", "-c", `source "$0" && unit_text other.service`, script]).exitCode).toBe(1);
  });

  test("install.sh: a unit that would not survive its here-document is refused", () => {
    const template = readFileSync(join(ROOT, "install.sh"), "utf8");
    const units = readUnitFiles();
    const bake = (name: string, text: string) =>
      bakeInstaller(template, { rootSpkis: keys.rootSpkis, channel: "stable", units: { ...units, [name]: text } });
    expect(() => bake("connector.service", "[Unit]\nDescription=x")).toThrow(
      "cannot bake connector.service into install.sh: it does not end with a newline",
    );
    expect(() => bake("connector-upgrade.path", "[Path]\nCONNECTOR_UNIT_EOF\n")).toThrow(
      'it holds a line "CONNECTOR_UNIT_EOF"',
    );
    const { "connector-upgrade.service": _dropped, ...missing } = units;
    expect(() => bakeInstaller(template, { rootSpkis: keys.rootSpkis, channel: "stable", units: missing })).toThrow(
      "no unit connector-upgrade.service",
    );
  });
});
