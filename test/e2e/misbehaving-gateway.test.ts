/**
 * A gateway that breaks the protocol must cost the connector one stream or one tunnel, never the
 * process: the compiled connector runs against the reference control plane (in-process) whose only
 * gateway is scripted here to send malformed frames, frames for unknown streams, DATA beyond the
 * window and a huge length.
 */
import { afterAll, expect } from "bun:test";
import { beforeAll, test } from "../support/e2e.ts";
import { createConsola } from "consola";
import { startCloud, type CloudHandle } from "../cloud/cloud.ts";
import type { GatewayFleet } from "../cloud/gateway-api.ts";
import { listenTunnels } from "../support/ws-server.ts";
import { SUBPROTOCOL, FrameType, StreamCode } from "../../src/mux/const.ts";
import * as enc from "../../src/mux/frame-encoder.ts";
import { decodeMessage, type Frame } from "../../src/mux/frame-decoder.ts";
import type { WsTransport } from "../../src/transport/ws-transport.ts";
import type { TransportClose } from "../../src/transport/transport.ts";
import { startEchoServer, type EchoServer } from "../support/apps.ts";
import { startDaemon, type DaemonProcess } from "../support/daemon-process.ts";

/** One tunnel as the scripted gateway sees it: frames received, and how it ended. */
class RawTunnel {
  readonly frames: Frame[] = [];
  closed?: TransportClose;
  #waiters: (() => void)[] = [];
  constructor(readonly transport: WsTransport) {
    transport.setHandlers({
      message: (data) => {
        decodeMessage(
          data,
          (f) => void this.frames.push(f.type === FrameType.DATA ? { ...f, payload: f.payload.slice() } : f),
        );
        this.#wake();
      },
      drain: () => {},
      close: (info) => {
        this.closed = info;
        this.#wake();
      },
    });
  }
  #wake() {
    for (const w of this.#waiters.splice(0)) w();
  }
  send(...frames: Uint8Array[]) {
    this.transport.send(frames);
  }
  /** Waits for `probe`, woken by each frame; the 30 s default is a safety deadline for a loaded machine. */
  async until<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline)
        throw new Error(
          `timed out waiting for ${what}; frames: ${JSON.stringify(this.frames.map((f) => [f.type, f.streamId]))}`,
        );
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }
  /** Sends a PING and waits for its PONG: proof that the tunnel is still served. */
  async alive(): Promise<boolean> {
    const opaque = crypto.getRandomValues(new Uint8Array(8));
    this.send(enc.encodePing(opaque));
    await this.until("PONG", () =>
      this.frames.find((f) => f.type === FrameType.PONG && Buffer.from(f.opaque).equals(Buffer.from(opaque)))
        ? true
        : undefined,
    );
    return this.closed === undefined;
  }
}

const tunnels: RawTunnel[] = [];
let nextTunnel: ((t: RawTunnel) => void) | undefined;
function newTunnel(timeoutMs = 45_000): Promise<RawTunnel> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no new tunnel from the connector")), timeoutMs);
    nextTunnel = (t) => {
      clearTimeout(timer);
      resolve(t);
    };
  });
}

let cloud: CloudHandle;
let echo: EchoServer;
/** An app that accepts and never reads, so the connector stops granting credit once kernel buffers fill. */
let stuck: { port: number; stop(): void };
let daemon: DaemonProcess;
let firstTunnel: Promise<RawTunnel>;

