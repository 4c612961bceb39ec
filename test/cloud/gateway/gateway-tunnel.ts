/**
 * One accepted gateway tunnel: a gateway-role `Session`, what routing needs to know about it, and its
 * access token (tunnel-token.ts): a valid TOKEN_UPDATE moves the expiry; an invalid one closes the
 * tunnel; an expiry without update sends GO_AWAY AUTH_EXPIRED and closes it AUTH_EXPIRED_CLOSE_MS later.
 */
import type { X509Certificate } from "node:crypto";
import type { Logger } from "../../../src/log.ts";
import { GoAwayCode } from "../../../src/mux/const.ts";
import { Session } from "../../../src/mux/session.ts";
import type { OpenRequest, Stream } from "../../../src/mux/stream.ts";
import type { Transport } from "../../../src/transport/transport.ts";
import { AUTH_EXPIRED_CLOSE_MS } from "./config.ts";
import type { ConnectorInfo, TunnelInfo } from "./messages.ts";
import type { RouteTarget, Router } from "./router.ts";
import { TunnelToken, type TokenVerifier } from "./tunnel-token.ts";

/** WebSocket close code for a tunnel whose access token expired or was replaced by an invalid one (1008). */
const CLOSE_UNAUTHORISED = 1008;

/** What the upgrade established: the connector, its certificate and its token's expiry. */
export interface TunnelAuthContext {
  readonly info: ConnectorInfo;
  readonly certificate: X509Certificate;
  readonly tokenExpiresAtMs: number;
}

export interface GatewayTunnelHooks {
  changed(tunnel: GatewayTunnel): void;
  closed(tunnel: GatewayTunnel, reason: string): void;
  /** The token ran out (GO_AWAY AUTH_EXPIRED sent), or a TOKEN_UPDATE was accepted or refused. */
  token(tunnel: GatewayTunnel, event: "expired" | "updated" | "refused", detail?: string): void;
  router: Router<Stream>;
  verifier: TokenVerifier;
  log: Logger;
}

/** One accepted tunnel: a gateway-role session plus what routing needs to know about it. */
export class GatewayTunnel implements RouteTarget<Stream> {
  readonly session: Session;
  readonly connectorId: string;
  readonly group: string;
  readonly token: TunnelToken;
  readonly #router: Router<Stream>;

  constructor(auth: TunnelAuthContext, transport: Transport, hooks: GatewayTunnelHooks) {
    this.connectorId = auth.info.id;
    this.group = auth.info.group;
    this.#router = hooks.router;
    this.token = new TunnelToken({
      verifier: hooks.verifier,
      certificate: auth.certificate,
      connectorId: auth.info.id,
      expiresAtMs: auth.tokenExpiresAtMs,
      onExpired: () => {
        this.session.goAway(GoAwayCode.AUTH_EXPIRED, "access token expired");
        hooks.token(this, "expired");
        hooks.changed(this);
        setTimeout(() => this.session.close(CLOSE_UNAUTHORISED, "AUTH_EXPIRED"), AUTH_EXPIRED_CLOSE_MS);
      },
      onInvalid: (reason) => {
        hooks.token(this, "refused", reason);
        this.session.close(CLOSE_UNAUTHORISED, "TOKEN_INVALID");
      },
    });
    this.session = new Session({
      role: "gateway",
      transport,
      log: hooks.log,
      events: {
        healthReport: (report) => hooks.router.setHealth(this, report),
        goAway: () => hooks.changed(this),
        tokenUpdate: (token) => {
          const before = this.token.updates;
          this.token.update(token.reveal());
          if (this.token.updates > before) hooks.token(this, "updated");
        },
        closed: (info) => {
          this.token.stop();
          hooks.closed(this, info.error?.message ?? info.reason);
        },
      },
    });
  }

  get usable(): boolean {
    const s = this.session;
    return !s.isClosed && !s.draining && !s.peerDraining;
  }

  open(request: OpenRequest): Promise<Stream> {
    return this.session.open(request);
  }

  info(): TunnelInfo {
    const stats = this.session.stats();
    return {
      connectorId: this.connectorId,
      group: this.group,
      draining: this.session.draining || this.session.peerDraining,
      streams: this.session.activeStreams,
      rttMs: stats.rttMs ?? null,
      unhealthyApps: this.#router.unhealthyApps(this),
      bytesIn: stats.bytesIn,
      bytesOut: stats.bytesOut,
      tokenExpiresAt: this.token.expiresAt.toISOString(),
      tokenUpdates: this.token.updates,
    };
  }
}
