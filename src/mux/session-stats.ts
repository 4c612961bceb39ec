/**
 * Counters of one session for `connector status` and metrics (PROTOCOL §4). Plain numbers updated on the hot
 * path; `snapshot` copies them out so readers never hold live state.
 */
import { type StreamCode, type StreamCodeName, streamCodeName } from "./const.ts";

export interface SessionStats {
  readonly streamsCreated: number;
  readonly streamsClosed: number;
  readonly streamsActive: number;
  /** DATA payload bytes received / sent. */
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly framesIn: number;
  readonly framesOut: number;
  readonly messagesIn: number;
  readonly messagesOut: number;
  readonly resetsSent: number;
  readonly resetsReceived: number;
  /** Opens that failed, by PROTOCOL §5.3 code (refused by us on a connector, refusals received on a gateway). */
  readonly openFailures: Readonly<Partial<Record<StreamCodeName, number>>>;
  /** Latest PING→PONG round trip, undefined before the first PONG. */
  readonly rttMs: number | undefined;
  /** Round-robin passes of the send scheduler. */
  readonly schedulerTurns: number;
  /** Bytes queued in streams waiting to be framed (bounded by the peers' credit). */
  readonly queuedBytes: number;
  /** Bytes delivered to consumers and not yet reported consumed (bounded by our windows). */
  readonly unconsumedBytes: number;
}

export class SessionCounters {
  streamsCreated = 0;
  streamsClosed = 0;
  bytesIn = 0;
  bytesOut = 0;
  framesIn = 0;
  framesOut = 0;
  messagesIn = 0;
  messagesOut = 0;
  resetsSent = 0;
  resetsReceived = 0;
  readonly openFailures: Partial<Record<StreamCodeName, number>> = {};

  openFailed(code: StreamCode): void {
    const name = streamCodeName(code);
    this.openFailures[name] = (this.openFailures[name] ?? 0) + 1;
  }

  snapshot(live: {
    streamsActive: number;
    rttMs: number | undefined;
    schedulerTurns: number;
    queuedBytes: number;
    unconsumedBytes: number;
  }): SessionStats {
    return {
      streamsCreated: this.streamsCreated,
      streamsClosed: this.streamsClosed,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      framesIn: this.framesIn,
      framesOut: this.framesOut,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      resetsSent: this.resetsSent,
      resetsReceived: this.resetsReceived,
      openFailures: { ...this.openFailures },
      ...live,
    };
  }
}