beforeAll(async () => {
  echo = startEchoServer();
  const stuckListener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: (s) => s.pause(), data() {} } });
  stuck = { port: stuckListener.port, stop: () => stuckListener.stop(true) };
  const scripted = (
    state: Parameters<NonNullable<Parameters<typeof startCloud>[0]>["startGateways"] & {}>[0],
  ): Promise<GatewayFleet> => {
    const cert = state.ca.issueServerCert();
    const listener = listenTunnels({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert: cert.certPem, key: cert.keyPem, ca: state.ca.certPem },
      authorize: () => ({ accept: true, protocol: SUBPROTOCOL, context: undefined }),
      onTunnel: ({ transport }) => {
        const tunnel = new RawTunnel(transport);
        tunnels.push(tunnel);
        nextTunnel?.(tunnel);
        nextTunnel = undefined;
      },
    });
    const url = `wss://127.0.0.1:${listener.port}/v1/tunnel`;
    return Promise.resolve({
      gateways: [{ id: "scripted", url, stop: async () => listener.stop(true) }],
      listenAddress: () => null,
      stop: async () => listener.stop(true),
    });
  };
  cloud = await startCloud({
    startGateways: scripted,
    apps: [
      {
        name: "echo",
        destinations: [{ host: "127.0.0.1", ports: String(echo.port) }],
        servers: [`127.0.0.1:${echo.port}`],
      },
      {
        name: "stuck",
        destinations: [{ host: "127.0.0.1", ports: String(stuck.port) }],
        servers: [`127.0.0.1:${stuck.port}`],
      },
    ],
    log: createConsola({ level: -999 }),
  });
  firstTunnel = newTunnel(60_000);
  daemon = await startDaemon({ key: cloud.provisioningKey, tunnels: 1 });
}, 120_000);

afterAll(async () => {
  await daemon?.stop(5_000);
  await cloud?.stop();
  echo?.stop();
  stuck?.stop();
}, 30_000);

test("a frame for an unknown stream is answered RESET PROTOCOL; the tunnel stays up", async () => {
  const tunnel = await firstTunnel;
  tunnel.send(enc.encodeWindowUpdate(4242, 1024));
  const reset = await tunnel.until("RESET for stream 4242", () =>
    tunnel.frames.find((f) => f.type === FrameType.RESET && f.streamId === 4242),
  );
  expect(reset.type === FrameType.RESET && reset.code).toBe(StreamCode.PROTOCOL);
  expect(await tunnel.alive()).toBe(true);
}, 60_000);

test("DATA beyond the window resets that stream with FLOW_CONTROL; the tunnel and other streams go on", async () => {
  const tunnel = await firstTunnel;
  tunnel.send(enc.encodeOpen(10, "stuck", "127.0.0.1", stuck.port), enc.encodeOpen(11, "echo", "127.0.0.1", echo.port));
  for (const id of [10, 11]) {
    const result = await tunnel.until(`OPEN_RESULT ${id}`, () =>
      tunnel.frames.find((f) => f.type === FrameType.OPEN_RESULT && f.streamId === id),
    );
    expect(result.type === FrameType.OPEN_RESULT && result.code).toBe(StreamCode.OK);
  }
  // Use exactly the credit the connector grants (initial window + its updates) until it stops granting:
  // the app does not read, so once the kernel buffers are full no more credit comes.
  const granted = () =>
    256 * 1024 +
    tunnel.frames.reduce(
      (sum, f) => sum + (f.type === FrameType.WINDOW_UPDATE && f.streamId === 10 ? f.increment : 0),
      0,
    );
  const frame = new Uint8Array(64 * 1024);
  let sent = 0;
  const reset10 = () => tunnel.frames.find((f) => f.type === FrameType.RESET && f.streamId === 10);
  // Each round fills the credit, then sends 1 KiB past it. A connector slow to send a WINDOW_UPDATE (a
  // loaded machine) may still cover those bytes: then the round repeats with the new credit. Only when
  // no credit covers them must the RESET come; waiting for either is event-driven, not a quiet period.
  let reset: Frame | undefined;
  for (let round = 1; reset === undefined; round++) {
    if (round > 10_000 || sent > 512 * 1024 * 1024)
      throw new Error(`no RESET FLOW_CONTROL after ${round - 1} rounds, ${sent} bytes sent`);
    for (let credit = granted() - sent; credit > 0; credit = granted() - sent) {
      const n = Math.min(credit, frame.byteLength);
      tunnel.send(enc.encodeData(10, frame.subarray(0, n)));
      sent += n;
    }
    const covered = granted();
    tunnel.send(enc.encodeData(10, frame.subarray(0, 1024)));
    sent += 1024;
    reset =
      (await tunnel.until(
        "RESET FLOW_CONTROL, or credit that covers the extra 1 KiB",
        () => reset10() ?? (granted() > covered ? null : undefined),
      )) ?? undefined;
  }
  expect(reset.type === FrameType.RESET && reset.code).toBe(StreamCode.FLOW_CONTROL);
  // Stream 11 still echoes.
  tunnel.send(enc.encodeData(11, new TextEncoder().encode("still here")), enc.encodeFin(11));
  await tunnel.until("echo on stream 11", () =>
    tunnel.frames.some((f) => f.type === FrameType.FIN && f.streamId === 11) ? true : undefined,
  );
  const echoed = tunnel.frames
    .filter((f) => f.type === FrameType.DATA && f.streamId === 11)
    .map((f) => (f.type === FrameType.DATA ? Buffer.from(f.payload).toString() : ""));
  expect(echoed.join("")).toBe("still here");
  expect(await tunnel.alive()).toBe(true);
}, 60_000);

