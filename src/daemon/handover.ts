/**
 * The old side of a hand-over (an upgrade's new binary takes over from the running process without a
 * failed user connection): the running daemon starts its successor, `<binary> <its own arguments>`,
 * with fd 3 a socket pair end on which the successor writes `ready\n` once its tunnels are up, and
 * `CONNECTOR_HANDOVER=<tunnels up here>` so it knows how many to wait for. Until then the old process
 * serves as usual. Not ready within the health timeout, or gone before that: the successor is stopped
 * (SIGTERM, then SIGKILL) and the caller hears why, so it can roll the binary back.
 *
 * The successor gets the environment the settings were read from (secrets included: the proxy URL
 * may carry a password, and it must never be passed in argv), minus the provisioning key, which an
 * enrolled connector no longer needs; it scrubs its own copy at start as every `run` does.
 */
import * as net from "node:net";
import type { Clock } from "../clock.ts";
import { describeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { KEY_ENV_VAR } from "../identity/key-source.ts";
import { HANDOVER_ENV_VAR, READY_LINE } from "./handover-child.ts";

/** SIGTERM to a successor that failed, then SIGKILL after this long. */
export const SUCCESSOR_KILL_AFTER_MS = 10_000;
/** What a successor may write on its readiness pipe before it is taken as not speaking the protocol. */
const MAX_READINESS_BYTES = 64;
/** After the readiness pipe closed, how long to wait for the exit code (for the reason given). */
const EXIT_AFTER_CLOSE_MS = 1_000;

export type ReadinessResult = { ready: true } | { ready: false; reason: string };

/**
 * HEALTH_GATE_FAILED: the new version was started and did not take over (the caller rolls back);
 * HANDOVER_REFUSED: it was not tried, or this process is stopping anyway (nothing to roll back).
 */
export type HandoverOutcome =
  | { ok: true; pid: number }
  | { ok: false; code: "HEALTH_GATE_FAILED" | "HANDOVER_REFUSED"; reason: string };

export interface SuccessorOptions {
  /** argv of the successor: the binary and its arguments. */
  command: readonly string[];
  env: Record<string, string | undefined>;
  /** How long the successor gets to say `ready`. */
  timeoutMs: number;
  clock: Clock;
  killAfterMs?: number;
}

export interface Successor {
  readonly pid: number;
  /** Settles once: ready, or why not (exited, closed its pipe, deadline, cancelled). */
  readonly readiness: Promise<ReadinessResult>;
  /** The exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** Settles `readiness` as not ready (we are stopping) unless it has settled. */
  cancel(reason: string): void;
  /** SIGTERM, SIGKILL after `killAfterMs`; resolves once it has exited. */
  stop(): Promise<void>;
}

/** The successor's command line: the new binary with this process's own arguments (`run` and its flags). */
export function successorCommand(binary: string, argv: readonly string[] = process.argv): string[] {
  // argv[0] is the runtime, argv[1] the entry script (or the compiled binary's virtual path).
  return [binary, ...argv.slice(2)];
}

/** The successor's environment: ours as read at start, without the provisioning key, plus the tunnel count. */
export function successorEnv(env: Record<string, string | undefined>, tunnelsUp: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && name !== KEY_ENV_VAR && name !== HANDOVER_ENV_VAR) out[name] = value;
  }
  out[HANDOVER_ENV_VAR] = String(tunnelsUp);
  return out;
}

