/**
 * A small HTTP CONNECT proxy for tests (enrollment and dataplane): listens on 127.0.0.1 port 0,
 * optionally demands basic auth (answers 407 otherwise), counts CONNECT requests and the tunnels it
 * opened, and relays bytes both ways with backpressure (a side that cannot take more pauses the other).
 *
 * It only dials loopback targets: a test must never reach any other address. Anything else is
 * answered 403, as is every CONNECT when `refuseConnect` is set (a proxy policy that forbids the host).
 */
import type { Socket, TCPSocketListener } from "bun";

export interface ConnectProxyOptions {
  /** Demand `Proxy-Authorization: Basic base64(user:pass)`; a missing or wrong one gets 407. */
  auth?: { username: string; password: string };
  /** Answer every CONNECT with 403 (a proxy policy refusing the destination). */
  refuseConnect?: boolean;
}

export interface ConnectProxy {
  readonly port: number;
  /** `http://127.0.0.1:PORT`, without credentials. */
  readonly url: string;
  /** `http://user:pass@127.0.0.1:PORT` with the given credentials (defaults: the configured ones). */
  urlWithAuth(username?: string, password?: string): string;
  /** CONNECT requests received, whatever their outcome. */
  readonly connects: number;
  /** CONNECT requests that were answered 200 and relayed. */
  readonly tunnels: number;
  /** `host:port` of every CONNECT request, in order. */
  readonly targets: readonly string[];
  stop(): void;
}

/** The request head must fit in this; a client sending more without a blank line is dropped. */
const MAX_HEAD_BYTES = 16 * 1024;
/** Bytes buffered towards one side before the other side is paused. */
const HIGH_WATER_BYTES = 1024 * 1024;

interface Side {
  socket: Socket<Conn> | undefined;
  pending: Uint8Array[];
  pendingBytes: number;
}

interface Conn {
  /** "head": reading the request; "dialing": CONNECT accepted, upstream not open yet (bytes queue in `head`). */
  state: "head" | "dialing" | "relay";
  head: Uint8Array;
  client: Side;
  upstream: Side;
  closed: boolean;
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** Writes what the socket takes now and queues the rest for `drain`. Returns false when over the high-water mark. */
function send(side: Side, data: Uint8Array): boolean {
  const socket = side.socket;
  if (!socket) return false;
  if (side.pending.length === 0) {
    const written = socket.write(data);
    if (written === data.byteLength) return true;
    data = data.subarray(Math.max(0, written));
  }
  // The caller's buffer is only valid during the data callback: keep a copy.
  side.pending.push(data.slice());
  side.pendingBytes += data.byteLength;
  return side.pendingBytes < HIGH_WATER_BYTES;
}

function flush(side: Side, other: Side): void {
  const socket = side.socket;
  if (!socket) return;
  while (side.pending.length > 0) {
    const chunk = side.pending[0]!;
    const written = socket.write(chunk);
    if (written < chunk.byteLength) {
      side.pending[0] = chunk.subarray(Math.max(0, written));
      side.pendingBytes -= Math.max(0, written);
      return;
    }
    side.pending.shift();
    side.pendingBytes -= chunk.byteLength;
  }
  other.socket?.resume();
}

function parseHead(head: string): { method: string; target: string; headers: Map<string, string> } {
  const lines = head.split("\r\n");
  const [method = "", target = ""] = (lines[0] ?? "").split(" ");
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { method, target, headers };
}

export function startConnectProxy(options: ConnectProxyOptions = {}): ConnectProxy {
  let connects = 0;
  let tunnels = 0;
  const targets: string[] = [];
  const expectedAuth = options.auth
    ? `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString("base64")}`
    : undefined;

  const closeBoth = (conn: Conn) => {
    if (conn.closed) return;
    conn.closed = true;
    conn.client.socket?.end();
    conn.upstream.socket?.end();
  };

  const answer = (socket: Socket<Conn>, status: string, extra = "") => {
    socket.end(`HTTP/1.1 ${status}\r\n${extra}Content-Length: 0\r\nConnection: close\r\n\r\n`);
  };

  const openUpstream = (conn: Conn, client: Socket<Conn>, host: string, port: number) => {
    conn.state = "dialing";
    Bun.connect<Conn>({
      hostname: host.replace(/^\[|\]$/g, ""),
      port,
      data: conn,
      socket: {
        open(upstream) {
          conn.upstream.socket = upstream;
          conn.state = "relay";
          tunnels++;
          send(conn.client, Buffer.from("HTTP/1.1 200 Connection Established\r\n\r\n"));
          if (conn.head.byteLength > 0) send(conn.upstream, conn.head);
          conn.head = new Uint8Array(0);
          client.resume();
        },
        data(_upstream, data) {
          if (!send(conn.client, data)) conn.upstream.socket?.pause();
        },
        drain() {
          flush(conn.upstream, conn.client);
        },
        close() {
          closeBoth(conn);
        },
        error() {
          closeBoth(conn);
        },
      },
    }).catch(() => {
      if (!conn.closed) answer(client, "502 Bad Gateway");
    });
  };

  const onHead = (socket: Socket<Conn>, conn: Conn) => {
    const text = Buffer.from(conn.head).toString("latin1");
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) {
      if (conn.head.byteLength > MAX_HEAD_BYTES) answer(socket, "431 Request Header Fields Too Large");
      return;
    }
    // Bytes after the head belong to the tunnel: keep them until the upstream is open.
    conn.head = conn.head.slice(end + 4);
    const { method, target, headers } = parseHead(text.slice(0, end));
    if (method !== "CONNECT") return answer(socket, "405 Method Not Allowed");
    connects++;
    targets.push(target);
    if (expectedAuth && headers.get("proxy-authorization") !== expectedAuth) {
      return answer(socket, "407 Proxy Authentication Required", 'Proxy-Authenticate: Basic realm="test"\r\n');
    }
    const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(target);
    if (!match || options.refuseConnect || !isLoopback(match[1]!)) return answer(socket, "403 Forbidden");
    openUpstream(conn, socket, match[1]!, Number(match[2]));
  };

  const listener: TCPSocketListener<Conn> = Bun.listen<Conn>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        const conn: Conn = {
          state: "head",
          head: new Uint8Array(0),
          client: { socket, pending: [], pendingBytes: 0 },
          upstream: { socket: undefined, pending: [], pendingBytes: 0 },
          closed: false,
        };
        socket.data = conn;
      },
      data(socket, data) {
        const conn = socket.data;
        if (conn.state === "relay") {
          if (!send(conn.upstream, data)) socket.pause();
          return;
        }
        const merged = new Uint8Array(conn.head.byteLength + data.byteLength);
        merged.set(conn.head);
        merged.set(data, conn.head.byteLength);
        conn.head = merged;
        if (conn.state === "head") onHead(socket, conn);
        else if (conn.head.byteLength > HIGH_WATER_BYTES) socket.pause();
      },
      drain(socket) {
        flush(socket.data.client, socket.data.upstream);
      },
      close(socket) {
        closeBoth(socket.data);
      },
      error(socket) {
        closeBoth(socket.data);
      },
    },
  });

  const url = `http://127.0.0.1:${listener.port}`;
  return {
    port: listener.port,
    url,
    urlWithAuth(username = options.auth?.username ?? "", password = options.auth?.password ?? "") {
      return `http://${encodeURIComponent(username)}:${encodeURIComponent(password)}@127.0.0.1:${listener.port}`;
    },
    get connects() {
      return connects;
    },
    get tunnels() {
      return tunnels;
    },
    targets,
    stop() {
      listener.stop(true);
    },
  };
}
