/**
 * The network primitives of preflight, each bounded by a deadline: a name lookup, a TCP connection
 * (directly or through the HTTP CONNECT proxy of the settings) and a TLS handshake that reports the
 * certificate chain the server presented instead of judging it (tls-chain.ts judges). The lookup and
 * the raw TCP connect are seams (`NetSeams`), so tests can make a name unresolvable on purpose.
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from "node:tls";
import { X509Certificate } from "node:crypto";
import { ConnectorError } from "../errors.ts";
import type { Secret } from "../secret.ts";
import { HeadCollector, parseResponseHead } from "../transport/websocket/http-head.ts";
import { buildConnectRequest, checkConnectResponse, type ProxyTarget } from "../transport/websocket/proxy-connect.ts";
import { formatAuthority } from "../transport/websocket/handshake.ts";

/** Deadlines of the network checks: each says how long an operator waits at most for that step. */
export const NET_TIMEOUTS = { dnsMs: 5_000, tcpMs: 5_000, tlsMs: 10_000, httpMs: 10_000 } as const;
export type NetTimeouts = { readonly [K in keyof typeof NET_TIMEOUTS]: number };

/** A proxy's answer to CONNECT is a short head; anything longer is not a proxy we can use. */
const MAX_CONNECT_HEAD_BYTES = 16 * 1024;

export interface NetSeams {
  /** Resolves `host` to its addresses (getaddrinfo, as the connector's own dials do). */
  lookup(host: string): Promise<string[]>;
  /** Opens a TCP connection; resolves once connected. */
  connect(host: string, port: number): Promise<Socket>;
}

export const systemNet: NetSeams = {
  async lookup(host) {
    return (await dnsLookup(host, { all: true })).map((a) => a.address);
  },
  connect(host, port) {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host, port });
      socket.once("connect", () => {
        socket.removeAllListeners("error");
        resolve(socket);
      });
      socket.once("error", (err) => {
        socket.destroy();
        reject(err);
      });
    });
  },
};

/** A step that did not finish in time. */
export class DeadlineError extends Error {
  override readonly name = "DeadlineError";
  constructor(
    readonly what: string,
    readonly ms: number,
  ) {
    super(`${what}: no answer within ${Math.round(ms / 1000)} s`);
  }
}

/** A CONNECT answer the connector cannot use (no 2xx, not HTTP, data before TLS). `status` when the proxy answered. */
export class ProxyConnectError extends ConnectorError {
  override readonly name = "ProxyConnectError";
  constructor(
    message: string,
    readonly status: number | undefined,
  ) {
    super("PROXY_FAILURE", message);
  }
}

/** `promise` or a DeadlineError after `ms`; a socket that arrives late is destroyed. */
export async function withDeadline<T>(
  what: string,
  ms: number,
  promise: Promise<T>,
  late?: (value: T) => void,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let expired = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      expired = true;
      reject(new DeadlineError(what, ms));
    }, ms);
  });
  promise.then(
    (value) => expired && late?.(value),
    () => {},
  );
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads the proxy's answer head (without its blank line); returns the bytes that came after it. */
function readConnectAnswer(socket: Socket): Promise<{ head: string; rest: Uint8Array }> {
  const collector = new HeadCollector(MAX_CONNECT_HEAD_BYTES);
  return new Promise((resolve, reject) => {
    const done = (err: Error | undefined, value?: { head: string; rest: Uint8Array }) => {
      socket.off("data", onData);
      socket.off("error", onError);
      socket.off("close", onClose);
      if (err) reject(err);
      else resolve(value!);
    };
    const onData = (chunk: Buffer) => {
      let answer: ReturnType<typeof collector.push>;
      try {
        answer = collector.push(chunk);
      } catch {
        return done(new ProxyConnectError("the proxy's answer to CONNECT is not HTTP (no end of head)", undefined));
      }
      if (answer) {
        socket.pause();
        done(undefined, answer);
      }
    };
    const onError = (err: Error) => done(err);
    const onClose = () =>
      done(new ProxyConnectError("the proxy closed the connection without answering CONNECT", undefined));
    socket.on("data", onData);
    socket.once("error", onError);
    socket.once("close", onClose);
  });
}

