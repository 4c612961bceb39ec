import { afterAll, afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  connectorName,
  enroll,
  enrollExclusively,
  type EnrollDeps,
  type EnrollOptions,
} from "../../src/identity/enroll.ts";
import { generateKeyPair } from "../../src/identity/keypair.ts";
import { IdentityStore } from "../../src/identity/store.ts";
import { takeDaemonLock } from "../../src/state/daemon-lock.ts";
import { createLogger } from "../../src/log.ts";
import { ConnectorError, ExitCode } from "../../src/errors.ts";
import { createTestCa } from "../support/test-pki.ts";
import { startFakeControlPlane } from "../control/fake-control-plane.ts";

const cloud = startFakeControlPlane();
afterAll(() => cloud.stop());
const smallKeys = await generateKeyPair(2048);

let dir: string;
let logLines: string[];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "enroll-"));
  logLines = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function options(overrides: Partial<EnrollOptions> = {}): EnrollOptions {
  return {
    stateDir: join(dir, "state"),
    key: cloud.key,
    env: {},
    force: false,
    log: createLogger({ level: "trace", format: "json", write: (line) => logLines.push(line) }),
    ...overrides,
  };
}

const deps = (overrides: Partial<EnrollDeps> = {}): EnrollDeps => ({
  generateKeyPair: async () => smallKeys,
  machineIdPath: join(dir, "machine-id"),
  hostname: () => "host-a",
  ...overrides,
});

async function failure(promise: Promise<unknown>): Promise<ConnectorError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ConnectorError) return err;
    throw err;
  }
  throw new Error("expected a ConnectorError");
}

describe("enrollExclusively (connector enroll)", () => {
  test("refuses ALREADY_RUNNING (exit 23) while a daemon holds the state dir's lock: no request, identity untouched", async () => {
    await enroll(options(), deps());
    const keyPem = readFileSync(join(dir, "state", "identity", "key.pem"), "utf8");
    const daemon = await takeDaemonLock(join(dir, "state"));
    try {
      const before = cloud.requests.length;
      const err = await failure(enrollExclusively(options({ force: true }), deps()));
      expect(err.code).toBe("ALREADY_RUNNING");
      expect(err.exitCode).toBe(ExitCode.alreadyRunning);
      expect(cloud.requests.length).toBe(before);
      expect(readFileSync(join(dir, "state", "identity", "key.pem"), "utf8")).toBe(keyPem);
    } finally {
      daemon.release();
    }
    // Released by the daemon: the same call replaces the identity, and lets go of the lock after.
    const result = await enrollExclusively(options({ force: true }), deps());
    expect(result.replaced).toBe(true);
    (await takeDaemonLock(join(dir, "state"))).release();
  });
});

