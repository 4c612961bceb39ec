/**
 * Server side of the tunnel handshake, for the reference gateway but generic: on a TLS socket
 * accepted by `Bun.listen` with `requestCert`/`rejectUnauthorized`, read the HTTP upgrade request
 * (bounded in size and time), ask an injected `authorize` with the request and the verified peer
 * certificate, answer 101 (with the chosen subprotocol) or an HTTP error, and hand over a server
 * `WsTransport`. `Bun.serve` cannot show the client certificate; `Bun.listen` can
 * (`getPeerX509Certificate()` once the `handshake` event has fired).
 */
import type { X509Certificate } from "node:crypto";
import type { Socket, SocketHandler, TCPSocketListener } from "bun";
import {
  ACCEPT_TIMEOUT_MS,
  MAX_EARLY_DATA_BYTES,
  MAX_HTTP_HEAD_BYTES,
  TUNNEL_PATH,
} from "../../src/transport/websocket/config.ts";
import {
  buildRefusalResponse,
  buildSwitchingResponse,
  checkUpgradeRequest,
  isUpgradeRefusal,
  type UpgradeRequest,
} from "../../src/transport/websocket/handshake.ts";
import { HeadCollector, parseRequestHead } from "../../src/transport/websocket/http-head.ts";
import {
  nullSink,
  slotHandlers,
  writeHead,
  type SocketSink,
  type SocketSlot,
} from "../../src/transport/websocket/socket-slot.ts";
import { WsTransport, type WsTransportOptions } from "../../src/transport/ws-transport.ts";

/** Who is on the other end, as TLS established it. */
export interface PeerInfo {
  /** The verified client certificate (the chain was checked against the listener's `ca`). */
  certificate: X509Certificate;
  remoteAddress: string;
}

export type AuthorizeDecision<C> =
  | { accept: true; protocol: string; context: C }
  | { accept: false; status: number; message?: string; headers?: ReadonlyArray<readonly [string, string]> };

export interface AcceptedTunnel<C> {
  transport: WsTransport;
  protocol: string;
  request: UpgradeRequest;
  peer: PeerInfo;
  context: C;
}

/** Why a connection did not become a tunnel (for the gateway's logs; never contains the token). */
export interface RejectedConnection {
  remoteAddress: string;
  status?: number;
  reason: string;
}

export interface TunnelAcceptOptions<C> {
  authorize(request: UpgradeRequest, peer: PeerInfo): AuthorizeDecision<C> | Promise<AuthorizeDecision<C>>;
  onTunnel(tunnel: AcceptedTunnel<C>): void;
  onRejected?(info: RejectedConnection): void;
  path?: string;
  acceptTimeoutMs?: number;
  transport?: Omit<WsTransportOptions, "role" | "socket" | "protocol" | "initialData" | "preamble">;
}

/** Socket handlers for `Bun.listen({ tls: { requestCert: true, rejectUnauthorized: true, … } })`. */
export function tunnelSocketHandlers<C>(options: TunnelAcceptOptions<C>): SocketHandler<SocketSlot> {
  return {
    ...slotHandlers,
    open(socket: Socket<SocketSlot>) {
      socket.data = { sink: new ServerHandshake(socket, options) };
    },
  };
}

export interface ListenTunnelsOptions<C> extends TunnelAcceptOptions<C> {
  hostname: string;
  port: number;
  tls: { cert: string; key: string; ca: string };
}

/** Listens for tunnels with mutual TLS: clients without a certificate from `tls.ca` are refused. */
export function listenTunnels<C>(options: ListenTunnelsOptions<C>): TCPSocketListener<SocketSlot> {
  return Bun.listen<SocketSlot>({
    hostname: options.hostname,
    port: options.port,
    tls: { ...options.tls, requestCert: true, rejectUnauthorized: true },
    socket: tunnelSocketHandlers(options),
  });
}

/** One accepted connection until it becomes a tunnel or is refused. */
class ServerHandshake<C> implements SocketSink {
  readonly #collector = new HeadCollector(MAX_HTTP_HEAD_BYTES);
  readonly #timer: ReturnType<typeof setTimeout>;
  #peer: PeerInfo | null = null;
  #early: Uint8Array[] = [];
  #earlyBytes = 0;
  #phase: "tls" | "head" | "authorizing" | "done" = "tls";

