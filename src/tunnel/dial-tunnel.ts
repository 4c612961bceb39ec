/**
 * `dialTunnel` opens one tunnel to a gateway (docs/PROTOCOL.md §4): TCP (directly or through an
 * HTTP CONNECT proxy), TLS 1.2+ with the connector's client certificate and only the cloud CA as
 * trust anchor, then the WebSocket upgrade offering our subprotocols. The whole dial shares one
 * deadline. Every failure is a `TunnelDialError` whose code says what to fix: TUNNEL_DNS,
 * TUNNEL_REFUSED, TUNNEL_TIMEOUT, TUNNEL_TLS (verification failed: likely TLS inspection),
 * TUNNEL_PROXY, TUNNEL_HANDSHAKE (non-101; 403 revoked, 426 version unsupported).
 * Bun 1.4.5's TLS options have no minVersion, but its client refuses anything below TLS 1.2 by
 * default (a test dials a TLS 1.1-only server and gets TUNNEL_TLS).
 */
import type { Socket } from "bun";
import type { Secret } from "../secret.ts";
import { DIAL_TIMEOUT_MS, MAX_HTTP_HEAD_BYTES, SUBPROTOCOL_V1, TUNNEL_PATH } from "./websocket/config.ts";
import { HttpHeadError, TunnelDialError } from "./websocket/errors.ts";
import { describeError, DNS_ERROR_CODES, errnoCode } from "../errors.ts";
import {
  buildUpgradeRequest,
  checkUpgradeResponse,
  formatAuthority,
  generateWebSocketKey,
  UpgradeResponseError,
} from "./websocket/handshake.ts";
import { Deadline, DeadlineError, HandshakeSink, SocketClosedError, TlsHandshakeError } from "./websocket/handshake-sink.ts";
import { headerList, parseResponseHead } from "./websocket/http-head.ts";
import { buildConnectRequest, checkConnectResponse, parseProxyUrl, type ProxyTarget } from "./websocket/proxy-connect.ts";
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
  const connect = async (host: string, port: number, tls: boolean): Promise<Socket<SocketSlot>> => {
    const pending = Bun.connect<SocketSlot>({
      hostname: host,
      port,
      data: { sink },
      socket: slotHandlers,
      ...(tls ? { tls: tlsOptions(options, target) } : {}),
    });
    // A connect that completes after the deadline must not leak its socket.
    pending.then((s) => (abandoned ? s.terminate() : sockets.push(s)), () => {});
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
      const [, tlsSocket] = raw.upgradeTLS<SocketSlot>({ data: { sink }, tls: tlsOptions(options, target), socket: slotHandlers });
      sockets.push(tlsSocket);
      socket = tlsSocket;
    } else {
      socket = await deadline.race("connecting to the gateway", connect(target.host, target.port, true));
    }
    await deadline.race("the TLS handshake", sink.tlsReady());
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
    if (response.status !== 101) throw upgradeRefused(response.status, response.reason, headerList(response.headers.get("sec-websocket-protocol")), target);
    const protocol = checkUpgradeResponse(response, key, protocols);
    // Every byte after the head, in order: the head's tail, then anything read since.
    const transport = new WsTransport({ ...options.transport, role: "client", socket, protocol, initialData: [rest, ...sink.takeBuffered()] });
    return { transport, protocol };
  } catch (err) {
    abandoned = true;
    for (const s of sockets) s.terminate();
    throw classify(err, target, proxy);
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
  try {
    answer = await deadline.race(`CONNECT through proxy ${proxy.display}`, sink.readHead());
  } catch (err) {
    if (err instanceof DeadlineError) throw err;
    throw new TunnelDialError("TUNNEL_PROXY", `proxy ${proxy.display} closed the connection or answered garbage to CONNECT ${target.authority}`, { cause: err });
  }
  checkConnectResponse(parseResponseHead(answer.head), proxy, target.authority);
  if (answer.rest.length > 0) {
    throw new TunnelDialError("TUNNEL_PROXY", `proxy ${proxy.display} sent data before the TLS handshake`);
  }
}

function proxyUnreachable(err: unknown, proxy: ProxyTarget): unknown {
  if (err instanceof DeadlineError) return err;
  const code = errnoCode(err);
  return new TunnelDialError("TUNNEL_PROXY", `proxy ${proxy.display} is unreachable (${code ?? "connect failed"})`, { cause: err });
}

function upgradeRefused(status: number, reason: string, supported: string[], target: Target): TunnelDialError {
  const where = `gateway ${target.authority}`;
  const detail =
    status === 403
      ? "the connector is not allowed (certificate revoked?)"
      : status === 401
        ? "the gateway did not accept our credentials"
        : status === 426
          ? `no common protocol version (gateway supports: ${supported.join(", ") || "unknown"})`
          : `${status} ${reason}`.trimEnd();
  return new TunnelDialError("TUNNEL_HANDSHAKE", `${where} refused the tunnel: ${detail}`, { status, supportedProtocols: supported });
}


/** Maps anything thrown during a dial to a TunnelDialError. */
function classify(err: unknown, target: Target, proxy: ProxyTarget | undefined): TunnelDialError {
  if (err instanceof TunnelDialError) return err;
  const where = `gateway ${target.authority}${proxy ? ` via proxy ${proxy.display}` : ""}`;
  if (err instanceof TlsHandshakeError && err.certificateRejected) {
    return new TunnelDialError(
      "TUNNEL_TLS",
      `${where}: the server certificate does not verify against the cloud CA (${err.reason}). ` +
        "This is what TLS inspection looks like: exempt the gateway from inspection on the proxy or firewall.",
      { cause: err },
    );
  }
  if (err instanceof TlsHandshakeError) {
    return new TunnelDialError("TUNNEL_TLS", `${where}: TLS handshake failed (${err.message}); TLS 1.2 or newer is required`, { cause: err });
  }
  if (err instanceof DeadlineError) return new TunnelDialError("TUNNEL_TIMEOUT", `${where}: timed out during ${err.phase}`, { cause: err });
  if (err instanceof UpgradeResponseError || err instanceof HttpHeadError) {
    return new TunnelDialError("TUNNEL_HANDSHAKE", `${where}: invalid upgrade answer: ${err.message}`, { cause: err });
  }
  if (err instanceof SocketClosedError) {
    const alert = err.socketError?.message ?? "";
    if (/ALERT|certificate/i.test(alert)) {
      return new TunnelDialError("TUNNEL_TLS", `${where} refused the TLS session (${alert}): is our client certificate valid for this cloud?`, { cause: err });
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
  if (code !== undefined && DNS_ERROR_CODES.has(code)) return new TunnelDialError("TUNNEL_DNS", `${where}: cannot resolve ${target.host} (${code})`, { cause: err });
  if (code === "ECONNREFUSED") return new TunnelDialError("TUNNEL_REFUSED", `${where}: connection refused`, { cause: err });
  if (code === "ETIMEDOUT") return new TunnelDialError("TUNNEL_TIMEOUT", `${where}: connect timed out`, { cause: err });
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH") return new TunnelDialError("TUNNEL_REFUSED", `${where}: ${code === "EHOSTUNREACH" ? "host" : "network"} unreachable`, { cause: err });
  return new TunnelDialError("TUNNEL_REFUSED", `${where}: ${describeError(err)}`, { cause: err });
}
