/**
 * Session tunables with their reasons, defaults and validation (like yamux's `DefaultConfig` /
 * `VerifyConfig`). Values fixed by the wire contract (initial window, maximum sizes) live in
 * `const.ts`; everything here may differ between two peers without breaking the protocol.
 */
import { ConnectorError } from "../errors.ts";
import {
  FrameType,
  HEADER_BYTES,
  INITIAL_WINDOW,
  MAX_DATA_PAYLOAD,
  MAX_MESSAGE_BYTES,
  MAX_PAYLOAD,
  MAX_WINDOW,
} from "./const.ts";

export interface SessionConfig {
  /**
   * Streams open at once on one tunnel; an OPEN beyond it is answered BUSY. 10,000: the benchmark holds
   * 10,000 idle streams per tunnel, and an idle stream costs well under 10 KiB (no buffers until data).
   */
  readonly maxStreams: number;
  /** PING period (PROTOCOL §5.6: 10 s). Short enough to notice a dead gateway within half a minute. */
  readonly heartbeatIntervalMs: number;
  /** A tunnel that received nothing for this many intervals is dead (3). One lost PONG is not death. */
  readonly missedHeartbeats: number;
  /**
   * Gateway side: how long `open` waits for OPEN_RESULT. 30 s covers the connector's DNS lookup plus a
   * dial timeout per address; after it the stream is reset CANCELLED.
   */
  readonly openTimeoutMs: number;
  /**
   * DATA payload per frame when only one stream has data to send: 256 KiB, the protocol maximum, so a
   * lone bulk stream's message is one frame. Bigger frames mean fewer headers, scheduler turns and,
   * above all, fewer socket writes at the receiver, which writes each DATA payload to its socket (one
   * syscall per frame): 64 → 256 KiB moved one stream from 9.2–9.6 to 9.8–10.1 Gbit/s here.
   */
  readonly maxFrameBytes: number;
  /**
   * DATA payload per frame when several streams compete: 64 KiB. Round-robin sends one frame per stream
   * per turn, so a small stream waits behind at most one such frame per busy stream (~0.13 ms each at
   * 4 Gbit/s), far less than the 256 KiB initial window each bulk stream already has in the TCP
   * buffers ahead of it. The receiver writes each DATA payload to its socket with one syscall: against
   * 16 KiB (HTTP/2's default), 64 KiB took 10–25% less connector CPU per byte with 64 bulk streams and
   * moved 13–17% more, with 1 KiB exchanges under a bulk stream no slower (BENCHMARKS.md, 2026-12-03).
   */
  readonly fairFrameBytes: number;
  /**
   * Largest transport message we build (the protocol allows 1 MiB). 256 KiB (+ 64 bytes, so one whole
   * solo frame and its header fit) is one initial window's worth: it amortises WebSocket framing, TLS
   * records and syscalls (Bun's TLS write of 256 KiB costs half as much per byte as of 64 KiB), while a
   * PONG or WINDOW_UPDATE queued behind a message waits at most ~0.35 ms at 6 Gbit/s.
   */
  readonly maxMessageBytes: number;
  /**
   * Receive window growth cap (PROTOCOL §5.5 allows up to 16 MiB). A stream's window doubles when the sender
   * flags that it ran out of credit while our consumer had delivered everything (the window, not the
   * consumer, limited it), and only while the window is below 1.5 bandwidth-delay products on a round
   * trip of at least 2 ms (flow-control.ts), so only streams whose consumer keeps up on a path with real
   * delay grow; memory per stream stays bounded by this value. Set it to `INITIAL_WINDOW` to disable growth.
   */
  readonly maxReceiveWindow: number;
  /**
   * Growth beyond `INITIAL_WINDOW` summed over a tunnel's streams. Bounds what one tunnel can be made
   * to buffer when every grown stream's consumer stops at once: 64 MiB is four fully grown streams,
   * or 80 ms × 6.7 Gbit/s of data in flight.
   */
  readonly windowGrowthBudget: number;
}

