/**
 * The tunnel side of one gateway process (docs/PROTOCOL.md §4–§5): a mutual-TLS WebSocket endpoint
 * (test/support/ws-server.ts) that accepts only client certificates from the cloud CA naming a known,
 * unrevoked connector (403 otherwise), negotiates `connector.v1` (426 otherwise), and runs a gateway
 * `Session` per tunnel (gateway-tunnel.ts). The upgrade must also carry a valid access token bound to
 * the client certificate (401 otherwise); TOKEN_UPDATE replaces it, and a tunnel whose token expires
 * gets GO_AWAY AUTH_EXPIRED and is closed shortly after (tunnel-token.ts). Each tunnel is a
 * `RouteTarget` for the router; its health reports, GO_AWAY and end are passed on. Revocation closes the connector's tunnels at once; a catalog change is announced
 * (CONFIG_CHANGED) on the tunnels of the group whose catalog changed.
 */
import type { X509Certificate } from "node:crypto";
import type { TCPSocketListener } from "bun";
import type { Logger } from "../../../src/log.ts";
import { GoAwayCode, SUBPROTOCOL } from "../../../src/mux/const.ts";
import type { Stream } from "../../../src/mux/stream.ts";
import type { Transport } from "../../../src/transport/transport.ts";
import { negotiateProtocol, type UpgradeRequest } from "../../../src/transport/websocket/handshake.ts";
import type { SocketSlot } from "../../../src/transport/websocket/socket-slot.ts";
import { listenTunnels, type AuthorizeDecision, type PeerInfo } from "../../support/ws-server.ts";
import { bearerToken } from "../access-token.ts";
import { GatewayTunnel, type TunnelAuthContext } from "./gateway-tunnel.ts";
import type { ConnectorInfo } from "./messages.ts";
import type { Router } from "./router.ts";
import { TokenVerifier } from "./tunnel-token.ts";

/** WebSocket close code for a revoked connector's tunnels (RFC 6455 1008: policy violation). */
const CLOSE_REVOKED = 1008;
/** WebSocket close code when the gateway stops (1001: going away). */
const CLOSE_STOPPING = 1001;

/**
 * The same transport, reporting when it has closed (close handshake done or timed out), so a stopping
 * gateway can wait for its close frames to leave before the process exits. Only `setHandlers` is
 * wrapped: sends go straight through.
 */
function observeClose(transport: Transport, onClose: () => void): Transport {
  return {
    send: (parts) => transport.send(parts),
    close: (code, reason) => transport.close(code, reason),
    get bufferedBytes() {
      return transport.bufferedBytes;
    },
    setHandlers: (handlers) =>
      transport.setHandlers({
        ...handlers,
        close: (info) => {
          onClose();
          handlers.close(info);
        },
      }),
  };
}

/** The connector id: the CN of the (already verified) client certificate. */
export function commonName(certificate: X509Certificate): string | undefined {
  return /^CN=(.+)$/m.exec(certificate.subject)?.[1]?.trim() || undefined;
}

export interface TunnelServerOptions {
  readonly port: number;
  readonly tls: { cert: string; key: string; ca: string };
  /** SPKI PEM of the cloud's token-signing key. */
  readonly tokenPublicKeyPem: string;
  /** The longest access-token lifetime the control plane issues: tokens claiming more are refused. */
  readonly tokenMaxTtlSeconds: number;
  /** Wall clock for token expiry; default Date.now. */
  readonly now?: () => number;
  /** Asks the cloud about a connector id; undefined when unknown. May reject (no answer in time). */
  readonly lookup: (connectorId: string) => Promise<ConnectorInfo | undefined>;
  readonly router: Router<Stream>;
  readonly counters: {
    tunnelsAccepted: number;
    tunnelsRefused: number;
    tokenUpdates: number;
    tokenUpdatesRefused: number;
    tunnelsExpired: number;
  };
  readonly log: Logger;
}

export class TunnelServer {
  readonly #options: TunnelServerOptions;
  readonly #tunnels = new Set<GatewayTunnel>();
  readonly #revoked = new Set<string>();
  /** X-Connector-Version values answered 403 (POST /admin/refuse-version): a release whose tunnels never come up. */
  #refusedVersions = new Set<string>();
  /** Transports of accepted tunnels not closed yet, and who waits for them to be. */
  #openTransports = 0;
  #closedWaiters: (() => void)[] = [];
  #listener: TCPSocketListener<SocketSlot> | undefined;
  #stopping = false;
  readonly #verifier: TokenVerifier;

  constructor(options: TunnelServerOptions) {
    this.#options = options;
    this.#verifier = new TokenVerifier(options.tokenPublicKeyPem, options.tokenMaxTtlSeconds, options.now);
  }

