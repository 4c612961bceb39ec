/** Shared fixtures for the session tests: a connector/gateway pair in memory, stream sinks, a raw peer. */
import { createHash } from "node:crypto";
import type { SessionConfig } from "../../src/mux/config.ts";
import { decodeMessage, type Frame } from "../../src/mux/frame-decoder.ts";
import { createMemoryTransportPair, type MemoryTransport } from "../support/memory-transport.ts";
import { type OpenHandler, Session, type SessionEvents } from "../../src/mux/session.ts";
import type { Stream, StreamCloseReason } from "../../src/mux/stream.ts";
import type { TransportClose } from "../../src/transport/transport.ts";
import { FakeClock } from "../support/fake-clock.ts";

/**
 * Waits for `condition` by yielding to the event loop, failing after a real-time deadline: 20 s, a safety
 * net (in memory this takes milliseconds, but a loaded machine can stall the process for seconds).
 */
export async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** Lets every queued microtask and immediate run (a few event-loop turns). */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

export interface Sink {
  readonly chunks: Uint8Array[];
  bytes: number;
  ended: boolean;
  closed: StreamCloseReason | undefined;
  drains: number;
  /** Called (once, then cleared) on the next drain. */
  onDrain: (() => void) | undefined;
  sha256(): string;
}

/** Writes `data` in chunks, waiting for drain whenever the stream pushes back, then ends the stream. */
export async function pump(stream: Stream, out: Sink, data: Uint8Array, chunkSize = 64 * 1024): Promise<void> {
  for (let at = 0; at < data.length; at += chunkSize) {
    if (!stream.write(data.subarray(at, at + chunkSize))) await new Promise<void>((resolve) => (out.onDrain = resolve));
  }
  stream.end();
}

/** Attaches handlers that copy what arrives; reports it consumed at once unless `consume` is false. */
export function sink(stream: Stream, options: { consume?: boolean } = {}): Sink {
  const result: Sink = {
    chunks: [],
    bytes: 0,
    ended: false,
    closed: undefined,
    drains: 0,
    onDrain: undefined,
    sha256: () => {
      const hash = createHash("sha256");
      for (const c of result.chunks) hash.update(c);
      return hash.digest("hex");
    },
  };
  stream.setHandlers({
    data(chunk) {
      result.chunks.push(chunk.slice());
      result.bytes += chunk.length;
      if (options.consume ?? true) stream.consumed(chunk.length);
    },
    end: () => void (result.ended = true),
    drain: () => {
      result.drains++;
      const resolve = result.onDrain;
      result.onDrain = undefined;
      resolve?.();
    },
    close: (reason) => void (result.closed = reason),
  });
  return result;
}

/**
 * Connector open handler that accepts and echoes every byte back, ending when the gateway ends. Like a
 * relay, it reports bytes consumed only once its "socket" (the stream itself) took them without
 * pushing back, so memory stays bounded by the windows.
 */
export const echoHandler: OpenHandler = (_request, stream) => {
  let held = 0;
  stream.setHandlers({
    data(chunk) {
      const taken = stream.write(chunk.slice());
      if (taken && held === 0) stream.consumed(chunk.length);
      else held += chunk.length; // granted back on drain
    },
    end: () => stream.end(),
    drain: () => {
      stream.consumed(held);
      held = 0;
    },
    close: () => {},
  });
  stream.accept();
};

export interface Pair {
  clock: FakeClock;
  connector: Session;
  gateway: Session;
  connectorEnd: MemoryTransport;
  gatewayEnd: MemoryTransport;
  /** Streams the connector received, in order. */
  incoming: Stream[];
}

export function createPair(
  options: {
    config?: Partial<SessionConfig>;
    capacityBytes?: number;
    onOpen?: OpenHandler;
    connectorEvents?: SessionEvents;
    gatewayEvents?: SessionEvents;
  } = {},
): Pair {
  const clock = new FakeClock();
  const [connectorEnd, gatewayEnd] = createMemoryTransportPair({ capacityBytes: options.capacityBytes });
  const incoming: Stream[] = [];
  const onOpen = options.onOpen ?? echoHandler;
  const connector = new Session({
    role: "connector",
    transport: connectorEnd,
    clock,
    config: options.config,
    events: options.connectorEvents,
    onOpen: (request, stream) => {
      incoming.push(stream);
      onOpen(request, stream);
    },
  });
  const gateway = new Session({
    role: "gateway",
    transport: gatewayEnd,
    clock,
    config: options.config,
    events: options.gatewayEvents,
  });
  return { clock, connector, gateway, connectorEnd, gatewayEnd, incoming };
}

/** A hand-driven peer on one transport end: records decoded frames, sends raw bytes. */
export class RawPeer {
  readonly frames: Frame[] = [];
  closed: TransportClose | undefined;

  constructor(readonly transport: MemoryTransport) {
    transport.setHandlers({
      message: (data) => {
        decodeMessage(data.slice(), (frame) => void this.frames.push(frame));
      },
      drain: () => {},
      close: (info) => void (this.closed = info),
    });
  }

  send(...frames: Uint8Array[]): void {
    this.transport.send(frames);
  }

  /** Frames of one type received so far. */
  of<T extends Frame["type"]>(type: T): Extract<Frame, { type: T }>[] {
    return this.frames.filter((f): f is Extract<Frame, { type: T }> => f.type === type);
  }
}

/** Deterministic pseudo-random bytes (so a failing integrity test is reproducible). */
export function randomBytes(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x;
  }
  return out;
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