describe("enroll", () => {
  test("stores an identity whose certificate is for the key generated here", async () => {
    writeFileSync(join(dir, "machine-id"), "0123456789abcdef0123456789abcdef\n");
    const result = await enroll(options(), deps());
    expect(result.identity.connectorId).toBe("conn-1");
    expect(result.identity.group).toBe("group-a");
    expect(result.replaced).toBe(false);
    const stored = new IdentityStore(join(dir, "state")).load();
    expect(stored?.connectorId).toBe("conn-1");
    expect(stored?.machineId).toBe("0123456789abcdef0123456789abcdef");
    expect(stored?.privateKeyPem.reveal()).toBe(smallKeys.privateKeyPem.reveal());
    expect(result.notAfter.getTime()).toBeGreaterThan(Date.now());
    expect(cloud.lastEnroll?.machineId).toBe("0123456789abcdef0123456789abcdef");
    expect(cloud.lastEnroll?.name).toBe("host-a");
  });

  test("by default generates an RSA-3072 key", async () => {
    const result = await enroll(options(), deps({ generateKeyPair: undefined }));
    const { createPublicKey } = await import("node:crypto");
    expect(createPublicKey(result.identity.privateKeyPem.reveal()).asymmetricKeyDetails?.modulusLength).toBe(3072);
  });

  test("an existing identity is refused before any request is sent (no key use spent)", async () => {
    await enroll(options(), deps());
    const before = cloud.requests.length;
    const err = await failure(enroll(options(), deps()));
    expect(err.exitCode).toBe(ExitCode.identityExists);
    expect(cloud.requests.length).toBe(before);
  });

  test("--force replaces the identity", async () => {
    await enroll(options(), deps());
    const other = await generateKeyPair(2048);
    const result = await enroll(options({ force: true }), deps({ generateKeyPair: async () => other }));
    expect(result.replaced).toBe(true);
    expect(new IdentityStore(join(dir, "state")).load()?.privateKeyPem.reveal()).toBe(other.privateKeyPem.reveal());
  });

  test("a certificate issued for another key is refused and nothing is stored", async () => {
    const cp = startFakeControlPlane({ ca: cloud.ca });
    try {
      const stranger = await generateKeyPair(2048);
      cp.override("POST /v1/enroll", async (req) => {
        const body = (await req.json()) as { name: string };
        const certificate = cloud.ca.signPublicKey(stranger.publicKeyPem, { commonName: "x", usage: "client" });
        return Response.json(
          {
            connectorId: "c",
            name: body.name,
            group: "g",
            certificate,
            chain: [],
            caCertificate: cloud.ca.cert,
            gateways: [{ id: "g", url: "wss://127.0.0.1:1/" }],
          },
          { status: 201 },
        );
      });
      const err = await failure(enroll(options({ key: cp.key }), deps()));
      expect(err.code).toBe("BAD_RESPONSE");
      expect(err.message).toContain("not for the key pair generated here");
      expect(readdirSync(join(dir, "state"))).toEqual([]);
    } finally {
      cp.stop();
    }
  });

  test("a certificate signed by another CA is refused", async () => {
    const cp = startFakeControlPlane({ ca: cloud.ca });
    const rogue = createTestCa("Rogue");
    try {
      cp.override("POST /v1/enroll", async (req) => {
        const body = (await req.json()) as { name: string };
        const certificate = rogue.signPublicKey(smallKeys.publicKeyPem, { commonName: "x", usage: "client" });
        return Response.json(
          {
            connectorId: "c",
            name: body.name,
            group: "g",
            certificate,
            chain: [],
            caCertificate: cloud.ca.cert,
            gateways: [{ id: "g", url: "wss://127.0.0.1:1/" }],
          },
          { status: 201 },
        );
      });
      const err = await failure(enroll(options({ key: cp.key }), deps()));
      expect(err.message).toContain("does not chain to the pinned CA");
    } finally {
      cp.stop();
    }
  });

  test("a key rejection leaves nothing in the state dir", async () => {
    const cp = startFakeControlPlane({ ca: cloud.ca });
    try {
      cp.override("POST /v1/enroll", () =>
        Response.json({ error: { code: "KEY_EXHAUSTED", message: "used up" } }, { status: 403 }),
      );
      const err = await failure(enroll(options({ key: cp.key }), deps()));
      expect(err.exitCode).toBe(ExitCode.keyExhausted);
      expect(readdirSync(join(dir, "state"))).toEqual([]);
    } finally {
      cp.stop();
    }
  });

  test("a state dir that cannot be created is a clear state error, before any request", async () => {
    writeFileSync(join(dir, "file"), "");
    const before = cloud.requests.length;
    const err = await failure(enroll(options({ stateDir: join(dir, "file", "state") }), deps()));
    expect(err.code).toBe("STATE_DIR_UNWRITABLE");
    expect(err.message).toContain(join(dir, "file", "state"));
    expect(cloud.requests.length).toBe(before);
  });

  test("a state dir that fails the write probe (read-only, full) is refused before any request", async () => {
    const before = cloud.requests.length;
    const probes: { path: string; bytes: number }[] = [];
    const probe = (path: string, bytes: number) => {
      probes.push({ path, bytes });
      throw Object.assign(new Error("EROFS: read-only file system"), { code: "EROFS" });
    };
    const err = await failure(enroll(options(), deps({ probeWritable: probe })));
    expect(err.code).toBe("STATE_DIR_UNWRITABLE");
    expect(err.message).toContain("EROFS");
    expect(cloud.requests.length).toBe(before);
    expect(probes.length).toBe(1);
    expect(probes[0]!.path.startsWith(`${join(dir, "state")}/`)).toBe(true);
    expect(probes[0]!.bytes).toBeGreaterThanOrEqual(8 * 1024);
  });

  test("an existing shared (1777) state dir is refused STATE_DIR_UNSAFE before the network, its mode unchanged; a symlinked safe one's target is not chmodded", async () => {
    const shared = join(dir, "shared");
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    const before = cloud.requests.length;
    const err = await failure(enroll(options({ stateDir: shared }), deps()));
    expect(err.code).toBe("STATE_DIR_UNSAFE");
    expect(err.message).toContain("mode 1777");
    expect(err.message).toContain(`chmod go-w ${shared}`);
    expect(cloud.requests.length).toBe(before);
    expect(statSync(shared).mode & 0o7777).toBe(0o1777);
    expect(readdirSync(shared)).toEqual([]);

    const target = join(dir, "target");
    mkdirSync(target);
    chmodSync(target, 0o755);
    symlinkSync(target, join(dir, "link"));
    await enroll(options({ stateDir: join(dir, "link") }), deps());
    expect(statSync(target).mode & 0o7777).toBe(0o755);
    expect(new IdentityStore(join(dir, "link")).load()?.connectorId).toBeDefined();
  });

  test("a key read from <state-dir>/provision_key is removed once the identity is stored, and kept when enrollment fails", async () => {
    const stateDir = join(dir, "state");
    mkdirSync(stateDir);
    const keyFile = join(stateDir, "provision_key");
    writeFileSync(keyFile, cloud.key, { mode: 0o644 });
    await enroll(options({ key: undefined }), deps());
    expect(existsSync(keyFile)).toBe(false);
    expect(logLines.some((l) => l.includes("provisioning key file removed after enrollment"))).toBe(true);

    const cp = startFakeControlPlane({ ca: cloud.ca });
    try {
      cp.override("POST /v1/enroll", () =>
        Response.json({ error: { code: "KEY_EXPIRED", message: "expired" } }, { status: 403 }),
      );
      writeFileSync(keyFile, cp.key);
      await failure(enroll(options({ key: undefined, force: true }), deps()));
      expect(existsSync(keyFile)).toBe(true);
    } finally {
      cp.stop();
    }
  });

  test("a key given another way leaves <state-dir>/provision_key alone", async () => {
    const stateDir = join(dir, "state");
    mkdirSync(stateDir);
    writeFileSync(join(stateDir, "provision_key"), cloud.key);
    await enroll(options(), deps());
    expect(existsSync(join(stateDir, "provision_key"))).toBe(true);
  });

  test("no key at all exits 22 before touching the network", async () => {
    const before = cloud.requests.length;
    const err = await failure(enroll(options({ key: undefined }), deps()));
    expect(err.exitCode).toBe(ExitCode.noKey);
    expect(cloud.requests.length).toBe(before);
  });

  test("logs, even at trace level, carry neither the key's secret nor the private key", async () => {
    await enroll(options(), deps());
    const logs = logLines.join("");
    expect(logs).toContain("enrolled");
    expect(logs).not.toContain(cloud.secret);
    expect(logs).not.toContain(cloud.key.slice(5));
    expect(logs).not.toContain(smallKeys.privateKeyPem.reveal().split("\n")[1]!);
  });
});

describe("connectorName", () => {
  test("defaults to the hostname cut to 63 characters", () => {
    expect(connectorName(undefined, () => "h".repeat(80))).toBe("h".repeat(63));
  });
  test("a given name wins", () => {
    expect(connectorName("edge-1", () => "host")).toBe("edge-1");
  });
  test("an empty or over-long name is a usage error", () => {
    expect(() => connectorName("  ", () => "host")).toThrow(expect.objectContaining({ exitCode: ExitCode.usage }));
    expect(() => connectorName("x".repeat(64), () => "host")).toThrow(
      expect.objectContaining({ exitCode: ExitCode.usage }),
    );
  });
});
