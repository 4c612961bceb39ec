/**
 * A host without systemd running: `systemd-nspawn` WITHOUT `-b` runs one shell script in a throw-away
 * copy of this machine (the host's root bind-mounted, `--volatile=overlay`: nothing is written to the
 * host) with no init but nspawn's stub, so /run/systemd/system does not exist inside. The host's
 * network is shared, so a reference cloud started on the host (test/support/cloud-process.ts) is
 * reachable at its 127.0.0.1 URLs. The script goes in on stdin (`--pipe`): nothing of it is in an argv.
 *
 * Mount names follow test/support/nspawn.ts (/run/ct-<pid>-<hex>), so its sweep unmounts what a
 * killed test run left behind.
 */
import { mkdirSync, rmdirSync } from "node:fs";
import type { ExecResult } from "./nspawn.ts";
import { requireNspawn, runWithDeadline } from "./nspawn.ts";

export interface PlainRunOptions {
  /** Host directories bind-mounted at the same path inside. */
  readonly binds?: readonly string[];
  /** Kill the container after this long; default 240 s. */
  readonly timeoutMs?: number;
}

const command = (cmd: readonly string[], input?: string, timeoutMs?: number) => runWithDeadline(cmd, timeoutMs, input);

/** Runs `script` (bash, as root) in a plain, unbooted container; resolves with its exit code and output. */
export async function runPlainContainer(script: string, options: PlainRunOptions = {}): Promise<ExecResult> {
  requireNspawn();
  const name = `ct-${process.pid}-${Math.floor(Math.random() * 0xffffff).toString(16)}`;
  const root = `/run/${name}`;
  const timeoutMs = options.timeoutMs ?? 240_000;
  mkdirSync(root, { mode: 0o700 });
  let mounted = false;
  try {
    const bound = await command(["mount", "--bind", "/", root]);
    if (bound.code !== 0) throw new Error(`mount --bind / ${root} failed: ${bound.stderr}`);
    mounted = true;
    const binds = (options.binds ?? []).map((dir) => `--bind=${dir}`);
    const run = await command(
      // --as-pid2: a stub init reaps what the script leaves in the background; --pipe: stdin is the script.
      [
        "setpriv",
        "--pdeathsig",
        "SIGKILL",
        "systemd-nspawn",
        "-D",
        root,
        "--volatile=overlay",
        "--register=no",
        "--keep-unit",
        "--as-pid2",
        "--pipe",
        "-q",
        ...binds,
        "-M",
        name,
        "/bin/bash",
        "-s",
      ],
      script,
      timeoutMs,
    );
    if (run.timedOut)
      throw new Error(
        `the plain container did not finish within ${timeoutMs} ms\nstdout: ${run.stdout.slice(-4000)}\nstderr: ${run.stderr.slice(-2000)}`,
      );
    return { code: run.code, stdout: run.stdout, stderr: run.stderr };
  } finally {
    if (mounted) {
      const unmounted = await command(["umount", root]);
      if (unmounted.code !== 0) await command(["umount", "-l", root]);
    }
    rmdirSync(root);
    try {
      rmdirSync(`/run/systemd/nspawn/propagate/${name}`);
    } catch {
      // absent, or not empty: nothing of ours to remove
    }
  }
}
