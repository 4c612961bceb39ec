/**
 * Revocation: how the connector learns the cloud no longer accepts it, and what it does then.
 *
 * Signs and answers:
 *   - the control plane answers CONNECTOR_REVOKED (a catalog fetch, an access-token fetch): revoked;
 *   - a gateway refuses the connector (403 on the upgrade, a close with 1008 POLICY_VIOLATION): only a
 *     sign — a gateway may be wrong or hostile — so the control plane is asked (a catalog refresh) and
 *     its answer decides;
 *   - the control plane serves the connector again: reinstated.
 *
 * Before the tunnels first start (`starting`), answers only set the state: the first catalog fetch
 * logs and retries on its own slow schedule. Once running, a revocation closes every tunnel, status
 * says "revoked" (`connector status` exits 4), one error line says to re-enroll, and from then on the
 * control plane is asked again only every REVOKED_RETRY_MS (never on the tunnels' 1 s backoff); a
 * reinstatement says so and starts the tunnels again. Repeated answers change nothing.
 */
import type { Clock, TimerHandle } from "../clock.ts";
import { ApiRejectedError } from "../control/errors.ts";
import type { Logger } from "../log.ts";
import { CloseCode } from "../transport/close-code.ts";
import { TunnelDialError } from "../transport/websocket/errors.ts";

/** A revoked connector asks the control plane again only this often. */
export const REVOKED_RETRY_MS = 10 * 60_000;

/** The control plane's answer that this connector is revoked. */
export function isRevokedAnswer(err: unknown): boolean {
  return err instanceof ApiRejectedError && err.apiCode === "CONNECTOR_REVOKED";
}

/** A gateway's 403 on the tunnel upgrade: it does not accept this connector (revoked?). */
export function isGatewayRefusal(err: unknown): boolean {
  return err instanceof TunnelDialError && err.status === 403;
}

/** A tunnel closed by policy (1008): the gateway no longer accepts this connector (revoked?). */
export function isPolicyClose(code: number): boolean {
  return code === CloseCode.POLICY_VIOLATION;
}

/** What the catalog refresh and the token schedule tell, and read. */
export interface RevocationSink {
  readonly revoked: boolean;
  /** The control plane answered CONNECTOR_REVOKED. */
  confirmed(): void;
  /** The control plane served this connector (a catalog, a 304). */
  served(): void;
}

export interface RevocationDeps {
  readonly clock: Clock;
  readonly log: Logger;
  /** Where the state shows. */
  readonly status: { revoked(): void; reinstated(): void };
  /** Asks the control plane (a catalog refresh, which reports back here); never rejects. */
  readonly askControlPlane: () => Promise<void>;
  readonly tunnels: { readonly running: boolean; start(): void; stop(reason: string): void };
  /** True once the daemon is stopping: nothing restarts then. */
  readonly stopping: () => boolean;
}

export class Revocation implements RevocationSink {
  #phase: "starting" | "running" = "starting";
  #revoked = false;
  #recheck: TimerHandle | undefined;

  constructor(private readonly deps: RevocationDeps) {}

  get revoked(): boolean {
    return this.#revoked;
  }

  /**
   * Start-up is done: the tunnels start, unless the control plane said revoked and has not served us
   * since (the first catalog came from the state dir during an outage): then they wait for it.
   */
  startTunnels(): void {
    this.#phase = "running";
    if (this.#revoked) this.#stopTunnels();
    else this.deps.tunnels.start();
  }

  confirmed(): void {
    if (this.#revoked) return;
    this.#revoked = true;
    this.deps.status.revoked();
    if (this.#phase === "running") this.#stopTunnels();
  }

  #stopTunnels(): void {
    this.deps.log.error(
      "this connector has been revoked by the cloud: tunnels stopped; re-enroll it with a new key (connector enroll --force)",
      { checkAgainInMs: REVOKED_RETRY_MS },
    );
    this.deps.tunnels.stop("connector revoked");
    this.#scheduleRecheck();
  }

  served(): void {
    if (!this.#revoked) return;
    this.#revoked = false;
    this.deps.status.reinstated();
    if (this.#phase === "starting") return;
    this.deps.log.info("the control plane accepts this connector again: starting tunnels");
    this.#recheck?.cancel();
    this.#recheck = undefined;
    if (!this.deps.tunnels.running && !this.deps.stopping()) this.deps.tunnels.start();
  }

  /** A gateway refused us (`isGatewayRefusal`, `isPolicyClose`): the control plane decides. */
  gatewayRefused(): void {
    void this.deps.askControlPlane();
  }

  stop(): void {
    this.#recheck?.cancel();
    this.#recheck = undefined;
  }

  /** While revoked, the control plane is asked again every REVOKED_RETRY_MS (and only then). */
  #scheduleRecheck(): void {
    if (!this.#revoked || this.deps.stopping()) return;
    this.#recheck?.cancel(); // one schedule, however many answers came
    this.#recheck = this.deps.clock.setTimeout(() => {
      this.#recheck = undefined;
      void this.deps.askControlPlane().then(() => this.#scheduleRecheck());
    }, REVOKED_RETRY_MS);
  }
}