export const DEFAULT_SESSION_CONFIG: SessionConfig = Object.freeze({
  maxStreams: 10_000,
  heartbeatIntervalMs: 10_000,
  missedHeartbeats: 3,
  openTimeoutMs: 30_000,
  maxFrameBytes: MAX_DATA_PAYLOAD,
  fairFrameBytes: 64 * 1024,
  maxMessageBytes: 256 * 1024 + 64,
  maxReceiveWindow: MAX_WINDOW,
  windowGrowthBudget: 64 * 1024 * 1024,
});

/**
 * Grant WINDOW_UPDATE once the consumed, not yet granted bytes reach this fraction of the window
 * (PROTOCOL §5.5 says at least half): fewer control frames, and the sender still has half a window in flight.
 */
export const WINDOW_UPDATE_FRACTION = 0.5;

/**
 * Control frames (PONG, RESET, WINDOW_UPDATE…) waiting while the transport pushes back. Each answers a
 * frame the peer sent, so a peer that floods us and never reads could grow this without end; 4 MiB is
 * ~250,000 frames, far above any honest backlog (10,000 streams × a few frames), so beyond it the
 * tunnel is closed.
 */
export const MAX_CONTROL_BACKLOG_BYTES = 4 * 1024 * 1024;

/** A configuration value is out of range; a programming error, found at session construction. */
export class SessionConfigError extends ConnectorError {
  override readonly name = "SessionConfigError";
  constructor(message: string) {
    super("INVALID_SESSION_CONFIG", message);
  }
}

/** The largest control frame we may have to fit into one message (HEALTH_REPORT). */
const LARGEST_CONTROL_FRAME = HEADER_BYTES + MAX_PAYLOAD[FrameType.HEALTH_REPORT];

function check(ok: boolean, message: string): void {
  if (!ok) throw new SessionConfigError(message);
}

function isInt(value: number, min: number, max: number): boolean {
  return Number.isInteger(value) && value >= min && value <= max;
}

/** Throws `SessionConfigError` naming the first invalid field. */
export function verifySessionConfig(config: SessionConfig): void {
  check(isInt(config.maxStreams, 1, 2 ** 31), "maxStreams must be a positive integer");
  check(isInt(config.heartbeatIntervalMs, 1, 3_600_000), "heartbeatIntervalMs must be 1 ms .. 1 h");
  check(isInt(config.missedHeartbeats, 1, 100), "missedHeartbeats must be 1 .. 100");
  check(isInt(config.openTimeoutMs, 1, 3_600_000), "openTimeoutMs must be 1 ms .. 1 h");
  check(isInt(config.maxFrameBytes, 1, MAX_DATA_PAYLOAD), `maxFrameBytes must be 1 .. ${MAX_DATA_PAYLOAD}`);
  check(isInt(config.fairFrameBytes, 1, config.maxFrameBytes), "fairFrameBytes must be 1 .. maxFrameBytes");
  check(
    isInt(
      config.maxMessageBytes,
      Math.max(LARGEST_CONTROL_FRAME, HEADER_BYTES + config.maxFrameBytes),
      MAX_MESSAGE_BYTES,
    ),
    `maxMessageBytes must hold the largest frame and be at most ${MAX_MESSAGE_BYTES}`,
  );
  check(
    isInt(config.maxReceiveWindow, INITIAL_WINDOW, MAX_WINDOW),
    `maxReceiveWindow must be ${INITIAL_WINDOW} .. ${MAX_WINDOW}`,
  );
  check(isInt(config.windowGrowthBudget, 0, 2 ** 31), "windowGrowthBudget must be 0 .. 2^31 bytes");
}

/** Defaults overridden by `overrides`, validated. */
export function resolveSessionConfig(overrides: Partial<SessionConfig> = {}): SessionConfig {
  const config: SessionConfig = Object.freeze({ ...DEFAULT_SESSION_CONFIG, ...overrides });
  verifySessionConfig(config);
  return config;
}
