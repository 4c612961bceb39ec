import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
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
import { UpgradeError } from "../../src/upgrade/errors.ts";
import {
  canReplace,
  prevPath,
  removeSwapLeftovers,
  restorePrevious,
  swapBinary,
  type SwapStep,
} from "../../src/upgrade/swap.ts";
import { fakeBinaryText, runVersion, writeFakeBinary } from "../support/swap-binaries.ts";

let dir: string;
let installed: string;
let oldBytes: Buffer;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "swap-"));
  installed = join(dir, "connector");
  oldBytes = writeFakeBinary(installed, "1.0.0");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function rejection(promise: Promise<unknown>): Promise<UpgradeError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof UpgradeError) return err;
    throw err;
  }
  throw new Error("expected an UpgradeError");
}

const newBytes = (): Buffer => Buffer.from(fakeBinaryText("1.1.0", "linux-x64", 100));

describe("swapBinary", () => {
  test("installs the new bytes 0755, keeps the old as connector.prev, runs the check on the temp file, leaves no temp", async () => {
    const steps: SwapStep[] = [];
    let checked: string | undefined;
    await swapBinary({
      installed,
      bytes: newBytes(),
      check: async (temp) => {
        checked = runVersion(temp);
        expect(temp.startsWith(join(dir, ".connector.new."))).toBe(true);
        expect(statSync(temp).mode & 0o777).toBe(0o755);
      },
      hook: (step) => void steps.push(step),
    });
    expect(checked).toContain("connector 1.1.0 ");
    expect(steps).toEqual([
      "temp-written",
      "temp-synced",
      "temp-executable",
      "checked",
      "prev-kept",
      "renamed",
      "dir-synced",
    ]);
    expect(Buffer.compare(readFileSync(installed), newBytes())).toBe(0);
    expect(statSync(installed).mode & 0o777).toBe(0o755);
    expect(Buffer.compare(readFileSync(prevPath(installed)), oldBytes)).toBe(0);
    expect(runVersion(prevPath(installed))).toContain("connector 1.0.0 ");
    expect(readdirSync(dir).sort()).toEqual(["connector", "connector.prev"]);
  });

  test("the new binary takes the old one's mode, without group/other write", async () => {
    chmodSync(installed, 0o775);
    await swapBinary({ installed, bytes: newBytes() });
    expect(statSync(installed).mode & 0o777).toBe(0o755);
    chmodSync(installed, 0o700);
    await swapBinary({ installed, bytes: Buffer.from(fakeBinaryText("1.2.0")) });
    expect(statSync(installed).mode & 0o777).toBe(0o700);
  });

  test("a check that throws: the temp is removed, connector and connector.prev untouched, the check's error thrown", async () => {
    writeFileSync(prevPath(installed), "older");
    const err = await rejection(
      swapBinary({
        installed,
        bytes: newBytes(),
        check: async () => {
          throw new UpgradeError("SELF_CHECK_FAILED", "prints 9.9.9");
        },
      }),
    );
    expect(err.code).toBe("SELF_CHECK_FAILED");
    expect(Buffer.compare(readFileSync(installed), oldBytes)).toBe(0);
    expect(readFileSync(prevPath(installed), "utf8")).toBe("older");
    expect(readdirSync(dir).sort()).toEqual(["connector", "connector.prev"]);
  });

  test("a check failing with a plain error is a SELF_CHECK_FAILED", async () => {
    const err = await rejection(
      swapBinary({
        installed,
        bytes: newBytes(),
        check: async () => {
          throw new Error("exit 1");
        },
      }),
    );
    expect(err.code).toBe("SELF_CHECK_FAILED");
    expect(Buffer.compare(readFileSync(installed), oldBytes)).toBe(0);
  });

  test("a failure before the rename (the prev slot is a directory): SWAP_FAILED with the errno, everything as it was", async () => {
    mkdirSync(join(dir, "connector.prev"));
    writeFileSync(join(dir, "connector.prev", "keep"), "x");
    const err = await rejection(swapBinary({ installed, bytes: newBytes() }));
    expect(err.code).toBe("SWAP_FAILED");
    expect(err.message).toMatch(/EISDIR|ENOTEMPTY|EEXIST/);
    expect(Buffer.compare(readFileSync(installed), oldBytes)).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(["connector", "connector.prev"]);
  });

  test("a directory that does not exist: SWAP_FAILED (ENOENT), nothing created", async () => {
    const err = await rejection(swapBinary({ installed: join(dir, "missing", "connector"), bytes: newBytes() }));
    expect(err.code).toBe("SWAP_FAILED");
    expect(err.message).toContain("ENOENT");
    expect(existsSync(join(dir, "missing"))).toBe(false);
  });

  test("a hook failing before the rename leaves connector as it was and removes the temp", async () => {
    const err = await swapBinary({
      installed,
      bytes: newBytes(),
      hook: (step) => {
        if (step === "prev-kept") throw new Error("disk gone");
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpgradeError);
    expect(Buffer.compare(readFileSync(installed), oldBytes)).toBe(0);
    expect(readdirSync(dir).filter((n) => n.startsWith(".")).length).toBe(0);
  });
});

describe("restorePrevious", () => {
  test("puts connector.prev back byte-identically, 0755, keeps prev for a repeat, leaves no temp", async () => {
    await swapBinary({ installed, bytes: newBytes() });
    restorePrevious(installed);
    expect(Buffer.compare(readFileSync(installed), oldBytes)).toBe(0);
    expect(statSync(installed).mode & 0o777).toBe(0o755);
    expect(runVersion(installed)).toContain("connector 1.0.0 ");
    expect(Buffer.compare(readFileSync(prevPath(installed)), oldBytes)).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(["connector", "connector.prev"]);
  });

  test("no connector.prev: NO_PREVIOUS_BINARY, connector untouched", () => {
    expect(() => restorePrevious(installed)).toThrow(expect.objectContaining({ code: "NO_PREVIOUS_BINARY" }));
    expect(Buffer.compare(readFileSync(installed), oldBytes)).toBe(0);
  });
});

describe("helpers", () => {
  test("canReplace: a writable directory yes, a missing one no", () => {
    expect(canReplace(installed)).toBe(true);
    expect(canReplace(join(dir, "missing", "connector"))).toBe(false);
  });

  test("removeSwapLeftovers removes only our temp names", () => {
    for (const name of [
      ".connector.new.0123456789ab",
      ".connector.prev.0123456789ab",
      ".connector.restore.0123456789ab",
      ".connector.new.x",
      "other",
    ])
      writeFileSync(join(dir, name), "");
    removeSwapLeftovers(installed);
    expect(readdirSync(dir).sort()).toEqual([".connector.new.x", "connector", "other"]);
  });
});

/** What an unprivileged user sees: the swap child run as nobody (the tests run as root, which may write anywhere). */
const NOBODY = 65_534;
const CHILD = join(import.meta.dir, "../support/swap-child.ts");
const protectedHardlinks = ((): boolean => {
  try {
    return readFileSync("/proc/sys/fs/protected_hardlinks", "utf8").trim() === "1";
  } catch {
    return false;
  }
})();

async function swapAsNobody(): Promise<{ exitCode: number; stdout: string }> {
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, "new"), newBytes(), { mode: 0o644 });
  const child = Bun.spawn(
    [
      "setpriv",
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      "--clear-groups",
      process.execPath,
      CHILD,
      installed,
      join(dir, "new"),
      "no-such-step",
    ],
    {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir },
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  const [exitCode, stdout, stderr] = await Promise.all([
    child.exited,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  if (exitCode !== 0 && exitCode !== 3) throw new Error(`swap child exited ${exitCode}: ${stdout}${stderr}`);
  return { exitCode, stdout };
}

describe.skipIf(process.geteuid?.() !== 0)("as an unprivileged user", () => {
  test("a directory it cannot write: canReplace false, SWAP_FAILED (EACCES), everything as it was", async () => {
    const { exitCode, stdout } = await swapAsNobody();
    expect(stdout).toContain("CAN_REPLACE false");
    expect(exitCode).toBe(3);
    expect(stdout).toContain("SWAP_ERROR SWAP_FAILED");
    expect(stdout).toContain("EACCES");
    expect(Buffer.compare(readFileSync(installed), oldBytes)).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(["connector", "new"]);
  });

  test.skipIf(!protectedHardlinks)(
    "a hard link refused (a root-owned binary, protected_hardlinks): the old binary is copied to connector.prev",
    async () => {
      const oldInode = statSync(installed).ino;
      chownSync(dir, NOBODY, NOBODY);
      const { exitCode, stdout } = await swapAsNobody();
      expect({ exitCode, stdout }).toEqual({ exitCode: 0, stdout: "CAN_REPLACE true\n" });
      expect(Buffer.compare(readFileSync(installed), newBytes())).toBe(0);
      const prev = statSync(prevPath(installed));
      expect(Buffer.compare(readFileSync(prevPath(installed)), oldBytes)).toBe(0);
      expect(prev.ino).not.toBe(oldInode);
      expect(prev.mode & 0o777).toBe(0o755);
      expect(runVersion(prevPath(installed))).toContain("connector 1.0.0 ");
    },
  );
});

describe("an installed path that is a symlink", () => {
  test("the real binary is replaced and kept beside itself; the link stays a link", async () => {
    const link = join(dir, "link-connector");
    symlinkSync(installed, link);
    await swapBinary({ installed: link, bytes: newBytes() });
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(Buffer.compare(readFileSync(installed), newBytes())).toBe(0);
    expect(prevPath(link)).toBe(join(dir, "connector.prev"));
    expect(Buffer.compare(readFileSync(join(dir, "connector.prev")), oldBytes)).toBe(0);
    restorePrevious(link);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(Buffer.compare(readFileSync(installed), oldBytes)).toBe(0);
  });
});
