/**
 * Builds the daemon's tunnel supervisor: how one tunnel is dialled with this connector's identity and
 * settings, which session events feed status and logs, and which signs of revocation (a gateway's 403
 * on the upgrade, a 1008 close) make the daemon ask the control plane.
 */
import { describeError } from "../errors.ts";
import type { Clock } from "../clock.ts";
import type { HealthMonitor } from "../apps/health.ts";
import type { Settings } from "../config/settings.ts";
import type { Identity } from "../identity/identity.ts";
import type { Logger } from "../log.ts";
import { connectTunnel, type Tunnel } from "../supervisor/connection.ts";
import { CloseCode } from "../transport/close-code.ts";
import { ProxyBypass } from "../netaddr/proxy-bypass.ts";
import { RepeatLimiter } from "../repeat-limiter.ts";
import type { OpenHandler } from "../mux/session-types.ts";
import { Supervisor, type TunnelHandle } from "../supervisor/supervisor.ts";
import { TunnelDialError } from "../transport/websocket/errors.ts";
import { buildInfo } from "../version.ts";
import type { StatusModel } from "./status-model.ts";
import type { AccessTokens } from "./access-tokens.ts";

export interface TunnelSupervisorDeps {
  /** The current identity: read at every dial, so a renewed certificate is used from then on. */
  identity: () => Identity;
  settings: Settings;
  log: Logger;
  clock: Clock;
  status: StatusModel;
  /** Live tunnels by slot, kept up to date here (the daemon broadcasts health reports over them). */
  tunnels: Map<number, Tunnel>;
  health: () => HealthMonitor | undefined;
  onOpen: OpenHandler;
  /** Re-read the catalog (CONFIG_CHANGED, or a sign that we may be revoked). */
  refreshCatalog: () => void;
  /** True while the daemon is stopping: tunnel closes are expected then. */
  stopping: () => boolean;
  /** The access token for each upgrade; a 401 asks for an early refresh, open tunnels get its refreshes. */
  tokens: AccessTokens;
}

