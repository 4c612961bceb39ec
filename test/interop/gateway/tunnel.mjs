// @ts-check
/**
 * One accepted tunnel of the interop gateway: reads the connector's messages with this gateway's own
 * codec, checks them against docs/PROTOCOL.md §4–§5 as a strict gateway would (recording every
 * disagreement in `violations` instead of hiding it), answers PINGs, and lets a test send anything,
 * well-formed or not. Every frame in and out goes to `log`, printed when a scenario fails.
 */
import { randomBytes } from "node:crypto";
import {
  CODE,
  describe,
  decodeMessage,
  encode,
  FrameError,
  gatewayAccepts,
  MAX_WINDOW_SUM,
  T,
  TYPE_NAMES,
} from "./codec.mjs";
import { Stream } from "./stream.mjs";
import { tokenProblem } from "./token.mjs";
import { Changes, DEADLINE_MS, until } from "./wait.mjs";

const MAX_LOG = 3000;

export class Tunnel {
  /**
   * @param {import("ws").WebSocket} ws
   * @param {import("./server.mjs").Dial} dial
   * @param {{ seq: number, tokenKeys: { publicKeyPem: string, ttlSeconds: number } }} o
   */
  constructor(ws, dial, o) {
    this.ws = ws;
    this.dial = dial;
    this.seq = o.seq;
    this.connectorId = dial.connectorId;
    this.name = dial.name;
    this.tokenKeys = o.tokenKeys;
    this.changes = new Changes();
    this.started = Date.now();
    /** @type {string[]} */
    this.log = [];
    /** @type {import("./codec.mjs").Frame[]} every frame the connector sent, in order */
    this.frames = [];
    /** @type {string[]} the connector broke PROTOCOL.md (as this gateway reads it) */
    this.violations = [];
    /** @type {Map<number, Stream>} */
    this.streams = new Map();
    this.lastStreamId = 0;
    /** Answer the connector's PINGs (§5.6); a test turns it off to play a dead gateway. */
    this.autoPong = true;
    /** @type {Map<string, number>} our PINGs awaiting a PONG: opaque (hex) → their number */
    this.pingsOut = new Map();
    this.pingsSent = 0;
    /** Our PINGs up to this number are answered: the connector has processed everything we sent before them. */
    this.pongedUpTo = 0;
    /** @type {{ code: number, reason: string, initiator: "gateway" | "connector" | "none" } | undefined} */
    this.closeInfo = undefined;
    /** @type {"gateway" | undefined} */
    this.closeInitiator = undefined;
    /** RFC 6455 pongs the connector sent (payload hex) */
    /** @type {string[]} */
    this.wsPongs = [];
    this.messages = 0;
    this.largestMessage = 0;
    ws.on("message", (data, isBinary) => this.#onMessage(/** @type {Buffer} */ (data), isBinary));
    ws.on("pong", (data) => (this.wsPongs.push(data.toString("hex")), this.note(`ws pong ${data.toString("hex")}`)));
    ws.on("ping", (data) => this.note(`ws ping ${data.toString("hex")}`));
    ws.on("error", (err) => this.violation(`WebSocket: ${err.message}`));
    ws.on("close", (code, reason) => {
      const initiator = this.closeInitiator ?? "connector";
      this.closeInfo = { code, reason: reason.toString("utf8"), initiator };
      this.note(`closed ${code} "${this.closeInfo.reason}" (initiated by ${initiator})`);
    });
  }

  /** @param {string} text */
  note(text) {
    if (this.log.length < MAX_LOG) this.log.push(`+${Date.now() - this.started}ms ${text}`);
    else if (this.log.length === MAX_LOG) this.log.push("… (log truncated)");
    this.changes.changed();
  }

  /** @param {string} text */
  violation(text) {
    this.violations.push(text);
    this.note(`VIOLATION ${text}`);
  }

  /** Sends frames (Buffers) as one binary message. @param {Buffer | Buffer[]} frames */
  send(frames) {
    const list = Array.isArray(frames) ? frames : [frames];
    for (const f of list) this.note(`out ${outLine(f)}`);
    this.ws.send(Buffer.concat(list), { binary: true });
  }

  /** Sends `parts` as the fragments of one binary message; `between(i)` runs after fragment i. */
  sendFragments(/** @type {Buffer[]} */ parts, /** @type {(i: number) => void} */ between = () => {}) {
    parts.forEach((part, i) => {
      const fin = i === parts.length - 1;
      this.note(`out fragment ${i + 1}/${parts.length} (${part.length} B)`);
      this.ws.send(part, { binary: true, fin });
      if (!fin) between(i);
    });
  }

  /** Writes raw bytes (e.g. a malformed WebSocket frame) straight to the socket. */
  sendRaw(/** @type {Buffer} */ bytes, /** @type {string} */ what) {
    this.note(`out raw ${what}: ${bytes.subarray(0, 24).toString("hex")}${bytes.length > 24 ? "…" : ""}`);
    // @ts-expect-error: ws keeps the socket in _socket; writing after ws's own frames keeps their order
    this.ws._socket.write(bytes);
  }

  /** Sends a tunnel PING (§5.6) and resolves with the matching PONG frame. */
  async ping(timeoutMs = DEADLINE_MS) {
    const opaque = randomBytes(8);
    const since = this.frames.length;
    this.send(this.pingFrame(opaque));
    return this.waitFrame((f) => f.type === T.PONG && f.opaque?.equals(opaque), "PONG to our PING", {
      since,
      timeoutMs,
    });
  }

  /** A PING frame whose PONG we will recognise (for a test that batches it with other frames). @param {Buffer} opaque */
  pingFrame(opaque) {
    this.pingsOut.set(opaque.toString("hex"), ++this.pingsSent);
    return encode.ping(opaque);
  }

  /** Opens a stream (§5.2 OPEN) with the next id, or `id` to test the id rules. */
  open(/** @type {string} */ app, /** @type {string} */ host, /** @type {number} */ port, o = {}) {
    const {
      id = this.lastStreamId + 1,
      autoCredit = true,
      extraFrames = [],
    } = /** @type {{ id?: number, autoCredit?: boolean, extraFrames?: Buffer[] }} */ (o);
    this.lastStreamId = Math.max(this.lastStreamId, id);
    const stream = new Stream(this, id, { app, host, port, autoCredit });
    this.streams.set(id, stream);
    this.send([encode.open(id, app, host, port), ...extraFrames]);
    return stream;
  }

  /** Resolves with the first frame (from index `since`) that matches. */
  waitFrame(
    /** @type {(f: import("./codec.mjs").Frame) => boolean | undefined} */ match,
    /** @type {string} */ what,
    { since = 0, timeoutMs = DEADLINE_MS } = {},
  ) {
    return until(
      this.changes,
      `${what} on tunnel ${this.seq}`,
      () => {
        const found = this.frames.slice(since).find(match);
        if (found) return found;
        if (this.closeInfo) throw new Error(`tunnel ${this.seq} closed while waiting for ${what}`);
        return undefined;
      },
      timeoutMs,
    );
  }

  /** Resolves with `{ code, reason, initiator }` once the WebSocket is closed. */
  closed(timeoutMs = DEADLINE_MS) {
    return until(this.changes, `close of tunnel ${this.seq}`, () => this.closeInfo, timeoutMs);
  }

  /** Starts the close handshake from the gateway's side. */
  close(code = 1000, reason = "") {
    this.closeInitiator = "gateway";
    this.note(`out close ${code} "${reason}"`);
    this.ws.close(code, reason);
  }

  /** @param {Buffer} data @param {boolean} isBinary */
  #onMessage(data, isBinary) {
    this.messages++;
    this.largestMessage = Math.max(this.largestMessage, data.length);
    if (!isBinary) {
      this.violation(`a text message (${data.length} B); §4 allows binary only`);
      return;
    }
    let frames;
    try {
      frames = decodeMessage(data, gatewayAccepts);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this.violation(`undecodable message (${data.length} B): ${err.message}`);
      this.close(1002, err.reason);
      return;
    }
    const at = Date.now();
    for (const f of frames) {
      f.at = at;
      this.frames.push(f);
      this.note(`in  ${describe(f)}`);
      this.#check(f);
    }
    this.changes.changed();
  }

