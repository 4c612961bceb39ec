/**
 * Builds the daemon's tunnel supervisor: how one tunnel is dialled with this connector's identity,
 * access token and settings, what its session events feed (RTT in status, CONFIG_CHANGED, the logs),
 * and which gateway answers are signs of revocation (revocation.ts decides what they mean).
 */
import { describeError } from "../errors.ts";
import type { Clock } from "../clock.ts";
import type { Settings } from "../config/settings.ts";
import type { Identity } from "../identity/identity.ts";
import type { Logger } from "../log.ts";
import type { Tunnel, TunnelConnector } from "../supervisor/connection.ts";
import { ProxyBypass } from "../netaddr/proxy-bypass.ts";
import { RepeatLimiter } from "../repeat-limiter.ts";
import type { HealthReport } from "../mux/payloads.ts";
import type { OpenHandler } from "../mux/session-types.ts";
import { Supervisor } from "../supervisor/supervisor.ts";
import { TunnelDialError } from "../transport/websocket/errors.ts";
import { buildInfo } from "../version.ts";
import type { StatusModel } from "./status-model.ts";
import type { AccessTokens } from "./access-tokens.ts";
import type { TunnelListener } from "./live-tunnels.ts";
import { isGatewayRefusal, isPolicyClose } from "./revocation.ts";

export interface TunnelSupervisorDeps {
  /** The current identity: read at every dial, so a renewed certificate is used from then on. */
  identity: () => Identity;
  settings: Settings;
  log: Logger;
  clock: Clock;
  random: () => number;
  /** Dials one tunnel (`connectTunnel` in production). */
  connect: TunnelConnector;
  status: StatusModel;
  /** The health report to send on a new tunnel, once the first check is done. */
  health: () => HealthReport | undefined;
  onOpen: OpenHandler;
  /** CONFIG_CHANGED: re-read the catalog. */
  refreshCatalog: () => void;
  /** A gateway refused this connector (403 on the upgrade, a 1008 close): a sign of revocation. */
  gatewayRefused: () => void;
  /** The access token for each upgrade; a 401 asks for an early refresh, open tunnels get its refreshes. */
  tokens: AccessTokens;
}

export function createTunnelSupervisor(deps: TunnelSupervisorDeps, onEvent: TunnelListener): Supervisor<Tunnel> {
  const { settings, log, status } = deps;
  const noProxy = ProxyBypass.parse(settings.noProxy);
  // A gateway may drain every tunnel right after the upgrade: one line per gateway per window.
  const goAwayLines = new RepeatLimiter(deps.clock);
  const credentials = (identity: Identity) => ({
    certificateChainPem: [identity.certificate, ...identity.chain].join("\n"),
    privateKeyPem: identity.privateKeyPem,
    caCertificatePem: identity.caCertificate,
  });
  const supervisor: Supervisor<Tunnel> = new Supervisor<Tunnel>({
    gateways: deps.identity().gateways,
    tunnels: settings.tunnels,
    clock: deps.clock,
    random: deps.random,
    onEvent,
    connect: async (gateway, slot) => {
      const identity = deps.identity();
      const accessToken = await deps.tokens.forDial(identity.certificate);
      const options = {
        credentials: credentials(identity),
        accessToken,
        connectorVersion: buildInfo.version,
        proxy: settings.proxy,
        noProxy,
        clock: deps.clock,
        onOpen: deps.onOpen,
        log: log.withTag("tunnel"),
      };
      let tunnel: Tunnel | undefined;
      tunnel = await deps
        .connect(gateway, options, {
          rtt: (ms) => {
            // Only the slot's own tunnel: one on probation (a move to another gateway) is not shown.
            if (tunnel !== undefined && supervisor.tunnel(slot) === tunnel) status.rtt(slot, ms);
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
            if (isPolicyClose(info.code)) deps.gatewayRefused();
          },
        })
        .catch((err: unknown) => {
          if (isGatewayRefusal(err)) deps.gatewayRefused();
          // 401: the gateway did not accept the token (expired, bound to another certificate, or a hostile
          // gateway): ask for a fresh one; the token still serves dials to other gateways meanwhile.
          if (err instanceof TunnelDialError && err.status === 401) deps.tokens.rejected(accessToken);
          throw err;
        });
      // Every tunnel dialled with this certificate gets the token updates, one on probation too.
      deps.tokens.attach(tunnel, identity.certificate, accessToken);
      // Before the first check completes we send nothing: "no report" lets gateways route here.
      // Best effort: a report that cannot be sent (too large) must not cost the tunnel.
      const report = deps.health();
      try {
        if (report) tunnel.session.sendHealthReport(report);
      } catch (err) {
        log.warn("health report not sent", { tunnel: slot, error: describeError(err) });
      }
      return tunnel;
    },
  });
  return supervisor;
}
