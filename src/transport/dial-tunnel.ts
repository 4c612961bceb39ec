/**
 * `dialTunnel` opens one tunnel to a gateway (docs/PROTOCOL.md §4): TCP (directly or through an
 * HTTP CONNECT proxy), TLS 1.2+ with the connector's client certificate and only the cloud CA as
 * trust anchor, then the WebSocket upgrade offering our subprotocols. The whole dial shares one
 * deadline. Every failure is a `TunnelDialError` whose code says what to fix: TUNNEL_DNS,
 * TUNNEL_REFUSED, TUNNEL_TIMEOUT, TUNNEL_TLS (a certificate the cloud CA did not sign: likely TLS
 * inspection; or no TLS on the port), TUNNEL_TLS_HOSTNAME / TUNNEL_TLS_PURPOSE / TUNNEL_TLS_CLOCK
 * (signed by the cloud CA, but for another name, not for servers, or outside its dates by this
 * host's clock), TUNNEL_TLS_VERSION, TUNNEL_PROXY (the proxy refused, reset, closed or garbled
 * CONNECT, or cut the tunnel during the TLS handshake), TUNNEL_HANDSHAKE (non-101; 403 revoked,
 * 426 version unsupported). Bun 1.4.5's TLS options have no minVersion, but its client refuses
 * anything below TLS 1.2 by default (a test dials a TLS 1.1-only server: TUNNEL_TLS_VERSION).
 */
import type { Socket } from "bun";
import type { Secret } from "../secret.ts";
import { DIAL_TIMEOUT_MS, MAX_HTTP_HEAD_BYTES, SUBPROTOCOL_V1, TUNNEL_PATH } from "./websocket/config.ts";
import { HttpHeadError, TunnelDialError, type TunnelErrorCode } from "./websocket/errors.ts";
import { describeError, DNS_ERROR_CODES, errnoCode } from "../errors.ts";
import { peerText } from "../peer-text.ts";
import { describeTlsFailure, type TlsFailureKind } from "../tls-failure.ts";
import {
  buildUpgradeRequest,
  checkUpgradeResponse,
  formatAuthority,
  generateWebSocketKey,
  UpgradeResponseError,
} from "./websocket/handshake.ts";
import {
  Deadline,
  DeadlineError,
  HandshakeSink,
  SocketClosedError,
  TlsHandshakeError,
} from "./websocket/handshake-sink.ts";
import { headerList, parseResponseHead } from "./websocket/http-head.ts";
import {
  buildConnectRequest,
  checkConnectResponse,
  parseProxyUrl,
  type ProxyTarget,
} from "./websocket/proxy-connect.ts";
import { nullSink, slotHandlers, writeHead, type SocketSlot } from "./websocket/socket-slot.ts";
import { WsTransport, type WsTransportOptions } from "./ws-transport.ts";

export interface TunnelTlsIdentity {
  /** Client certificate chain, PEM. */
  cert: string;
  key: Secret<string>;
  /** The cloud CA, PEM: the only trust anchor. */
  ca: string;
}

export interface DialTunnelOptions {
  /** Gateway URL, `wss://host:port[/path]`; the path defaults to /v1/tunnel. */
  url: string;
  tls: TunnelTlsIdentity;
  /** TLS server name to verify; defaults to the URL's host. */
  serverName?: string;
  /** Subprotocols to offer, preferred first. */
  protocols?: readonly string[];
  accessToken?: Secret<string>;
  connectorVersion: string;
  /** HTTP proxy for CONNECT (`http://[user:pass@]host:port`); the caller applies the bypass list. */
  proxy?: string | URL;
  timeoutMs?: number;
  transport?: Omit<WsTransportOptions, "role" | "socket" | "protocol" | "initialData" | "preamble">;
}

export interface DialedTunnel {
  transport: WsTransport;
  /** The subprotocol the gateway chose. */
  protocol: string;
}

type Stage = "connect" | "tls" | "upgrade";

interface Target {
  host: string;
  port: number;
  path: string;
  authority: string;
}

function parseGatewayUrl(raw: string): Target {
  const url = new URL(raw);
  if (url.protocol !== "wss:") throw new RangeError(`gateway URL must be wss://, got ${url.protocol}`);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port === "" ? 443 : Number(url.port);
  const path = url.pathname === "" || url.pathname === "/" ? TUNNEL_PATH : url.pathname + url.search;
  return { host, port, path, authority: formatAuthority(host, port) };
}

