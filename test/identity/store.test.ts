import { afterEach, beforeEach, describe, expect, spyOn, test } from "bun:test";
import * as fs from "node:fs";
import {
  chmodSync,
  existsSync,
  symlinkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IdentityExistsError, IdentityStore } from "../../src/identity/store.ts";
import { nodeStoreFs, type StoreFs } from "../../src/identity/store-fs.ts";
import { ExitCode, StateError } from "../../src/errors.ts";
import { makeIdentity } from "./fixtures.ts";
import { createTestCa } from "../support/test-pki.ts";

const OLD = makeIdentity("conn-old");
const NEW = makeIdentity("conn-new");

let root: string;
let stateDir: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "identity-store-"));
  stateDir = join(root, "state");
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const mode = (path: string) => statSync(path).mode & 0o777;

class Crash extends Error {}

/** A clock an hour ahead: the next start after a crash, when leftover temp dirs count as stale. */
const later = () => Date.now() + 60 * 60 * 1000;

/**
 * A StoreFs that dies at its `crashAt`-th mutating operation: that operation fails (a write leaves a
 * torn, unsynced file behind) and so does every later one, as if the process had been killed.
 */
function crashingFs(crashAt: number): StoreFs & { readonly steps: number } {
  let steps = 0;
  let dead = false;
  const step = () => {
    if (dead) throw new Crash("process is dead");
    steps++;
    if (steps === crashAt) {
      dead = true;
      return true;
    }
    return false;
  };
  return {
    get steps() {
      return steps;
    },
    mkdir(path, m) {
      if (step()) throw new Crash("mkdir");
      nodeStoreFs.mkdir(path, m);
    },
    writeNewFile(path, data, m) {
      if (step()) {
        writeFileSync(path, data.slice(0, Math.floor(data.length / 2)), { mode: m });
        throw new Crash("write");
      }
      nodeStoreFs.writeNewFile(path, data, m);
    },
    fsyncDir(path) {
      if (step()) throw new Crash("fsync");
      nodeStoreFs.fsyncDir(path);
    },
    rename(from, to) {
      if (step()) throw new Crash("rename");
      nodeStoreFs.rename(from, to);
    },
    remove(path) {
      if (step()) throw new Crash("remove");
      nodeStoreFs.remove(path);
    },
    exists: nodeStoreFs.exists,
    canEnter: nodeStoreFs.canEnter,
    mtimeMs: nodeStoreFs.mtimeMs,
    mode: nodeStoreFs.mode,
    readdir: nodeStoreFs.readdir,
    readFile: nodeStoreFs.readFile,
  };
}

function snapshot(dir: string): Record<string, { bytes: string; mtimeMs: number }> {
  const out: Record<string, { bytes: string; mtimeMs: number }> = {};
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    out[name] = { bytes: readFileSync(path, "base64"), mtimeMs: statSync(path).mtimeMs };
  }
  return out;
}