  /** Binds the tunnel port (throws if it cannot) and returns it. */
  listen(): number {
    const { port, tls, counters, log } = this.#options;
    this.#listener = listenTunnels<TunnelAuthContext>({
      hostname: "127.0.0.1",
      port,
      tls,
      authorize: (request, peer) => this.#authorize(request, peer),
      onTunnel: ({ transport, context }) => this.#accept(transport, context),
      onRejected: (info) => {
        if (info.status === undefined) return log.debug(`tunnel connection dropped: ${info.reason}`);
        counters.tunnelsRefused++;
        log.info(`tunnel refused ${info.status}: ${info.reason}`);
      },
    });
    return this.#listener.port;
  }

  get tunnels(): readonly GatewayTunnel[] {
    return [...this.#tunnels];
  }

  /** Closes every tunnel of a revoked connector now, and refuses it from here on. */
  revoke(connectorId: string): void {
    this.#revoked.add(connectorId);
    for (const tunnel of this.#tunnels) {
      if (tunnel.connectorId === connectorId) tunnel.session.close(CLOSE_REVOKED, "CONNECTOR_REVOKED");
    }
  }

  /** From now on, tunnel upgrades from these connector versions are refused (403); open tunnels stay. */
  refuseVersions(versions: readonly string[]): void {
    this.#refusedVersions = new Set(versions);
  }

  /** CONFIG_CHANGED (PROTOCOL §5.10) on the tunnels of the group whose catalog changed. */
  configChanged(group: string, version: string): void {
    for (const tunnel of this.#tunnels) {
      if (tunnel.group === group && !tunnel.session.isClosed) tunnel.session.sendConfigChanged(version);
    }
  }

  /** Graceful stop, first half: accept no tunnel, GO_AWAY on every tunnel (PROTOCOL §5.7). */
  drain(): void {
    this.#stopping = true;
    this.#listener?.stop(false);
    for (const tunnel of this.#tunnels) tunnel.session.goAway(GoAwayCode.DRAINING, "gateway stopping");
    this.#options.router.refresh();
  }

  /** Closes every tunnel (close handshakes run on) and the listener. */
  close(): void {
    this.#stopping = true;
    for (const tunnel of this.#tunnels) tunnel.session.close(CLOSE_STOPPING, "gateway stopping");
    this.#listener?.stop(false);
  }

  /** Resolves when every tunnel's transport has closed, or after `timeoutMs`. */
  async whenClosed(timeoutMs: number): Promise<void> {
    if (this.#openTransports === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.#closedWaiters.push(resolve)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  #transportClosed(): void {
    if (--this.#openTransports === 0) for (const wake of this.#closedWaiters.splice(0)) wake();
  }

  async #authorize(request: UpgradeRequest, peer: PeerInfo): Promise<AuthorizeDecision<TunnelAuthContext>> {
    const id = commonName(peer.certificate);
    if (!id) return { accept: false, status: 403, message: "client certificate names no connector" };
    let info: ConnectorInfo | undefined;
    try {
      info = await this.#options.lookup(id);
    } catch {
      return { accept: false, status: 503, message: "connector registry did not answer" };
    }
    if (!info) return { accept: false, status: 403, message: `unknown connector ${id}` };
    if (info.revoked || this.#revoked.has(id))
      return { accept: false, status: 403, message: `connector ${id} is revoked` };
    // Token and certificate together (docs/PROTOCOL.md §4): after the registry, so an unknown or revoked
    // connector still reads 403 (re-enroll) rather than 401 (refresh the token). The reason is logged,
    // the token never is.
    const verdict = this.#verifier.check(bearerToken(request.headers.get("authorization")), peer.certificate, id);
    if (!verdict.ok) {
      return {
        accept: false,
        status: 401,
        message: `${verdict.reason} (connector ${id})`,
        headers: [["WWW-Authenticate", 'Bearer error="invalid_token"']],
      };
    }
    const version = request.connectorVersion;
    if (version !== undefined && this.#refusedVersions.has(version)) {
      return {
        accept: false,
        status: 403,
        message: `connector version ${version} is refused by this cloud (connector ${id})`,
      };
    }
    if (this.#stopping) return { accept: false, status: 503, message: "gateway stopping" };
    const protocol = negotiateProtocol(request.protocols, [SUBPROTOCOL]);
    if (!protocol) {
      return {
        accept: false,
        status: 426,
        message: "no supported protocol version offered",
        headers: [["Sec-WebSocket-Protocol", SUBPROTOCOL]],
      };
    }
    return {
      accept: true,
      protocol,
      context: { info, certificate: peer.certificate, tokenExpiresAtMs: verdict.claims.exp * 1000 },
    };
  }

  #accept(transport: Transport, auth: TunnelAuthContext): void {
    const { info } = auth;
    const { router, counters, log } = this.#options;
    if (this.#revoked.has(info.id) || this.#stopping) {
      // Revoked (or stopping) while the upgrade was being answered.
      transport.close(
        this.#stopping ? CLOSE_STOPPING : CLOSE_REVOKED,
        this.#stopping ? "gateway stopping" : "CONNECTOR_REVOKED",
      );
      return;
    }
    counters.tunnelsAccepted++;
    this.#openTransports++;
    const observed = observeClose(transport, () => this.#transportClosed());
    const tunnel = new GatewayTunnel(auth, observed, {
      router,
      log,
      verifier: this.#verifier,
      token: (t, event, detail) => {
        if (event === "updated") counters.tokenUpdates++;
        else if (event === "expired") {
          counters.tunnelsExpired++;
          log.info(`tunnel from ${t.connectorId}: access token expired without a valid update: GO_AWAY AUTH_EXPIRED`);
        } else {
          counters.tokenUpdatesRefused++;
          log.warn(`tunnel from ${t.connectorId}: TOKEN_UPDATE refused (${detail}): closing it`);
        }
      },
      changed: () => router.refresh(),
      closed: (t, reason) => {
        this.#tunnels.delete(t);
        router.removeTarget(t);
        log.info(`tunnel from ${t.connectorId} closed: ${reason}`);
      },
    });
    if (tunnel.session.isClosed) return; // the transport was already gone; `closed` has run (and stopped the token watch)
    this.#tunnels.add(tunnel);
    router.addTarget(tunnel);
    log.info(`tunnel from ${info.id} (group ${info.group}) up`);
  }
}