export async function dialTunnel(options: DialTunnelOptions): Promise<DialedTunnel> {
  const target = parseGatewayUrl(options.url);
  const proxy = options.proxy === undefined ? undefined : parseProxyUrl(options.proxy);
  const protocols = options.protocols ?? [SUBPROTOCOL_V1];
  const deadline = new Deadline(options.timeoutMs ?? DIAL_TIMEOUT_MS);
  const sockets: Socket<SocketSlot>[] = [];
  let sink = new HandshakeSink(MAX_HTTP_HEAD_BYTES);
  let abandoned = false;
  /** How far the dial got: a close means something else before the TLS handshake is done. */
  let stage: Stage = "connect";
  const connect = async (host: string, port: number, tls: boolean): Promise<Socket<SocketSlot>> => {
    const pending = Bun.connect<SocketSlot>({
      hostname: host,
      port,
      data: { sink },
      socket: slotHandlers,
      ...(tls ? { tls: tlsOptions(options, target) } : {}),
    });
    // A connect that completes after the deadline must not leak its socket.
    pending.then(
      (s) => (abandoned ? s.terminate() : sockets.push(s)),
      () => {},
    );
    return pending;
  };
  try {
    let socket: Socket<SocketSlot>;
    if (proxy) {
      const raw = await deadline.race("connecting to the proxy", connect(proxy.host, proxy.port, false)).catch((e) => {
        throw proxyUnreachable(e, proxy);
      });
      await proxyConnect(raw, sink, deadline, proxy, target);
      raw.data.sink = nullSink; // from here the raw socket only carries TLS records
      sink = new HandshakeSink(MAX_HTTP_HEAD_BYTES);
      const [, tlsSocket] = raw.upgradeTLS<SocketSlot>({
        data: { sink },
        tls: tlsOptions(options, target),
        socket: slotHandlers,
      });
      sockets.push(tlsSocket);
      socket = tlsSocket;
    } else {
      socket = await deadline.race("connecting to the gateway", connect(target.host, target.port, true));
    }
    stage = "tls";
    await deadline.race("the TLS handshake", sink.tlsReady());
    stage = "upgrade";
    const key = generateWebSocketKey();
    const request = buildUpgradeRequest({
      authority: target.authority,
      path: target.path,
      key,
      protocols,
      accessToken: options.accessToken,
      connectorVersion: options.connectorVersion,
    });
    if (!writeHead(socket, request)) throw new SocketClosedError(sink.socketError);
    const { head, rest } = await deadline.race("the WebSocket upgrade", sink.readHead());
    const response = parseResponseHead(head);
    if (response.status !== 101)
      throw upgradeRefused(
        response.status,
        response.reason,
        headerList(response.headers.get("sec-websocket-protocol")),
        target,
      );
    const protocol = checkUpgradeResponse(response, key, protocols);
    // Every byte after the head, in order: the head's tail, then anything read since.
    const transport = new WsTransport({
      ...options.transport,
      role: "client",
      socket,
      protocol,
      initialData: [rest, ...sink.takeBuffered()],
    });
    return { transport, protocol };
  } catch (err) {
    abandoned = true;
    for (const s of sockets) s.terminate();
    throw classify(err, target, proxy, stage, options.serverName ?? target.host);
  } finally {
    deadline.clear();
  }
}

function tlsOptions(options: DialTunnelOptions, target: Target) {
  return {
    cert: options.tls.cert,
    key: options.tls.key.reveal(),
    ca: [options.tls.ca],
    serverName: options.serverName ?? target.host,
    rejectUnauthorized: true, // explicit: NODE_TLS_REJECT_UNAUTHORIZED must not weaken the tunnel
  };
}

async function proxyConnect(
  raw: Socket<SocketSlot>,
  sink: HandshakeSink,
  deadline: Deadline,
  proxy: ProxyTarget,
  target: Target,
): Promise<void> {
  if (!writeHead(raw, buildConnectRequest(target.host, target.port, proxy))) {
    throw new TunnelDialError("TUNNEL_PROXY", `proxy ${proxy.display} closed the connection before CONNECT`);
  }
  let answer: { head: string; rest: Uint8Array };
  let head: ReturnType<typeof parseResponseHead>;
  try {
    answer = await deadline.race(`CONNECT through proxy ${proxy.display}`, sink.readHead());
    head = parseResponseHead(answer.head);
  } catch (err) {
    if (err instanceof DeadlineError) throw err;
    throw new TunnelDialError(
      "TUNNEL_PROXY",
      `proxy ${proxy.display} ${proxyDropped(err)} when asked to CONNECT ${target.authority}`,
      { cause: err },
    );
  }
  checkConnectResponse(head, proxy, target.authority);
  if (answer.rest.length > 0) {
    throw new TunnelDialError("TUNNEL_PROXY", `proxy ${proxy.display} sent data before the TLS handshake`);
  }
}

/** What the proxy did instead of answering CONNECT: reset, closed, or answered something else. */
function proxyDropped(err: unknown): string {
  if (err instanceof SocketClosedError) {
    const code = errnoCode(err.socketError);
    return code === "ECONNRESET" || /reset/i.test(err.socketError?.message ?? "")
      ? "reset the connection"
      : "closed the connection without an answer";
  }
  return "answered with something that is not HTTP";
}

function proxyUnreachable(err: unknown, proxy: ProxyTarget): unknown {
  if (err instanceof DeadlineError) return err;
  const code = errnoCode(err);
  return new TunnelDialError("TUNNEL_PROXY", `proxy ${proxy.display} is unreachable (${code ?? "connect failed"})`, {
    cause: err,
  });
}