/**
 * A TCP connection to `host:port`, through `proxy` (CONNECT) when given, within `ms` in all. Throws
 * the connect error, a DeadlineError, or a ProxyConnectError naming what the proxy said.
 */
export async function openConnection(
  seams: NetSeams,
  host: string,
  port: number,
  proxy: ProxyTarget | undefined,
  ms: number,
): Promise<Socket> {
  const destroy = (s: Socket) => s.destroy();
  if (!proxy)
    return withDeadline(`TCP connect to ${formatAuthority(host, port)}`, ms, seams.connect(host, port), destroy);
  const started = Date.now();
  const socket = await withDeadline(
    `TCP connect to the proxy ${proxy.display}`,
    ms,
    seams.connect(proxy.host, proxy.port),
    destroy,
  );
  try {
    socket.write(buildConnectRequest(host, port, proxy));
    const answer = await withDeadline(
      `CONNECT ${formatAuthority(host, port)} through the proxy ${proxy.display}`,
      Math.max(1, ms - (Date.now() - started)),
      readConnectAnswer(socket),
    );
    let head: ReturnType<typeof parseResponseHead>;
    try {
      head = parseResponseHead(answer.head);
    } catch {
      throw new ProxyConnectError(
        `the proxy ${proxy.display} answered CONNECT with something that is not HTTP`,
        undefined,
      );
    }
    try {
      checkConnectResponse(head, proxy, formatAuthority(host, port));
    } catch (err) {
      throw new ProxyConnectError(err instanceof Error ? err.message : String(err), head.status);
    }
    if (answer.rest.length > 0)
      throw new ProxyConnectError(`the proxy ${proxy.display} sent data before the TLS handshake`, head.status);
    return socket;
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

export interface TlsHandshake {
  readonly protocol: string;
  /** The certificates the server sent, leaf first. */
  readonly chain: readonly X509Certificate[];
}

/** A TLS failure with Bun's code and reason (classified with src/tls-failure.ts by the caller). */
export class TlsProbeError extends Error {
  override readonly name = "TlsProbeError";
  constructor(
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

function chainOf(peer: PeerCertificate & { issuerCertificate?: PeerCertificate }): X509Certificate[] {
  const out: X509Certificate[] = [];
  const seen = new Set<string>();
  let current: (PeerCertificate & { issuerCertificate?: PeerCertificate }) | undefined = peer;
  while (current?.raw && out.length < 10 && !seen.has(current.fingerprint256)) {
    seen.add(current.fingerprint256);
    out.push(new X509Certificate(current.raw));
    current = current.issuerCertificate;
  }
  return out;
}

export interface TlsProbeOptions {
  readonly serverName: string | undefined;
  /** Client certificate (chain PEM) and key, for gateways that ask for one. */
  readonly client?: { readonly cert: string; readonly key: Secret<string> } | undefined;
}

/**
 * A TLS handshake over `socket` within `ms`. The chain is not verified here (rejectUnauthorized is
 * false on purpose): the caller checks it against the pin and can then name who issued a foreign
 * certificate. Nothing is sent after the handshake; the socket is closed.
 */
export async function tlsHandshake(socket: Socket, options: TlsProbeOptions, ms: number): Promise<TlsHandshake> {
  let tls: TLSSocket | undefined;
  const handshake = new Promise<TlsHandshake>((resolve, reject) => {
    tls = tlsConnect({
      socket,
      ...(options.serverName ? { servername: options.serverName } : {}),
      rejectUnauthorized: false,
      ...(options.client ? { cert: options.client.cert, key: options.client.key.reveal() } : {}),
    });
    tls.once("secureConnect", () => {
      const peer = tls!.getPeerCertificate(true);
      resolve({ protocol: tls!.getProtocol() ?? "TLS", chain: peer && "raw" in peer ? chainOf(peer) : [] });
    });
    tls.once("error", (err: Error & { code?: string }) => reject(new TlsProbeError(err.code, err.message)));
    tls.once("close", () => reject(new TlsProbeError("ECONNRESET", "the connection closed during the TLS handshake")));
  });
  try {
    return await withDeadline("the TLS handshake", ms, handshake);
  } finally {
    tls?.destroy();
    socket.destroy();
  }
}
