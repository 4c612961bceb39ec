import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConnectorError } from "../../src/errors.ts";
import { assertStateDirSafe, readStateFile, type StateFileRule } from "../../src/state/state-dir-safety.ts";

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "state-dir-safety-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const ours: StateFileRule = { owner: "self", privateMode: true };
const asRoot = process.geteuid?.() === 0;

function refusal(fn: () => unknown): ConnectorError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectorError);
    return err as ConnectorError;
  }
  throw new Error("expected a refusal, nothing was thrown");
}

describe("readStateFile", () => {
  test("reads a regular file of ours", () => {
    writeFileSync(join(root, "f"), "hello", { mode: 0o600 });
    expect(readStateFile(join(root, "f"), 100, ours)).toBe("hello");
  });

  test("a missing file throws ENOENT as it is", () => {
    let code: unknown;
    try {
      readStateFile(join(root, "none"), 100, ours);
    } catch (err) {
      code = (err as NodeJS.ErrnoException).code;
    }
    expect(code).toBe("ENOENT");
  });

  test("a symlink is not followed, even to a good file", () => {
    writeFileSync(join(root, "real"), "hello", { mode: 0o600 });
    symlinkSync(join(root, "real"), join(root, "link"));
    const err = refusal(() => readStateFile(join(root, "link"), 100, ours));
    expect(err.code).toBe("STATE_FILE_UNSAFE");
    expect(err.message).toContain("symbolic link");
  });

  test("a FIFO or a directory is refused without blocking", () => {
    mkdirSync(join(root, "dir"));
    expect(refusal(() => readStateFile(join(root, "dir"), 100, ours)).message).toContain("not a regular file");
    expect(Bun.spawnSync(["mkfifo", join(root, "fifo")]).exitCode).toBe(0);
    expect(refusal(() => readStateFile(join(root, "fifo"), 100, ours)).message).toContain("not a regular file");
  });

  test("a file others may write is refused when the rule says private; accepted otherwise", () => {
    writeFileSync(join(root, "f"), "hello");
    chmodSync(join(root, "f"), 0o666);
    expect(refusal(() => readStateFile(join(root, "f"), 100, ours)).message).toContain("mode 0666");
    expect(readStateFile(join(root, "f"), 100, { owner: "self-or-root", privateMode: false })).toBe("hello");
  });

  test.skipIf(!asRoot)("a file owned by another user is refused, unless root may read any", () => {
    writeFileSync(join(root, "f"), "hello", { mode: 0o600 });
    chownSync(join(root, "f"), 65534, 65534);
    expect(refusal(() => readStateFile(join(root, "f"), 100, ours)).message).toContain("uid 65534");
    expect(refusal(() => readStateFile(join(root, "f"), 100, { owner: "self-or-root", privateMode: false })).code).toBe(
      "STATE_FILE_UNSAFE",
    );
    expect(readStateFile(join(root, "f"), 100, { ...ours, rootReadsAny: true })).toBe("hello");
  });

  test("a file over the limit is refused", () => {
    writeFileSync(join(root, "f"), "x".repeat(101), { mode: 0o600 });
    expect(refusal(() => readStateFile(join(root, "f"), 100, ours)).message).toContain("over the 100-byte limit");
  });
});

describe("assertStateDirSafe", () => {
  test("a missing dir is fine (whoever creates it makes it 0700); a 0700 or 0755 dir of ours is fine", () => {
    assertStateDirSafe(join(root, "none"));
    chmodSync(root, 0o755);
    assertStateDirSafe(root);
  });

  test("a group- or world-writable dir is STATE_DIR_UNSAFE, naming mode, owner and the fix", () => {
    chmodSync(root, 0o1777);
    const err = refusal(() => assertStateDirSafe(root));
    expect(err.code).toBe("STATE_DIR_UNSAFE");
    expect(err.message).toContain("mode 1777");
    expect(err.message).toContain(`owner uid ${process.geteuid?.()}`);
    expect(err.message).toContain("writable by its group and all users");
    expect(err.message).toContain(`chmod go-w ${root}`);
  });

  test("judged for its owner (root checking the service user's dir): another owner is fine, a shared mode is not", () => {
    if (process.geteuid?.() !== 0) throw new Error("this test chowns a directory: run it as root, as CI does");
    chownSync(root, 65534, 65534);
    chmodSync(root, 0o700);
    expect(refusal(() => assertStateDirSafe(root)).message).toContain("owned by uid 65534");
    assertStateDirSafe(root, "owner");
    chmodSync(root, 0o770);
    expect(refusal(() => assertStateDirSafe(root, "owner")).message).toContain("writable by its group");
  });
});