describe("IdentityStore.save", () => {
  test("writes identity.json and key.pem that load back equal", () => {
    const store = new IdentityStore(stateDir);
    store.save(NEW, { replace: false });
    const loaded = store.load();
    expect(loaded?.connectorId).toBe("conn-new");
    expect(loaded?.certificate).toBe(NEW.certificate);
    expect(loaded?.gateways).toEqual(NEW.gateways);
    expect(loaded?.privateKeyPem.reveal()).toBe(NEW.privateKeyPem.reveal());
    expect(readdirSync(join(stateDir, "identity")).sort()).toEqual(["identity.json", "key.pem"]);
  });

  test("the state dir and identity dir are 0700, both files 0600, whatever the umask", () => {
    const previous = process.umask(0);
    try {
      new IdentityStore(stateDir).save(NEW, { replace: false });
    } finally {
      process.umask(previous);
    }
    expect(mode(stateDir)).toBe(0o700);
    expect(mode(join(stateDir, "identity"))).toBe(0o700);
    expect(mode(join(stateDir, "identity", "key.pem"))).toBe(0o600);
    expect(mode(join(stateDir, "identity", "identity.json"))).toBe(0o600);
  });

  test("the mode of a new directory is set on it, not on a symlink swapped in for it", () => {
    mkdirSync(stateDir, { mode: 0o700 });
    const victim = join(root, "victim");
    mkdirSync(victim);
    chmodSync(victim, 0o755);
    const path = join(stateDir, "new-dir");
    const real = fs.mkdirSync;
    const spy = spyOn(fs, "mkdirSync").mockImplementation(((p: string, options: fs.MakeDirectoryOptions) => {
      const made = real(p, options);
      if (p === path) {
        renameSync(path, join(stateDir, "moved-away"));
        symlinkSync(victim, path);
      }
      return made;
    }) as typeof fs.mkdirSync);
    const previous = process.umask(0o277); // 0700 would come out 0500: the mode has to be fixed up
    try {
      nodeStoreFs.mkdir(path, 0o700);
    } catch {
      // Refusing to follow the symlink is the right outcome too; the victim's mode is what matters.
    } finally {
      process.umask(previous);
      spy.mockRestore();
    }
    expect(mode(victim)).toBe(0o755);
  });

  test("an existing state dir keeps its mode (it may be shared); the identity dir inside is 0700", () => {
    mkdirSync(stateDir, { mode: 0o755 });
    chmodSync(stateDir, 0o755);
    new IdentityStore(stateDir).save(NEW, { replace: false });
    expect(mode(stateDir)).toBe(0o755);
    expect(mode(join(stateDir, "identity"))).toBe(0o700);
    expect(mode(join(stateDir, "identity", "key.pem"))).toBe(0o600);
  });

  test("identity.json never contains the private key", () => {
    new IdentityStore(stateDir).save(NEW, { replace: false });
    const json = readFileSync(join(stateDir, "identity", "identity.json"), "utf8");
    expect(json).not.toContain("PRIVATE KEY");
    expect(json).not.toContain("privateKeyPem");
  });

  test("without replace an existing identity is refused (exit 20) and left byte-for-byte unchanged", () => {
    const store = new IdentityStore(stateDir);
    store.save(OLD, { replace: false });
    const before = snapshot(join(stateDir, "identity"));
    let caught: unknown;
    try {
      store.save(NEW, { replace: false });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(IdentityExistsError);
    expect((caught as IdentityExistsError).exitCode).toBe(ExitCode.identityExists);
    expect(snapshot(join(stateDir, "identity"))).toEqual(before);
    expect(readdirSync(stateDir)).toEqual(["identity"]);
  });

  test("with replace the new identity takes the place of the old one and nothing else remains", () => {
    const store = new IdentityStore(stateDir);
    store.save(OLD, { replace: false });
    store.save(NEW, { replace: true });
    expect(store.load()?.connectorId).toBe("conn-new");
    expect(readdirSync(stateDir)).toEqual(["identity"]);
  });

  test("a lost race (identity appears before the final rename) is refused, not merged", () => {
    const store = new IdentityStore(stateDir);
    const racing: StoreFs = {
      ...nodeStoreFs,
      rename(from, to) {
        // Another enrollment finishes first.
        if (!existsSync(to)) new IdentityStore(stateDir).save(OLD, { replace: false });
        nodeStoreFs.rename(from, to);
      },
    };
    expect(() => new IdentityStore(stateDir, racing).save(NEW, { replace: false })).toThrow(IdentityExistsError);
    expect(store.load()?.connectorId).toBe("conn-old");
    expect(readdirSync(stateDir)).toEqual(["identity"]);
  });
});

describe("crash at each step of a save", () => {
  /** Number of mutating fs operations a save makes, measured with a fs that never crashes. */
  function stepsOf(replace: boolean): number {
    const dir = join(root, `count-${replace}`);
    if (replace) new IdentityStore(dir).save(OLD, { replace: false });
    const counting = crashingFs(Number.POSITIVE_INFINITY);
    new IdentityStore(dir, counting).save(NEW, { replace });
    return counting.steps;
  }

  test("a first enrollment leaves either no identity or the complete new one", () => {
    const steps = stepsOf(false);
    expect(steps).toBeGreaterThanOrEqual(5);
    for (let crashAt = 1; crashAt <= steps; crashAt++) {
      rmSync(stateDir, { recursive: true, force: true });
      expect(() => new IdentityStore(stateDir, crashingFs(crashAt)).save(NEW, { replace: false })).toThrow(Crash);
      const loaded = new IdentityStore(stateDir).load();
      if (loaded) expect(loaded.privateKeyPem.reveal()).toBe(NEW.privateKeyPem.reveal());
      // A later start also clears the crashed save's temp dir.
      new IdentityStore(stateDir, nodeStoreFs, later).load();
      expect(readdirSync(stateDir)).toEqual(loaded ? ["identity"] : []);
    }
  });

  test("a replacement leaves either the complete old or the complete new identity", () => {
    const steps = stepsOf(true);
    const outcomes = new Set<string>();
    for (let crashAt = 1; crashAt <= steps; crashAt++) {
      rmSync(stateDir, { recursive: true, force: true });
      new IdentityStore(stateDir).save(OLD, { replace: false });
      try {
        new IdentityStore(stateDir, crashingFs(crashAt)).save(NEW, { replace: true });
      } catch (err) {
        if (!(err instanceof Crash)) throw err;
      }
      const loaded = new IdentityStore(stateDir).load();
      expect(loaded).toBeDefined();
      const expected = loaded!.connectorId === "conn-old" ? OLD : NEW;
      expect(loaded!.certificate).toBe(expected.certificate);
      expect(loaded!.privateKeyPem.reveal()).toBe(expected.privateKeyPem.reveal());
      new IdentityStore(stateDir, nodeStoreFs, later).load();
      expect(readdirSync(stateDir)).toEqual(["identity"]);
      outcomes.add(loaded!.connectorId);
    }
    // Early crashes keep the old identity, late ones have the new one: both paths were exercised.
    expect([...outcomes].sort()).toEqual(["conn-new", "conn-old"]);
  });

  test("a failed save (an error, not a crash) cleans up after itself at once", () => {
    const failing: StoreFs = {
      ...nodeStoreFs,
      fsyncDir(path) {
        if (path.endsWith(".tmp")) throw new Error("EIO");
        nodeStoreFs.fsyncDir(path);
      },
    };
    new IdentityStore(stateDir).save(OLD, { replace: false });
    expect(() => new IdentityStore(stateDir, failing).save(NEW, { replace: true })).toThrow("EIO");
    expect(readdirSync(stateDir)).toEqual(["identity"]);
    expect(new IdentityStore(stateDir).read()?.connectorId).toBe("conn-old");
  });
});

describe("recovery", () => {
  test("only .identity.old present (crash between renames): load puts it back", () => {
    const store = new IdentityStore(stateDir);
    store.save(OLD, { replace: false });
    renameSync(join(stateDir, "identity"), join(stateDir, ".identity.old"));
    expect(store.exists()).toBe(true);
    expect(store.load()?.connectorId).toBe("conn-old");
    expect(readdirSync(stateDir)).toEqual(["identity"]);
  });

  test("a .identity.old in a state dir others may write into is not renamed into place: STATE_DIR_UNSAFE", () => {
    const store = new IdentityStore(stateDir);
    store.save(OLD, { replace: false });
    renameSync(join(stateDir, "identity"), join(stateDir, ".identity.old"));
    chmodSync(stateDir, 0o1777);
    expect(() => store.load()).toThrow(expect.objectContaining({ code: "STATE_DIR_UNSAFE" }));
    expect(readdirSync(stateDir)).toEqual([".identity.old"]);
    expect(mode(stateDir)).toBe(0o777);
  });

  test("a symlinked identity.json is not followed", () => {
    const store = new IdentityStore(stateDir);
    store.save(OLD, { replace: false });
    const json = join(stateDir, "identity", "identity.json");
    renameSync(json, join(root, "planted.json"));
    symlinkSync(join(root, "planted.json"), json);
    expect(() => store.load()).toThrow(expect.objectContaining({ code: "STATE_FILE_UNSAFE" }));
  });

  test("read() sees the identity in .identity.old without writing anything", () => {
    const store = new IdentityStore(stateDir);
    store.save(OLD, { replace: false });
    renameSync(join(stateDir, "identity"), join(stateDir, ".identity.old"));
    expect(store.read()?.connectorId).toBe("conn-old");
    expect(readdirSync(stateDir)).toEqual([".identity.old"]);
  });

  test("both present (crash before removing the old one): the old one is removed", () => {
    const store = new IdentityStore(stateDir);
    store.save(OLD, { replace: false });
    rmSync(join(root, "x"), { force: true, recursive: true });
    mkdirSync(join(stateDir, ".identity.old"));
    writeFileSync(join(stateDir, ".identity.old", "identity.json"), "{}");
    expect(store.load()?.connectorId).toBe("conn-old");
    expect(readdirSync(stateDir)).toEqual(["identity"]);
  });

  test("stale temp directories are removed; young ones (a concurrent enrollment) and other files are kept", () => {
    const store = new IdentityStore(stateDir);
    store.save(OLD, { replace: false });
    const stale = join(stateDir, ".identity.0123456789ab.tmp");
    mkdirSync(stale);
    writeFileSync(join(stale, "key.pem"), "partial");
    const hourAgo = new Date(Date.now() - 60 * 60 * 1000);
    utimesSync(stale, hourAgo, hourAgo);
    mkdirSync(join(stateDir, ".identity.ba9876543210.tmp"));
    writeFileSync(join(stateDir, "provision_key"), "cnk1.x");
    store.load();
    expect(readdirSync(stateDir).sort()).toEqual([".identity.ba9876543210.tmp", "identity", "provision_key"]);
  });

  test("a missing state dir means not enrolled", () => {
    const store = new IdentityStore(join(root, "nope"));
    expect(store.exists()).toBe(false);
    expect(store.load()).toBeUndefined();
    expect(existsSync(join(root, "nope"))).toBe(false);
  });
});

describe("validation on read", () => {
  function expectCorrupt(store: IdentityStore, fragment: string) {
    let caught: unknown;
    try {
      store.load();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(StateError);
    expect((caught as StateError).code).toBe("IDENTITY_CORRUPT");
    expect((caught as StateError).message).toContain(fragment);
    expect((caught as StateError).message).not.toContain("PRIVATE KEY");
  }

  test("a key.pem readable by group or others is refused, naming the fix (chmod 600)", () => {
    const store = new IdentityStore(stateDir);
    store.save(OLD, { replace: false });
    const keyPath = join(stateDir, "identity", "key.pem");
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      chmodSync(keyPath, mode);
      let caught: unknown;
      try {
        store.load();
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(StateError);
      expect((caught as StateError).code).toBe("IDENTITY_KEY_EXPOSED");
      expect((caught as StateError).message).toContain(`chmod 600 ${keyPath}`);
      expect((caught as StateError).message).toContain(`0${mode.toString(8)}`);
      expect((caught as StateError).message).not.toContain("PRIVATE KEY");
    }
    chmodSync(keyPath, 0o400);
    expect(store.load()?.connectorId).toBe("conn-old");
  });

  test("a stored CA certificate that does not match the stored CA pin is refused", () => {
    const store = new IdentityStore(stateDir);
    store.save(OLD, { replace: false });
    const path = join(stateDir, "identity", "identity.json");
    const other = createTestCa("Some Other CA");
    const json = JSON.parse(readFileSync(path, "utf8"));
    writeFileSync(path, JSON.stringify({ ...json, caCertificate: other.cert }));
    expectCorrupt(store, "does not match the stored CA pin");
    writeFileSync(
      path,
      JSON.stringify({ ...json, caCertificate: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" }),
    );
    expectCorrupt(store, "CA certificate cannot be parsed");
  });

  test("identity.json that is not JSON is reported", () => {
    const store = new IdentityStore(stateDir);
    store.save(OLD, { replace: false });
    writeFileSync(join(stateDir, "identity", "identity.json"), "{not json");
    expectCorrupt(store, "not JSON");
  });

  test("an unknown format version is reported with the field", () => {
    const store = new IdentityStore(stateDir);
    store.save(OLD, { replace: false });
    const path = join(stateDir, "identity", "identity.json");
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, "utf8")), formatVersion: 2 }));
    expectCorrupt(store, "formatVersion");
  });

  test("a key that does not belong to the certificate is reported", () => {
    const store = new IdentityStore(stateDir);
    store.save(OLD, { replace: false });
    writeFileSync(join(stateDir, "identity", "key.pem"), NEW.privateKeyPem.reveal());
    expectCorrupt(store, "does not match the certificate");
  });

  test("a state dir this user may not enter is reported as unreadable, not as 'not enrolled'", () => {
    new IdentityStore(stateDir).save(OLD, { replace: false });
    const denied: StoreFs = { ...nodeStoreFs, canEnter: () => false };
    expect(() => new IdentityStore(stateDir, denied).read()).toThrow(
      expect.objectContaining({ code: "IDENTITY_UNREADABLE" }),
    );
  });

  test("a missing key.pem is reported", () => {
    const store = new IdentityStore(stateDir);
    store.save(OLD, { replace: false });
    rmSync(join(stateDir, "identity", "key.pem"));
    expectCorrupt(store, "missing");
  });
});
