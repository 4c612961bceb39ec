/**
 * `GatewayProcess` is the cloud process's handle on one gateway process: spawn it (Bun.spawn with an
 * IPC channel, JSON messages), hand it `init`, wait for `ready` with a deadline, send it messages,
 * ask it to describe itself, stop it gracefully (SIGKILL if it does not exit in time), and notice
 * when it dies for any reason (kill -9 included).
 */
import { join } from "node:path";
import type { Subprocess } from "bun";
import * as v from "valibot";
import type { Logger } from "../../../src/log.ts";
import { GATEWAY_READY_TIMEOUT_MS, STOP_KILL_AFTER_MS } from "./config.ts";
import {
  ChildMessageSchema,
  type ChildMessage,
  type GatewayDescription,
  type InitMessage,
  type ParentMessage,
} from "./messages.ts";

const GATEWAY_SCRIPT = join(import.meta.dir, "process.ts");

export interface GatewayProcessOptions {
  readonly id: string;
  /** Messages other than `ready`, `failed` and `description` (those are handled here). */
  readonly onMessage: (message: ChildMessage) => void;
  /** The process exited (after `ready`, or while starting). */
  readonly onExit: (code: number | null) => void;
  readonly log: Logger;
}

type Phase = "starting" | "ready" | "exited";

export class GatewayProcess {
  readonly exited: Promise<number | null>;
  readonly #proc: Subprocess<"ignore", "inherit", "inherit">;
  readonly #options: GatewayProcessOptions;
  readonly #descriptions = new Map<number, (d: GatewayDescription | undefined) => void>();
  readonly #acks = new Map<number, (acked: boolean) => void>();
  #phase: Phase = "starting";
  #nextRequest = 0;
  #onStart: ((message: ChildMessage | { type: "exit"; code: number | null }) => void) | undefined;

  constructor(options: GatewayProcessOptions) {
    this.#options = options;
    this.#proc = Bun.spawn([process.execPath, GATEWAY_SCRIPT], {
      stdio: ["ignore", "inherit", "inherit"],
      serialization: "json",
      ipc: (raw) => this.#receive(raw),
    });
    this.exited = this.#proc.exited.then((code) => {
      this.#phase = "exited";
      for (const resolve of this.#descriptions.values()) resolve(undefined);
      this.#descriptions.clear();
      for (const resolve of this.#acks.values()) resolve(false);
      this.#acks.clear();
      this.#onStart?.({ type: "exit", code });
      options.onExit(code);
      return code;
    });
  }

  get pid(): number {
    return this.#proc.pid;
  }

  /** Up and answered `init`. */
  get ready(): boolean {
    return this.#phase === "ready";
  }

  get running(): boolean {
    return this.#phase !== "exited";
  }

  /** Sends `init` and resolves with the tunnel port once the gateway is ready; kills it on failure. */
  start(init: InitMessage): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => finish({ type: "failed", message: `not ready within ${GATEWAY_READY_TIMEOUT_MS} ms` }),
        GATEWAY_READY_TIMEOUT_MS,
      );
      const finish = (message: ChildMessage | { type: "exit"; code: number | null }) => {
        clearTimeout(timer);
        this.#onStart = undefined;
        if (message.type === "ready") {
          this.#phase = "ready";
          resolve(message.tunnelPort);
          return;
        }
        if (this.running) this.#proc.kill("SIGKILL");
        const why =
          message.type === "exit"
            ? `exited with code ${message.code}`
            : message.type === "failed"
              ? message.message
              : "answered out of turn";
        reject(new Error(`gateway ${this.#options.id} did not start: ${why}`));
      };
      this.#onStart = finish;
      this.send(init);
    });
  }

  /** Sends a message; a process that is gone cannot receive it and that is not an error. */
  send(message: ParentMessage): void {
    if (!this.running) return;
    try {
      this.#proc.send(message);
    } catch (err) {
      this.#options.log.debug(
        `gateway ${this.#options.id}: message not sent: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  /** The gateway's own account of its tunnels and counters; undefined if it does not answer in time. */
  describe(timeoutMs: number): Promise<GatewayDescription | undefined> {
    if (!this.ready) return Promise.resolve(undefined);
    const reqId = this.#nextRequest++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(undefined), timeoutMs);
      const settle = (d: GatewayDescription | undefined) => {
        clearTimeout(timer);
        this.#descriptions.delete(reqId);
        resolve(d);
      };
      this.#descriptions.set(reqId, settle);
      this.send({ type: "describe", reqId });
    });
  }

  /** Hands the gateway its refused connector versions; true once it acknowledged them within `timeoutMs`. */
  refuseVersions(versions: readonly string[], timeoutMs: number): Promise<boolean> {
    if (!this.ready) return Promise.resolve(false);
    const reqId = this.#nextRequest++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(false), timeoutMs);
      const settle = (acked: boolean) => {
        clearTimeout(timer);
        this.#acks.delete(reqId);
        resolve(acked);
      };
      this.#acks.set(reqId, settle);
      this.send({ type: "refuseVersions", reqId, versions: [...versions] });
    });
  }

  /** Resolves true if the process exits within `ms`. */
  async waitExit(ms: number): Promise<boolean> {
    if (!this.running) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const exited = await Promise.race([this.exited.then(() => true as const), timeout]);
    clearTimeout(timer);
    return exited;
  }

  /** Graceful stop: GO_AWAY, `graceMs` for open streams, exit; SIGKILL if it is still there after that. */
  async stop(graceMs: number): Promise<void> {
    if (!this.running) return;
    this.send({ type: "stop", graceMs });
    if (!(await this.waitExit(graceMs + STOP_KILL_AFTER_MS))) {
      this.#options.log.warn(`gateway ${this.#options.id} did not stop in time: killed`);
      this.#proc.kill("SIGKILL");
      await this.exited;
    }
  }

  /** Immediate end (SIGKILL), for a cloud that must not wait. */
  kill(): void {
    if (this.running) this.#proc.kill("SIGKILL");
  }

  #receive(raw: unknown): void {
    const parsed = v.safeParse(ChildMessageSchema, raw);
    if (!parsed.success) {
      this.#options.log.warn(`gateway ${this.#options.id} sent a malformed message: ${v.summarize(parsed.issues)}`);
      return;
    }
    const message = parsed.output;
    if (message.type === "ready" || message.type === "failed") {
      this.#onStart?.(message);
    } else if (message.type === "description") {
      this.#descriptions.get(message.reqId)?.(message.description);
    } else if (message.type === "ack") {
      this.#acks.get(message.reqId)?.(true);
    } else {
      this.#options.onMessage(message);
    }
  }
}
