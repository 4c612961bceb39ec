/**
 * `Session` owns one tunnel's streams over a `Transport` (PROTOCOL §4–§5). It decodes each message, routes frames
 * to streams, answers PINGs, enforces the open-stream limit and stream-id order, and sends what the
 * fair scheduler builds, waiting for the transport's `drain` when it pushes back.
 *
 * Guarantees: every DATA byte it sends is covered by credit; a stream-level fault (unknown id, frame
 * invalid in its state, DATA beyond the window, an OPEN whose app or host is not UTF-8) resets only that
 * stream; a malformed frame closes the tunnel with 1002 and a `ProtocolError` as the reason; nothing
 * throws out of a transport callback;
 * one timer per session (heartbeat, death and open deadlines), none per stream.
 */
import { type Clock, systemClock } from "../clock.ts";
import type { ConnectorError } from "../errors.ts";
import type { Secret } from "../secret.ts";
import { resolveSessionConfig, type SessionConfig } from "./config.ts";
import { CloseCode } from "../transport/close-code.ts";
import { FrameType, type GoAwayCode, GoAwayCode as GoAway, StreamCode } from "./const.ts";
import * as E from "./errors.ts";
import { decodeMessage, type Frame, type OpenFrame, type OpenResultFrame } from "./frame-decoder.ts";
import * as enc from "./frame-encoder.ts";
import { DeadlineTimer, Heartbeat } from "./heartbeat.ts";
import { Outbound } from "./outbound.ts";
import type { HealthReport } from "./payloads.ts";
import { PendingOpens } from "./pending-opens.ts";
import { SessionCounters, type SessionStats } from "./session-stats.ts";
import {
  ROLE_ONLY_FRAMES,
  type SessionClosed,
  type SessionEvents,
  type SessionOptions,
  type SessionRole,
} from "./session-types.ts";
import type { OpenRequest, Stream } from "./stream.ts";
import { StreamRegistry } from "./stream-registry.ts";
import type { Transport, TransportClose } from "../transport/transport.ts";

export type { OpenHandler, SessionClosed, SessionEvents, SessionOptions, SessionRole } from "./session-types.ts";

export class Session {
  readonly role: SessionRole;
  readonly config: SessionConfig;
  /** Settles once, when the tunnel is gone. */
  readonly closed: Promise<SessionClosed>;
  readonly #transport: Transport;
  readonly #clock: Clock;
  readonly #events: SessionEvents;
  readonly #options: SessionOptions;
  readonly #streams: StreamRegistry;
  readonly #out: Outbound;
  readonly #heartbeat: Heartbeat;
  readonly #opens: PendingOpens;
  readonly #counters = new SessionCounters();
  /** Stream bytes moved when the outstanding PING left: unchanged at its PONG means a quiet round trip. */
  #pingMark = { bytesIn: 0, bytesOut: 0 };
  #resolveClosed!: (info: SessionClosed) => void;
  #closeInfo: SessionClosed | undefined;
  readonly #timer: DeadlineTimer;
  /** Connector: the highest stream id seen in an OPEN (ids must increase, PROTOCOL §5.2). */
  #lastStreamId = 0;
  #goAwaySent = false;
  #goAwayReceived = false;