  constructor(
    private readonly socket: Socket<SocketSlot>,
    private readonly options: TunnelAcceptOptions<C>,
  ) {
    this.#timer = setTimeout(
      () => this.#drop("upgrade not completed in time"),
      options.acceptTimeoutMs ?? ACCEPT_TIMEOUT_MS,
    );
  }

  handshake(ok: boolean, error: Error | null): void {
    const certificate = ok && this.socket.authorized ? this.socket.getPeerX509Certificate() : undefined;
    if (!certificate) {
      // Bun already refuses these with rejectUnauthorized; checked again so a misconfigured
      // listener cannot let an unauthenticated client through.
      this.#drop(`client certificate not accepted${error ? `: ${error.message}` : ""}`);
      return;
    }
    this.#peer = { certificate, remoteAddress: this.socket.remoteAddress };
    this.#phase = "head";
  }

  data(chunk: Uint8Array): void {
    if (this.#phase === "authorizing") {
      this.#earlyBytes += chunk.length;
      if (this.#earlyBytes > MAX_EARLY_DATA_BYTES) this.#drop("too much data before the upgrade was answered");
      else this.#early.push(chunk);
      return;
    }
    if (this.#phase !== "head") return;
    let done: { head: string; rest: Uint8Array } | null;
    try {
      done = this.#collector.push(chunk);
    } catch {
      this.#refuse(431, "request head too large");
      return;
    }
    if (done) void this.#upgrade(done.head, done.rest);
  }

  drain(): void {}
  error(): void {}

  close(): void {
    if (this.#phase !== "done") this.#finish(`connection closed during the ${this.#phase} phase`);
  }

  async #upgrade(head: string, rest: Uint8Array): Promise<void> {
    const peer = this.#peer;
    if (!peer) return;
    let parsed: ReturnType<typeof checkUpgradeRequest>;
    try {
      parsed = checkUpgradeRequest(parseRequestHead(head), this.options.path ?? TUNNEL_PATH);
    } catch {
      this.#refuse(400, "malformed HTTP request");
      return;
    }
    if (isUpgradeRefusal(parsed)) {
      this.#refuse(parsed.status, parsed.message, parsed.headers);
      return;
    }
    this.#phase = "authorizing";
    this.#early = rest.length > 0 ? [rest] : [];
    this.#earlyBytes = rest.length;
    let decision: AuthorizeDecision<C>;
    try {
      decision = await this.options.authorize(parsed, peer);
    } catch {
      this.#refuse(500, "authorisation failed");
      return;
    }
    if (this.#phase !== "authorizing") return; // closed or timed out meanwhile
    if (!decision.accept) {
      this.#refuse(decision.status, decision.message ?? "refused", decision.headers);
      return;
    }
    this.#phase = "done";
    clearTimeout(this.#timer);
    const transport = new WsTransport({
      ...this.options.transport,
      role: "server",
      socket: this.socket,
      protocol: decision.protocol,
      initialData: this.#early,
      preamble: buildSwitchingResponse(parsed.key, decision.protocol),
    });
    this.options.onTunnel({ transport, protocol: decision.protocol, request: parsed, peer, context: decision.context });
  }

  #refuse(status: number, message: string, headers?: ReadonlyArray<readonly [string, string]>): void {
    if (this.#phase === "done") return;
    this.#finish(message, status); // first: ending the socket fires `close` synchronously
    if (writeHead(this.socket, buildRefusalResponse(status, message, headers))) this.socket.end();
    else this.socket.terminate();
  }

  #drop(reason: string): void {
    if (this.#phase === "done") return;
    this.#finish(reason);
    this.socket.terminate();
  }

  #finish(reason: string, status?: number): void {
    if (this.#phase === "done") return;
    this.#phase = "done";
    clearTimeout(this.#timer);
    this.socket.data.sink = nullSink;
    this.options.onRejected?.({
      remoteAddress: this.socket.remoteAddress,
      reason,
      ...(status !== undefined ? { status } : {}),
    });
  }
}
