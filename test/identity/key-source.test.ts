import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findProvisioningKey, NoProvisioningKeyError } from "../../src/identity/key-source.ts";
import { encodeProvisioningKey, ProvisioningKeyError } from "../../src/identity/provisioning-key.ts";
import { readMachineId } from "../../src/identity/machine-id.ts";
import { ExitCode } from "../../src/errors.ts";

const PIN = Buffer.alloc(32, 1).toString("base64url");
const keyFor = (host: string) =>
  encodeProvisioningKey({
    controlUrl: `https://${host}`,
    caPin: PIN,
    secret: Buffer.alloc(32, 2).toString("base64url"),
  });

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "key-source-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("findProvisioningKey precedence", () => {
  test("--key wins over every other source", () => {
    write("provision_key", keyFor("state.example"));
    const found = findProvisioningKey({
      key: keyFor("flag.example"),
      keyFile: write("k", keyFor("file.example")),
      env: { CONNECTOR_PROVISIONING_KEY: keyFor("env.example") },
      stateDir: dir,
    });
    expect(found.source).toBe("flag");
    expect(found.key.controlUrl).toBe("https://flag.example");
  });

  test("--key-file comes next, and its trailing newline is accepted", () => {
    const found = findProvisioningKey({
      keyFile: write("k", `${keyFor("file.example")}\n`),
      env: { CONNECTOR_PROVISIONING_KEY: keyFor("env.example") },
      stateDir: dir,
    });
    expect(found.source).toBe("key-file");
    expect(found.key.controlUrl).toBe("https://file.example");
  });

  test("then the environment variable", () => {
    write("provision_key", keyFor("state.example"));
    const found = findProvisioningKey({
      env: { CONNECTOR_PROVISIONING_KEY: ` "${keyFor("env.example")}" ` },
      stateDir: dir,
    });
    expect(found.source).toBe("env");
    expect(found.key.controlUrl).toBe("https://env.example");
  });

  test("then <state-dir>/provision_key", () => {
    write("provision_key", `'${keyFor("state.example")}'\r\n`);
    const found = findProvisioningKey({ env: { CONNECTOR_PROVISIONING_KEY: "" }, stateDir: dir });
    expect(found.source).toBe("state-file");
    expect(found.key.controlUrl).toBe("https://state.example");
  });
});

describe("findProvisioningKey failures", () => {
  test("no source at all exits 22 and lists every source", () => {
    let caught: unknown;
    try {
      findProvisioningKey({ env: {}, stateDir: dir });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(NoProvisioningKeyError);
    const err = caught as NoProvisioningKeyError;
    expect(err.exitCode).toBe(ExitCode.noKey);
    for (const part of ["--key", "--key-file", "CONNECTOR_PROVISIONING_KEY", join(dir, "provision_key")])
      expect(err.message).toContain(part);
  });

  test("a --key-file that does not exist exits 22 naming the path", () => {
    expect(() => findProvisioningKey({ keyFile: join(dir, "missing"), env: {}, stateDir: dir })).toThrow(
      expect.objectContaining({ exitCode: ExitCode.noKey, message: expect.stringContaining(join(dir, "missing")) }),
    );
  });

  test("a --key-file that is a directory exits 22", () => {
    mkdirSync(join(dir, "d"));
    expect(() => findProvisioningKey({ keyFile: join(dir, "d"), env: {}, stateDir: dir })).toThrow(
      expect.objectContaining({ exitCode: ExitCode.noKey }),
    );
  });

  test("a huge --key-file is refused without reading it all", () => {
    const path = write("big", "x".repeat(100_000));
    expect(() => findProvisioningKey({ keyFile: path, env: {}, stateDir: dir })).toThrow(
      expect.objectContaining({ exitCode: ExitCode.noKey }),
    );
  });

  test("a malformed key from any source exits 10 and the text is not echoed", () => {
    let caught: unknown;
    try {
      findProvisioningKey({ env: { CONNECTOR_PROVISIONING_KEY: "cnk1.notakeyatall" }, stateDir: dir });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ProvisioningKeyError);
    expect((caught as ProvisioningKeyError).exitCode).toBe(ExitCode.keyMalformed);
    expect((caught as ProvisioningKeyError).message).not.toContain("notakeyatall");
  });
});

describe("<state-dir>/provision_key is trusted only where no other user could have planted it", () => {
  test("in a state dir others may write into (1777): STATE_DIR_UNSAFE, the key not used", () => {
    const stateDir = join(dir, "shared");
    mkdirSync(stateDir);
    chmodSync(stateDir, 0o1777);
    writeFileSync(join(stateDir, "provision_key"), keyFor("attacker.example"));
    expect(() => findProvisioningKey({ env: {}, stateDir })).toThrow(
      expect.objectContaining({ code: "STATE_DIR_UNSAFE" }),
    );
  });

  test("a symlink named provision_key is not followed", () => {
    const stateDir = join(dir, "state");
    mkdirSync(stateDir);
    write("elsewhere", keyFor("attacker.example"));
    symlinkSync(join(dir, "elsewhere"), join(stateDir, "provision_key"));
    expect(() => findProvisioningKey({ env: {}, stateDir })).toThrow(
      expect.objectContaining({ code: "STATE_FILE_UNSAFE" }),
    );
  });

  test.skipIf(process.geteuid?.() !== 0)("a provision_key owned by another user (not root) is refused", () => {
    const stateDir = join(dir, "state");
    mkdirSync(stateDir);
    writeFileSync(join(stateDir, "provision_key"), keyFor("attacker.example"));
    chownSync(join(stateDir, "provision_key"), 65534, 65534);
    expect(() => findProvisioningKey({ env: {}, stateDir })).toThrow(
      expect.objectContaining({ code: "STATE_FILE_UNSAFE" }),
    );
  });
});

describe("readMachineId", () => {
  test("reads 32 hex digits", () => {
    expect(readMachineId(write("mid", "3D1219C7C4C5404AAA1F6D2A48ADFDA4\n"))).toBe("3d1219c7c4c5404aaa1f6d2a48adfda4");
  });
  test("an unreadable or malformed file means unknown", () => {
    expect(readMachineId(join(dir, "none"))).toBeUndefined();
    expect(readMachineId(write("bad", "uninitialized\n"))).toBeUndefined();
  });
});