  /** What a strict gateway checks of each connector frame (§5.4, §5.5, §5.6, §5.8). @param {import("./codec.mjs").Frame} f */
  #check(f) {
    if (f.type === T.PING) {
      if (this.autoPong) this.send(encode.pong(/** @type {Buffer} */ (f.opaque)));
      return;
    }
    if (f.type === T.PONG) {
      const key = f.opaque?.toString("hex") ?? "";
      const n = this.pingsOut.get(key);
      if (n === undefined) this.note(`(a PONG that answers no PING of ours: ${key})`);
      else this.pongedUpTo = Math.max(this.pongedUpTo, n);
      this.pingsOut.delete(key);
      return;
    }
    if (f.type === T.TOKEN_UPDATE) {
      const problem = tokenProblem(f.token, this.dial.peer, this.tokenKeys);
      if (problem) {
        this.violation(`TOKEN_UPDATE that does not verify: ${problem}`);
        this.close(1008, "TOKEN_INVALID");
      }
      return;
    }
    if (f.streamId === 0) return; // GO_AWAY, HEALTH_REPORT: kept in `frames` for the tests
    const s = this.streams.get(f.streamId);
    if (!s) {
      if (f.type !== T.RESET) this.violation(`${f.name} for stream ${f.streamId}, which the gateway never opened`);
      return;
    }
    this.#checkStream(s, f);
  }

  /** @param {Stream} s @param {import("./codec.mjs").Frame} f */
  #checkStream(s, f) {
    const closedBefore = s.state === "closed";
    switch (f.type) {
      case T.OPEN_RESULT:
        if (s.result || closedBefore) this.violation(`OPEN_RESULT for stream ${s.id}, which is not opening`);
        s.result = f;
        s.state = f.code === CODE.OK && !closedBefore ? "open" : "closed";
        return;
      case T.DATA:
        if (!s.result || s.result.code !== CODE.OK) this.violation(`DATA on stream ${s.id} before OPEN_RESULT OK`);
        if (s.finReceived) this.violation(`DATA on stream ${s.id} after the connector's FIN`);
        if (s.resetReceived) this.violation(`DATA on stream ${s.id} after the connector's RESET`);
        if (s.resetSent) return; // in flight when we reset it
        if (f.length > s.recvCredit)
          this.violation(`DATA of ${f.length} B on stream ${s.id} beyond the window (credit ${s.recvCredit})`);
        // §5.5: the frame that uses the last credit is flagged. Credit we granted may still be on its way
        // to the connector (it is sure to have arrived only once a later PING is answered), so a flag
        // with credit left is wrong only when even our unconfirmed grants cannot explain it.
        if (f.length === s.recvCredit && f.length > 0 && !f.creditExhausted)
          this.violation(`DATA on stream ${s.id} uses the last credit without CREDIT_EXHAUSTED (§5.5)`);
        if (f.creditExhausted && s.recvCredit - f.length > s.unconfirmedGrants())
          this.violation(
            `DATA on stream ${s.id} flags CREDIT_EXHAUSTED with ${s.recvCredit - f.length} B of credit left, ` +
              `${s.unconfirmedGrants()} B of it perhaps not yet received (§5.5)`,
          );
        s.onData(f);
        return;
      case T.WINDOW_UPDATE: {
        const increment = f.increment ?? 0;
        if (increment === 0) this.violation(`WINDOW_UPDATE of 0 on stream ${s.id}`);
        if (s.sendCredit + increment > MAX_WINDOW_SUM) this.violation(`WINDOW_UPDATE past 2^31-1 on stream ${s.id}`);
        s.sendCredit += increment;
        return;
      }
      case T.FIN:
        if (s.finReceived) this.violation(`a second FIN on stream ${s.id}`);
        if (!s.result || s.result.code !== CODE.OK) this.violation(`FIN on stream ${s.id} before OPEN_RESULT OK`);
        s.onFin();
        return;
      case T.RESET:
        s.resetReceived = f;
        s.state = "closed";
        return;
      default:
        this.violation(`unexpected ${TYPE_NAMES[f.type]} on stream ${s.id}`);
    }
  }
}

/** One line for an outgoing frame buffer (best effort: tests also send malformed bytes). @param {Buffer} b */
function outLine(b) {
  try {
    return decodeMessage(b).map(describe).join(" | ");
  } catch {
    return `${b.length} B ${b.subarray(0, 24).toString("hex")}${b.length > 24 ? "…" : ""} (malformed on purpose)`;
  }
}