  constructor(options: SessionOptions) {
    this.role = options.role;
    this.config = resolveSessionConfig(options.config);
    this.#options = options;
    this.#transport = options.transport;
    this.#clock = options.clock ?? systemClock;
    this.#events = options.events ?? {};
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#out = new Outbound(this.#transport, this.config, this.#counters, (err) =>
      this.#fail(
        err instanceof E.ControlBacklogError ? err : new E.SessionInternalError("sending failed", { cause: err }),
      ),
    );
    this.#heartbeat = new Heartbeat(this.#clock.now(), this.config.heartbeatIntervalMs, this.config.missedHeartbeats);
    this.#streams = new StreamRegistry({
      config: this.config,
      out: this.#out,
      counters: this.#counters,
      streamError: (id, error) => this.#emit("streamError", id, error),
      now: () => this.#clock.now(),
      minRttMs: () => this.#heartbeat.minRttMs,
      released: (stream, reason) => {
        this.#opens.released(stream, reason);
        this.#emit("streamEnded", this.#streams.size);
      },
    });
    this.#opens = new PendingOpens(this.#streams, this.#out, this.#counters, this.config.openTimeoutMs);
    this.#timer = new DeadlineTimer(this.#clock, () => this.#onTimer());
    this.#transport.setHandlers({
      message: (data) => this.#onMessage(data),
      drain: () => this.#out.drained(),
      close: (info) => this.#onTransportClose(info),
    });
    this.#onTimer();
  }

  get activeStreams(): number {
    return this.#streams.size;
  }
  /** We sent GO_AWAY: new OPENs are answered BUSY. */
  get draining(): boolean {
    return this.#goAwaySent;
  }
  /** The peer sent GO_AWAY. */
  get peerDraining(): boolean {
    return this.#goAwayReceived;
  }
  get isClosed(): boolean {
    return this.#closeInfo !== undefined;
  }

  stats(): SessionStats {
    return this.#counters.snapshot({
      streamsActive: this.#streams.size,
      rttMs: this.#heartbeat.rttMs,
      schedulerTurns: this.#out.scheduler.turns,
      ...this.#streams.heldBytes(),
    });
  }

  /** Gateway: opens a stream; resolves on OPEN_RESULT OK, rejects with a typed error otherwise. */
  open(request: OpenRequest): Promise<Stream> {
    if (this.role !== "gateway") return Promise.reject(new E.SessionUsageError("only a gateway opens streams"));
    if (this.#closeInfo) return Promise.reject(new E.TunnelClosedError(this.#closeInfo.reason));
    if (this.#goAwaySent || this.#goAwayReceived) return Promise.reject(new E.TunnelDrainingError());
    if (this.#streams.size >= this.config.maxStreams) {
      return Promise.reject(new E.OpenRejectedError(StreamCode.BUSY, "local stream limit reached"));
    }
    const promise = this.#opens.open(request, this.#clock.now());
    this.#armTimer();
    return promise;
  }

  /** Sends GO_AWAY once (PROTOCOL §5.7). A connector then answers new OPENs BUSY; existing streams go on. */
  goAway(code: GoAwayCode = GoAway.DRAINING, message = ""): void {
    if (this.#closeInfo || this.#goAwaySent) return;
    this.#goAwaySent = true;
    this.#out.control(enc.encodeGoAway(code, message));
  }

  /** Connector (PROTOCOL §5.8). Throws FrameEncodeError for a token over 8 KiB. */
  sendTokenUpdate = (token: Secret): void => this.#sendAs("connector", () => enc.encodeTokenUpdate(token));
  /** Connector (PROTOCOL §5.9). Throws FrameEncodeError for a report over 64 KiB. */
  sendHealthReport = (report: HealthReport): void => this.#sendAs("connector", () => enc.encodeHealthReport(report));
  /** Gateway (PROTOCOL §5.10). */
  sendConfigChanged = (version: string): void => this.#sendAs("gateway", () => enc.encodeConfigChanged(version));

  /** Closes the tunnel now: queued control frames are flushed, streams end with reason "tunnel". */
  close(code: number = CloseCode.NORMAL, reason = "session closed"): void {
    this.#terminate({ code, reason, initiator: "local" }, true);
  }

  // ---- receiving ----

  #onMessage(data: Uint8Array): void {
    if (this.#closeInfo) return;
    this.#heartbeat.received(this.#clock.now());
    this.#counters.messagesIn++;
    try {
      decodeMessage(data, this.#onFrame);
    } catch (err) {
      this.#fail(
        err instanceof E.ProtocolError ? err : new E.SessionInternalError("frame handling failed", { cause: err }),
      );
    }
  }

  #onFrame = (frame: Frame): boolean => {
    if (this.#closeInfo) return false;
    this.#counters.framesIn++;
    if (ROLE_ONLY_FRAMES[this.role === "connector" ? "gateway" : "connector"].has(frame.type)) {
      // e.g. OPEN sent to a gateway: the spec names one sender per type (PROTOCOL §5.2), so this is a broken peer.
      throw new E.ProtocolError(
        E.ProtocolErrorCode.UNEXPECTED_FRAME,
        `a ${this.role} does not accept frame type ${frame.type}`,
      );
    }
    switch (frame.type) {
      case FrameType.DATA:
        this.#counters.bytesIn += frame.payload.length;
        this.#streams.forFrame(frame.streamId, frame.type)?.handleData(frame.payload, frame.creditExhausted);
        break;
      case FrameType.WINDOW_UPDATE:
        this.#streams.forFrame(frame.streamId, frame.type)?.handleWindowUpdate(frame.increment);
        break;
      case FrameType.FIN:
        this.#streams.forFrame(frame.streamId, frame.type)?.handleFin();
        break;
      case FrameType.RESET:
        this.#onReset(frame.streamId, frame.code, frame.message);
        break;
      case FrameType.OPEN:
        this.#onOpen(frame);
        break;
      case FrameType.OPEN_RESULT:
        this.#onOpenResult(frame);
        break;
      case FrameType.PING:
        this.#out.control(enc.encodePong(frame.opaque));
        break;
      case FrameType.PONG: {
        // A round trip during which stream data moved either way also timed the queues that data sat
        // in: shown in status, but not a sample of the path's own delay (heartbeat.ts `minRttMs`).
        const c = this.#counters;
        const quiet = c.bytesIn === this.#pingMark.bytesIn && c.bytesOut === this.#pingMark.bytesOut;
        const rtt = this.#heartbeat.pong(frame.opaque, this.#clock.now(), quiet);
        if (rtt !== undefined) this.#emit("rtt", rtt);
        break;
      }
      case FrameType.GO_AWAY:
        this.#goAwayReceived = true;
        this.#emit("goAway", frame.code, frame.message);
        break;
      case FrameType.TOKEN_UPDATE:
        this.#emit("tokenUpdate", frame.token);
        break;
      case FrameType.HEALTH_REPORT:
        this.#emit("healthReport", frame.report);
        break;
      case FrameType.CONFIG_CHANGED:
        this.#emit("configChanged", frame.catalogVersion);
        break;
    }
    return this.#closeInfo === undefined;
  };

  #onReset(streamId: number, code: StreamCode, message: string): void {
    this.#counters.resetsReceived++;
    this.#streams.get(streamId)?.handleReset(code, message); // an unknown id is not answered: never a RESET for a RESET
  }

  #onOpen(frame: OpenFrame): void {
    if (frame.streamId <= this.#lastStreamId) {
      throw new E.ProtocolError(
        E.ProtocolErrorCode.STREAM_ID_NOT_INCREASING,
        `OPEN for stream ${frame.streamId} after ${this.#lastStreamId}`,
      );
    }
    this.#lastStreamId = frame.streamId;
    if (frame.malformed !== undefined) return this.#streams.refuseMalformedOpen(frame.streamId, frame.malformed);
    const refuse = (message: string) => {
      this.#counters.openFailed(StreamCode.BUSY);
      this.#out.control(enc.encodeOpenResult(frame.streamId, StreamCode.BUSY, message));
    };
    if (this.#goAwaySent) return refuse("connector is draining");
    // A gateway that drained this tunnel opens nothing more on it; one that does anyway would keep a
    // retired tunnel (and its fds) busy for as long as it likes.
    if (this.#goAwayReceived) return refuse("the gateway drained this tunnel (GO_AWAY)");
    if (this.#streams.size >= this.config.maxStreams) return refuse("stream limit reached");
    const request: OpenRequest = { app: frame.app, host: frame.host, port: frame.port };
    const stream = this.#streams.create(frame.streamId, request, true);
    const handler = this.#options.onOpen;
    try {
      if (!handler) throw new E.SessionUsageError("no open handler");
      handler(request, stream);
    } catch (err) {
      this.#streams.handlerFailed(stream, err);
      if (stream.state === "opening") stream.reject(StreamCode.INTERNAL, "open handler failed");
    }
  }

  #onOpenResult(frame: OpenResultFrame): void {
    const stream = this.#streams.forFrame(frame.streamId, frame.type);
    if (stream) this.#opens.onOpenResult(stream, frame);
  }

  #sendAs(role: SessionRole, encode: () => Uint8Array): void {
    if (this.role !== role) throw new E.SessionUsageError(`only a ${role} sends this frame`);
    if (!this.#closeInfo) this.#out.control(encode());
  }

  #armTimer(): void {
    if (!this.#closeInfo) this.#timer.armAt(Math.min(this.#heartbeat.nextDueAt(), this.#opens.nextDeadline()));
  }

  /** The one timer of the session: death, PINGs and open deadlines. */
  #onTimer(): void {
    if (this.#closeInfo) return;
    const now = this.#clock.now();
    if (this.#heartbeat.isDead(now)) {
      return this.#fail(new E.HeartbeatTimeoutError(this.#heartbeat.silentFor(now)), CloseCode.GOING_AWAY);
    }
    const ping = this.#heartbeat.pingDue(now);
    if (ping) {
      this.#pingMark = { bytesIn: this.#counters.bytesIn, bytesOut: this.#counters.bytesOut };
      this.#out.control(enc.encodePing(ping));
    }
    this.#opens.expire(now);
    this.#armTimer();
  }

  #emit<K extends keyof SessionEvents>(name: K, ...args: Parameters<NonNullable<SessionEvents[K]>>): void {
    const listener = this.#events[name] as ((...a: typeof args) => void) | undefined;
    if (!listener) return;
    try {
      listener.apply(this.#events, args);
    } catch (err) {
      this.#options.log?.warn(`session listener "${name}" threw`, err);
    }
  }

  #fail(error: ConnectorError, code: number = CloseCode.INTERNAL_ERROR): void {
    const closeCode = error instanceof E.ProtocolError ? error.closeCode : code;
    this.#terminate({ code: closeCode, reason: error.code, initiator: "local", error }, true);
  }

  #onTransportClose(info: TransportClose): void {
    const error = new E.TunnelClosedError(`transport closed (${info.code}${info.reason ? ` ${info.reason}` : ""})`);
    this.#terminate(
      {
        code: info.code,
        reason: info.reason,
        initiator: "remote",
        error,
        ...(info.error ? { transportError: info.error } : {}),
      },
      false,
    );
  }

  #terminate(info: SessionClosed, closeTransport: boolean): void {
    if (this.#closeInfo) return;
    this.#closeInfo = info;
    this.#timer.cancel();
    const error = info.error ?? new E.TunnelClosedError(info.reason);
    this.#opens.rejectAll(error);
    this.#streams.abortAll(error);
    if (closeTransport) {
      try {
        this.#out.finalFlush(); // control frames queued before the close (GO_AWAY, RESETs)
        this.#transport.close(info.code, info.reason);
      } catch (err) {
        this.#options.log?.warn("closing the tunnel transport failed", err);
      }
    }
    this.#emit("closed", info);
    this.#resolveClosed(info);
  }
}