/** Starts the successor and watches its readiness pipe. Throws when it cannot be spawned at all. */
export function spawnSuccessor(options: SuccessorOptions): Successor {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(options.env)) if (value !== undefined) env[name] = value;
  // "socket-fd": our end is ours to close (net.Socket does); a plain "pipe" end cannot be read as a stream.
  const proc = Bun.spawn([...options.command], { env, stdio: ["ignore", "inherit", "inherit", "socket-fd"] });
  const exited = proc.exited.then(() => proc.exitCode);
  let settle!: (result: ReadinessResult) => void;
  let settled = false;
  const readiness = new Promise<ReadinessResult>((resolve) => {
    settle = (result) => {
      if (settled) return;
      settled = true;
      timer.cancel();
      pipe.destroy();
      resolve(result);
    };
  });
  const timer = options.clock.setTimeout(
    () => settle({ ready: false, reason: `not ready within ${Math.round(options.timeoutMs / 1000)} s` }),
    options.timeoutMs,
  );
  const describeExit = (code: number | null) =>
    code === null
      ? `the new process was killed by ${proc.signalCode ?? "a signal"}`
      : `the new process exited with code ${code}`;
  const pipe = net.connect({ fd: proc.stdio[3] as number } as net.NetConnectOpts);
  let heard = "";
  pipe.on("data", (chunk: Buffer) => {
    heard += chunk.toString("latin1");
    if (heard.includes(READY_LINE)) settle({ ready: true });
    else if (heard.length > MAX_READINESS_BYTES)
      settle({ ready: false, reason: "the new process wrote something other than ready on its readiness pipe" });
  });
  pipe.on("error", () => {}); // an error ends the stream: handled as a close below
  pipe.on("close", () => {
    if (settled) return;
    // The pipe closes when the process exits: report the exit when it follows shortly.
    const wait = options.clock.setTimeout(
      () => settle({ ready: false, reason: "the new process closed its readiness pipe without saying ready" }),
      EXIT_AFTER_CLOSE_MS,
    );
    void exited.then((code) => {
      wait.cancel();
      settle({ ready: false, reason: `${describeExit(code)} before it was ready` });
    });
  });
  void exited.then((code) => settle({ ready: false, reason: `${describeExit(code)} before it was ready` }));
  let stopping: Promise<void> | undefined;
  return {
    pid: proc.pid,
    readiness,
    exited,
    cancel: (reason) => settle({ ready: false, reason }),
    stop() {
      // One SIGTERM only, however often asked: a second would make it stop without draining.
      stopping ??= (async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        proc.kill("SIGTERM");
        const kill = options.clock.setTimeout(
          () => proc.kill("SIGKILL"),
          options.killAfterMs ?? SUCCESSOR_KILL_AFTER_MS,
        );
        await exited;
        kill.cancel();
      })();
      return stopping;
    },
  };
}

/** What the hand-over needs from the daemon it runs in. */
export interface HandoverHost {
  readonly env: Record<string, string | undefined>;
  readonly healthTimeoutSeconds: number;
  readonly log: Logger;
  readonly clock: Clock;
  /** Why no hand-over can start now (stopping, not serving yet), or undefined. */
  refusal(): string | undefined;
  tunnelsUp(): number;
  stopping(): boolean;
  /** The successor to stop with this process while it is not ready (undefined once settled). */
  track(successor: Successor | undefined): void;
  /** The successor serves now: GO_AWAY, let go of the lock, drain, exit 0. */
  handedOver(): void;
  /** After a failure: take the admin socket back if the successor had taken it over. */
  reclaimAdminSocket(): Promise<void>;
}

/**
 * Hands over to `<binary> <this process's arguments>`: serves until the successor is ready, then has the
 * host drain. A successor not ready within the health timeout, or gone, is stopped; the host serves on.
 */
export async function handOverTo(binary: string, host: HandoverHost): Promise<HandoverOutcome> {
  const { log } = host;
  const refuse = (reason: string): HandoverOutcome => ({ ok: false, code: "HEALTH_GATE_FAILED", reason });
  const refusal = host.refusal();
  if (refusal) return { ok: false, code: "HANDOVER_REFUSED", reason: refusal };
  const tunnelsUp = host.tunnelsUp();
  let successor: Successor;
  try {
    successor = spawnSuccessor({
      command: successorCommand(binary),
      env: successorEnv(host.env, tunnelsUp),
      timeoutMs: host.healthTimeoutSeconds * 1000,
      clock: host.clock,
    });
  } catch (err) {
    return refuse(`the new binary could not be started: ${describeError(err)}`);
  }
  host.track(successor);
  log.info("hand-over: new process started, waiting for its tunnels", {
    pid: successor.pid,
    tunnelsUp,
    timeoutSeconds: host.healthTimeoutSeconds,
  });
  const readiness = await successor.readiness;
  if (readiness.ready && !host.stopping()) {
    host.track(undefined); // it is the service now: never stopped by us
    log.info("hand-over: the new process is serving; this one drains and exits", { pid: successor.pid });
    host.handedOver();
    return { ok: true, pid: successor.pid };
  }
  const reason = readiness.ready ? "this process is stopping" : readiness.reason;
  log.warn("hand-over: stopping the new process", { pid: successor.pid, reason });
  await successor.stop();
  host.track(undefined);
  await host.reclaimAdminSocket();
  return readiness.ready ? { ok: false, code: "HANDOVER_REFUSED", reason } : refuse(reason);
}