test("an OPEN with invalid UTF-8 in its app name resets that stream PROTOCOL; the tunnel stays up and serves the next OPEN", async () => {
  const tunnel = await firstTunnel;
  // OPEN stream 20: app bytes 0x65 0xff (not UTF-8), host "127.0.0.1", the echo port.
  const host = new TextEncoder().encode("127.0.0.1");
  const payload = new Uint8Array([2, 0x65, 0xff, host.length, ...host, echo.port >> 8, echo.port & 0xff]);
  const frame = new Uint8Array(12 + payload.length);
  const view = new DataView(frame.buffer);
  view.setUint8(0, FrameType.OPEN);
  view.setUint32(4, 20);
  view.setUint32(8, payload.length);
  frame.set(payload, 12);
  tunnel.send(frame);
  const reset = await tunnel.until("RESET for stream 20", () =>
    tunnel.frames.find((f) => f.type === FrameType.RESET && f.streamId === 20),
  );
  expect(reset.type === FrameType.RESET && reset.code).toBe(StreamCode.PROTOCOL);
  expect(await tunnel.alive()).toBe(true);
  tunnel.send(enc.encodeOpen(21, "echo", "127.0.0.1", echo.port));
  const result = await tunnel.until("OPEN_RESULT 21", () =>
    tunnel.frames.find((f) => f.type === FrameType.OPEN_RESULT && f.streamId === 21),
  );
  expect(result.type === FrameType.OPEN_RESULT && result.code).toBe(StreamCode.OK);
  tunnel.send(enc.encodeFin(21));
}, 60_000);

test("a malformed frame closes the tunnel with a protocol error; the connector reconnects", async () => {
  const tunnel = await firstTunnel;
  const reconnected = newTunnel();
  const bad = new Uint8Array(12);
  bad[0] = 0x7f; // no such frame type
  tunnel.send(bad);
  await tunnel.until("close", () => tunnel.closed);
  expect(tunnel.closed?.code).toBe(1002);
  const next = await reconnected;
  expect(await next.alive()).toBe(true);
  expect(daemon.proc.exitCode).toBeNull();
}, 90_000);

test("a huge length closes the tunnel with a protocol error; the process stays up and reconnects", async () => {
  const tunnel = tunnels.at(-1)!;
  const reconnected = newTunnel();
  const huge = new Uint8Array(12);
  const view = new DataView(huge.buffer);
  view.setUint8(0, FrameType.DATA);
  view.setUint32(4, 1);
  view.setUint32(8, 0xfffffff0);
  tunnel.send(huge);
  await tunnel.until("close", () => tunnel.closed);
  expect(tunnel.closed?.code).toBe(1002);
  const next = await reconnected;
  expect(await next.alive()).toBe(true);
  expect(daemon.proc.exitCode).toBeNull();
  const logs = daemon.output();
  expect(logs).toContain("PROTOCOL_");
}, 90_000);