function upgradeRefused(status: number, reason: string, supported: string[], target: Target): TunnelDialError {
  const where = `gateway ${target.authority}`;
  const detail =
    status === 403
      ? "the connector is not allowed (certificate revoked?)"
      : status === 401
        ? "the gateway did not accept our credentials"
        : status === 426
          ? `no common protocol version (gateway supports: ${peerText(supported.join(", ")) || "unknown"})`
          : `${status} ${peerText(reason)}`.trimEnd();
  return new TunnelDialError("TUNNEL_HANDSHAKE", `${where} refused the tunnel: ${detail}`, {
    status,
    supportedProtocols: supported,
  });
}

const TLS_CODES: Record<TlsFailureKind, TunnelErrorCode> = {
  untrusted: "TUNNEL_TLS",
  hostname: "TUNNEL_TLS_HOSTNAME",
  purpose: "TUNNEL_TLS_PURPOSE",
  expired: "TUNNEL_TLS_CLOCK",
  "not-yet-valid": "TUNNEL_TLS_CLOCK",
  version: "TUNNEL_TLS_VERSION",
  "not-tls": "TUNNEL_TLS",
  closed: "TUNNEL_TLS",
  other: "TUNNEL_TLS",
};

/** Maps anything thrown during a dial to a TunnelDialError naming the check or the party that failed. */
function classify(
  err: unknown,
  target: Target,
  proxy: ProxyTarget | undefined,
  stage: Stage,
  serverName: string,
): TunnelDialError {
  if (err instanceof TunnelDialError) return err;
  const where = `gateway ${target.authority}${proxy ? ` via proxy ${proxy.display}` : ""}`;
  if (err instanceof TlsHandshakeError && !(proxy && err.kind === "closed")) {
    const said = describeTlsFailure(err.kind, where, err.reason, new Date(), serverName);
    const hint =
      err.kind === "untrusted"
        ? ". This is what TLS inspection looks like: exempt the gateway from inspection on the proxy or firewall."
        : err.kind === "not-tls" && proxy
          ? ": the proxy may have answered or cut the tunnel itself."
          : err.kind === "closed"
            ? "; if this persists, the gateway may be refusing our client certificate (with TLS 1.2 it can only hang up)"
            : "";
    return new TunnelDialError(TLS_CODES[err.kind], `${said}${hint}`, { cause: err });
  }
  if ((err instanceof SocketClosedError || err instanceof TlsHandshakeError) && proxy && stage !== "upgrade") {
    // The proxy said 200 and then the connection ended before TLS with the gateway finished: the
    // proxy (or a policy behind it) cut it; the gateway would have had to refuse in TLS to be blamed.
    const detail = err instanceof SocketClosedError ? err.socketError?.message : err.reason;
    const how = detail ? ` (${detail})` : "";
    return new TunnelDialError(
      "TUNNEL_PROXY",
      `proxy ${proxy.display} accepted CONNECT ${target.authority} but the connection was closed during the TLS handshake${how}; the proxy may block or inspect TLS to the gateway`,
      { cause: err },
    );
  }
  if (err instanceof DeadlineError)
    return new TunnelDialError("TUNNEL_TIMEOUT", `${where}: timed out during ${err.phase}`, { cause: err });
  if (err instanceof UpgradeResponseError || err instanceof HttpHeadError) {
    return new TunnelDialError("TUNNEL_HANDSHAKE", `${where}: invalid upgrade answer: ${err.message}`, { cause: err });
  }
  if (err instanceof SocketClosedError) {
    const alert = err.socketError?.message ?? "";
    if (/ALERT|certificate/i.test(alert)) {
      return new TunnelDialError(
        "TUNNEL_TLS",
        `${where} refused the TLS session (${alert}): is our client certificate valid for this cloud?`,
        { cause: err },
      );
    }
    // With TLS 1.3 a gateway that refuses our client certificate can only say so after our side
    // finished the handshake: it shows up here, as a close before any HTTP answer.
    return new TunnelDialError(
      "TUNNEL_HANDSHAKE",
      `${where} closed the connection before answering the upgrade${alert ? ` (${alert})` : ""}; ` +
        "if this persists, the gateway may be refusing our client certificate",
      { cause: err },
    );
  }
  const code = errnoCode(err);
  if (code !== undefined && DNS_ERROR_CODES.has(code))
    return new TunnelDialError("TUNNEL_DNS", `${where}: cannot resolve ${target.host} (${code})`, { cause: err });
  if (code === "ECONNREFUSED")
    return new TunnelDialError("TUNNEL_REFUSED", `${where}: connection refused`, { cause: err });
  if (code === "ETIMEDOUT") return new TunnelDialError("TUNNEL_TIMEOUT", `${where}: connect timed out`, { cause: err });
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH")
    return new TunnelDialError(
      "TUNNEL_REFUSED",
      `${where}: ${code === "EHOSTUNREACH" ? "host" : "network"} unreachable`,
      { cause: err },
    );
  return new TunnelDialError("TUNNEL_REFUSED", `${where}: ${describeError(err)}`, { cause: err });
}
