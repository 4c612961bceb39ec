/**
 * Starts `connector run` (the compiled binary) as a daemon for end-to-end tests: enrolled from the
 * cloud's key, JSON logs captured, status polled over its admin socket until a wanted state.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import type { StatusSnapshot } from "../../src/status/schema.ts";
import { connectorBinary, isolatedEnv, runConnector } from "./binary.ts";
import { watch } from "./diagnostics.ts";

export interface DaemonProcess {
  readonly stateDir: string;
  readonly proc: Subprocess;
  status(): Promise<{ exitCode: number; snapshot: StatusSnapshot | undefined }>;
  /** Polls status until `ok(snapshot)` or the deadline (default 60 s, a safety net for a loaded machine). */
  waitFor(what: string, ok: (s: StatusSnapshot) => boolean, timeoutMs?: number): Promise<StatusSnapshot>;
  output(): string;
  /** SIGTERM and wait for exit (SIGKILL after `timeoutMs`). Returns the exit code. */
  stop(timeoutMs?: number): Promise<number>;
  kill9(): Promise<void>;
}

export interface DaemonOptions {
  readonly key: string;
  readonly tunnels?: number;
  readonly gracePeriodSeconds?: number;
  readonly env?: Record<string, string>;
  readonly extraArgs?: readonly string[];
  /** The executable to run (default: dist/connector). */
  readonly binary?: string;
  /** Run on this state dir (e.g. a previous daemon's) and leave it in place on stop; default: a new temp dir. */
  readonly stateDir?: string;
}

async function collect(stream: ReadableStream<Uint8Array>, into: string[]): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) into.push(decoder.decode(chunk, { stream: true }));
}

export async function startDaemon(options: DaemonOptions): Promise<DaemonProcess> {
  const root = options.stateDir === undefined ? mkdtempSync(join(tmpdir(), "e2e-daemon-")) : undefined;
  const stateDir = options.stateDir ?? join(root!, "state");
  const args = ["run", "--state-dir", stateDir, "--log-format", "json", "--log-level", "debug"];
  if (options.tunnels !== undefined) args.push("--tunnels", String(options.tunnels));
  if (options.gracePeriodSeconds !== undefined) args.push("--grace-period", String(options.gracePeriodSeconds));
  args.push(...(options.extraArgs ?? []));
  const proc = Bun.spawn([options.binary ?? connectorBinary(), ...args], {
    env: isolatedEnv({ CONNECTOR_PROVISIONING_KEY: options.key, ...options.env }),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const chunks: string[] = [];
  void collect(proc.stdout, chunks);
  void collect(proc.stderr, chunks);
  const output = () => chunks.join("");
  // A failing test prints this log's tail and keeps the temp dir (identity, catalog, token) for whoever
  // reads the failure; a wait that failed keeps it even outside a test.
  const watched = watch({
    label: `connector pid ${proc.pid} (state dir ${stateDir})`,
    output,
    dirs: root === undefined ? [] : [root],
  });
  const fail = (message: string): never => {
    watched.keep();
    throw new Error(`${message}\n(state dir kept: ${stateDir})`);
  };

  const status = async () => {
    // 30 s: a status call starts a 100 MiB binary, slow on a loaded machine; it is a deadline, not a wait.
    const result = await runConnector(["status", "--state-dir", stateDir, "--json"], { timeoutMs: 30_000 });
    let snapshot: StatusSnapshot | undefined;
    try {
      snapshot = JSON.parse(result.stdout) as StatusSnapshot;
    } catch {
      snapshot = undefined;
    }
    return { exitCode: result.exitCode, snapshot };
  };

  const daemon: DaemonProcess = {
    stateDir,
    proc,
    status,
    output,
    async waitFor(what, ok, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last: StatusSnapshot | undefined;
      while (Date.now() < deadline) {
        if (proc.exitCode !== null) fail(`connector exited (${proc.exitCode}) while waiting for ${what}:\n${output()}`);
        last = (await status()).snapshot;
        if (last && ok(last)) return last;
        await Bun.sleep(50);
      }
      return fail(
        `connector not ${what} within ${timeoutMs} ms; last status ${JSON.stringify(last)}\n${output().slice(-4000)}`,
      );
    },
    async stop(timeoutMs = 40_000) {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
      const code = await proc.exited;
      clearTimeout(timer);
      watched.release();
      return code;
    },
    async kill9() {
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
  return daemon;
}

/** True when every tunnel is up (and there is at least `n`). */
export const allTunnelsUp = (n: number) => (s: StatusSnapshot) =>
  s.state === "connected" && s.tunnels.filter((t) => t.state === "up").length >= n;