export function createTunnelSupervisor(deps: TunnelSupervisorDeps): Supervisor<Tunnel> {
  const { settings, log, status, tunnels } = deps;
  const noProxy = ProxyBypass.parse(settings.noProxy);
  // A gateway may drain every tunnel right after the upgrade: one line per gateway per window.
  const goAwayLines = new RepeatLimiter(deps.clock);
  // Tunnels we dialled, by the handle the supervisor reports: a tunnel becomes the slot's (in
  // `tunnels` and in status) only when the supervisor says so, not when the dial ends (a tunnel on
  // probation for a move to another gateway must not displace the slot's tunnel).
  const dialled = new WeakMap<TunnelHandle, Tunnel>();
  const credentials = () => {
    const identity = deps.identity();
    return {
      certificateChainPem: [identity.certificate, ...identity.chain].join("\n"),
      privateKeyPem: identity.privateKeyPem,
      caCertificatePem: identity.caCertificate,
    };
  };
  const supervisor: Supervisor<Tunnel> = new Supervisor<Tunnel>({
    gateways: deps.identity().gateways,
    tunnels: settings.tunnels,
    clock: deps.clock,
    connect: async (gateway, slot) => {
      const creds = credentials();
      const certificate = deps.identity().certificate;
      const accessToken = await deps.tokens.forDial(certificate);
      const options = {
        credentials: creds,
        accessToken,
        connectorVersion: buildInfo.version,
        proxy: settings.proxy,
        noProxy,
        clock: deps.clock,
        onOpen: deps.onOpen,
        log: log.withTag("tunnel"),
      };
      let tunnel: Tunnel | undefined;
      const isCurrent = () => tunnel !== undefined && tunnels.get(slot) === tunnel;
      tunnel = await connectTunnel(gateway, options, {
        rtt: (ms) => {
          if (isCurrent()) status.rtt(slot, ms);
        },
        configChanged: () => deps.refreshCatalog(),
        streamError: (streamId, error) =>
          log.debug("stream reset", { tunnel: slot, stream: streamId, code: error.code, error: error.message }),
        // The supervisor acts on GO_AWAY (through the tunnel's `peerDraining`), even one that came
        // with the 101; this only logs it.
        goAway: (code, message) => {
          const verdict = goAwayLines.check(`${gateway.url} ${code}`);
          if (verdict.log)
            log.info("gateway is draining this tunnel: opening a replacement", {
              gateway: gateway.url,
              code,
              message,
              ...(verdict.suppressed > 0 ? { suppressed: verdict.suppressed } : {}),
            });
        },
        closed: (info) => {
          if (isCurrent()) {
            status.detachSession(slot);
            tunnels.delete(slot);
          }
          // 1008: the gateway refused us by policy (revocation): ask the control plane.
          if (info.code === CloseCode.POLICY_VIOLATION) deps.refreshCatalog();
        },
      }).catch((err: unknown) => {
        // 403 on the upgrade: the gateway does not accept this connector (revoked?): ask the control plane.
        if (err instanceof TunnelDialError && err.status === 403) deps.refreshCatalog();
        // 401: the gateway did not accept the token (expired, bound to another certificate, or a hostile
        // gateway): ask for a fresh one; the token still serves dials to other gateways meanwhile.
        if (err instanceof TunnelDialError && err.status === 401) deps.tokens.rejected(accessToken);
        throw err;
      });
      const live = tunnel;
      dialled.set(live, live);
      // Every tunnel dialled with this certificate gets the token updates, one on probation too.
      deps.tokens.attach(live, certificate, accessToken);
      // Before the first check completes we send nothing: "no report" lets gateways route here.
      // Best effort: a report that cannot be sent (too large) must not cost the tunnel.
      const health = deps.health();
      try {
        if (health?.ready) live.session.sendHealthReport(health.report());
      } catch (err) {
        log.warn("health report not sent", { tunnel: slot, error: describeError(err) });
      }
      return live;
    },
    onEvent: (event) => {
      if (event.type === "retired") {
        // Only if the slot has no newer tunnel yet (a replacement dial may have finished first).
        if (tunnels.get(event.slot) === event.tunnel) {
          status.detachSession(event.slot, event.tunnel.closed); // it counts until its streams are done
          tunnels.delete(event.slot);
        }
        return;
      }
      if (event.type === "rebalance") {
        const fields = { tunnel: event.slot, gateway: event.gateway.url };
        if (event.phase === "scheduled")
          log.info("tunnels share a gateway while another is unused: moving one back", { ...fields, inMs: event.inMs });
        else if (event.phase === "moved") log.info("tunnel moved back to a distinct gateway", fields);
        else log.warn("could not move a tunnel to a distinct gateway", { ...fields, error: event.error });
        return;
      }
      if (event.type !== "slot") return;
      const live = event.tunnel && dialled.get(event.tunnel);
      if (live) {
        // A make-before-break move (renewal, redundancy): the old tunnel's counters so far go into
        // the totals before its status view is taken over, so they never go backwards.
        if (tunnels.has(event.slot)) status.detachSession(event.slot);
        tunnels.set(event.slot, live);
        status.attachSession(event.slot, () => live.session.stats());
      }
      status.slotChanged(event.slot, event.state, event.gateway.url, event.since);
      const fields = {
        tunnel: event.slot,
        gateway: event.gateway.url,
        ...(event.error ? { error: event.error } : {}),
        ...(event.retryInMs !== undefined ? { retryInMs: event.retryInMs } : {}),
      };
      const stopping = deps.stopping();
      if (event.state === "down" && !stopping) log.warn(`tunnel ${event.state}`, fields);
      else log.info(`tunnel ${event.state}`, fields);
      if (event.state !== "connecting" && !stopping) log.info("status", status.summary());
    },
  });
  return supervisor;
}
