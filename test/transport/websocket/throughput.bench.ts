/**
 * Single-connection throughput on loopback, in one process (both ends share the JS thread, as in
 * the bare-relay baseline of BENCHMARKS.md): a raw Bun TLS socket pair vs the WebSocket transport,
 * 64 KiB messages, each direction. Run: `bun test/transport/websocket/throughput.bench.ts [MiB]`.
 */
import type { Socket } from "bun";
import { Secret } from "../../../src/secret.ts";
import { dialTunnel } from "../../../src/transport/dial-tunnel.ts";
import type { Transport } from "../../../src/transport/transport.ts";
import { listenTunnels } from "../../support/ws-server.ts";
import { createTestCa } from "../../support/test-pki.ts";

const TOTAL = Number(process.argv[2] ?? 1024) * 1024 * 1024;
const MESSAGE = 64 * 1024;
const ca = createTestCa();
const server = ca.issueServer();
const client = ca.issueClient({ commonName: "bench" });
const serverTls = { cert: server.cert, key: server.key, ca: ca.cert };

function report(name: string, bytes: number, ms: number): void {
  const mbs = bytes / 1e6 / (ms / 1000);
  console.log(`${name.padEnd(52)} ${mbs.toFixed(0).padStart(6)} MB/s  ${((mbs * 8) / 1000).toFixed(2)} Gbit/s`);
}

/** Writes `total` bytes in `chunk`-sized writes, resuming partial writes on drain. */
function pump(socket: Socket<unknown>, chunk: Uint8Array, total: number): { resume(): void } {
  let sent = 0;
  let offset = 0;
  const resume = () => {
    while (sent < total) {
      const n = socket.write(chunk, offset, chunk.length - offset);
      sent += n;
      offset += n;
      if (offset < chunk.length) return;
      offset = 0;
    }
  };
  return { resume };
}

async function rawTls(direction: "up" | "down", writeBytes: number): Promise<void> {
  const chunk = new Uint8Array(writeBytes).fill(7);
  let received = 0;
  let t0 = 0;
  const done = Promise.withResolvers<void>();
  const count = (_s: unknown, d: Uint8Array) => {
    received += d.length;
    if (received >= TOTAL) done.resolve();
  };
  let serverPump: { resume(): void } | null = null;
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    tls: { ...serverTls, requestCert: true, rejectUnauthorized: true },
    socket: {
      binaryType: "uint8array",
      data: count,
      handshake(s) {
        if (direction === "down") {
          t0 = performance.now();
          serverPump = pump(s as Socket<unknown>, chunk, TOTAL);
          serverPump.resume();
        }
      },
      drain() {
        serverPump?.resume();
      },
    },
  });
  let clientPump: { resume(): void } | null = null;
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port: listener.port,
    tls: { cert: client.cert, key: client.key, ca: [ca.cert], serverName: "localhost" },
    socket: {
      binaryType: "uint8array",
      data: count,
      handshake(s) {
        if (direction === "up") {
          t0 = performance.now();
          clientPump = pump(s as Socket<unknown>, chunk, TOTAL);
          clientPump.resume();
        }
      },
      drain() {
        clientPump?.resume();
      },
    },
  });
  await done.promise;
  report(
    `raw Bun TLS, ${writeBytes / 1024} KiB writes, ${direction === "up" ? "client→server" : "server→client"}`,
    received,
    performance.now() - t0,
  );
  socket.terminate();
  listener.stop(true);
}

function sendLoop(t: Transport, total: number): { resume(): void } {
  const message = new Uint8Array(MESSAGE).fill(9);
  let sent = 0;
  return {
    resume() {
      while (sent < total) {
        sent += message.length;
        if (!t.send([message])) return;
      }
    },
  };
}

async function websocket(direction: "up" | "down"): Promise<void> {
  let received = 0;
  let t0 = 0;
  const done = Promise.withResolvers<void>();
  const onMessage = (d: Uint8Array) => {
    received += d.length;
    if (received >= TOTAL) done.resolve();
  };
  const listener = listenTunnels({
    hostname: "127.0.0.1",
    port: 0,
    tls: serverTls,
    authorize: () => ({ accept: true, protocol: "connector.v1", context: null }),
    onTunnel({ transport }) {
      const loop = sendLoop(transport, direction === "down" ? TOTAL : 0);
      transport.setHandlers({ message: onMessage, drain: () => loop.resume(), close() {} });
      if (direction === "down") {
        t0 = performance.now();
        loop.resume();
      }
    },
  });
  const { transport } = await dialTunnel({
    url: `wss://127.0.0.1:${listener.port}`,
    tls: { cert: client.cert, key: new Secret(client.key), ca: ca.cert },
    connectorVersion: "bench",
  });
  const loop = sendLoop(transport, direction === "up" ? TOTAL : 0);
  transport.setHandlers({ message: onMessage, drain: () => loop.resume(), close() {} });
  if (direction === "up") {
    t0 = performance.now();
    loop.resume();
  }
  await done.promise;
  report(
    `WebSocket transport, 64 KiB msgs, ${direction === "up" ? "client→server (masked)" : "server→client"}`,
    received,
    performance.now() - t0,
  );
  transport.close();
  listener.stop(true);
}

console.log(`${TOTAL / 1024 / 1024} MiB per run, one process, loopback TLS 1.3`);
for (const direction of ["up", "down"] as const) {
  await rawTls(direction, MESSAGE);
  await rawTls(direction, 4 * MESSAGE);
  await websocket(direction);
}
process.exit(0);
