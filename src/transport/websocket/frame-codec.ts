/**
 * RFC 6455 frame codec, no I/O. The encoder writes headers into caller-provided buffers so the
 * transport can pack many frames into one write. `FrameDecoder` is incremental: bytes are pushed as
 * they arrive, a frame contained in one chunk is delivered as a view of that chunk (no copy), a frame
 * split over chunks is copied once into a buffer of its final size (with `reuseBuffer`, one buffer reused
 * for every such message). Every violation is a
 * `WebSocketProtocolError` carrying the close code to answer with.
 */
import { peerText } from "../../peer-text.ts";
import { truncateUtf8 } from "../../utf8.ts";
import { MAX_CONTROL_PAYLOAD, MAX_MESSAGE_BYTES } from "./config.ts";
import { CloseCode } from "../close-code.ts";
import { WebSocketProtocolError } from "./errors.ts";
import { maskInPlace } from "./mask.ts";

export const Opcode = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;
export type DataOpcode = typeof Opcode.text | typeof Opcode.binary;
export type ControlOpcode = typeof Opcode.close | typeof Opcode.ping | typeof Opcode.pong;
type AnyOpcode = (typeof Opcode)[keyof typeof Opcode];

/** Bytes of the header of a frame with this payload length. */
export function frameHeaderLength(payloadLength: number, masked: boolean): number {
  const base = payloadLength < 126 ? 2 : payloadLength < 0x10000 ? 4 : 10;
  return masked ? base + 4 : base;
}

/**
 * Writes a frame header at `out[offset]` and returns its length. `maskKey` is the big-endian u32 of
 * the 4 key bytes, or null for an unmasked (server) frame; the caller masks the payload itself.
 */
export function writeFrameHeader(
  out: Uint8Array,
  offset: number,
  opcode: AnyOpcode,
  fin: boolean,
  payloadLength: number,
  maskKey: number | null,
): number {
  const maskBit = maskKey === null ? 0 : 0x80;
  out[offset] = (fin ? 0x80 : 0) | opcode;
  let p = offset + 2;
  if (payloadLength < 126) {
    out[offset + 1] = maskBit | payloadLength;
  } else if (payloadLength < 0x10000) {
    out[offset + 1] = maskBit | 126;
    out[p++] = payloadLength >>> 8;
    out[p++] = payloadLength & 0xff;
  } else {
    out[offset + 1] = maskBit | 127;
    const high = Math.floor(payloadLength / 0x1_0000_0000);
    const low = payloadLength >>> 0;
    out[p++] = high >>> 24;
    out[p++] = (high >>> 16) & 0xff;
    out[p++] = (high >>> 8) & 0xff;
    out[p++] = high & 0xff;
    out[p++] = low >>> 24;
    out[p++] = (low >>> 16) & 0xff;
    out[p++] = (low >>> 8) & 0xff;
    out[p++] = low & 0xff;
  }
  if (maskKey !== null) {
    out[p++] = maskKey >>> 24;
    out[p++] = (maskKey >>> 16) & 0xff;
    out[p++] = (maskKey >>> 8) & 0xff;
    out[p++] = maskKey & 0xff;
  }
  return p - offset;
}

/** One whole frame in a new buffer (control frames, tests). The payload is copied, then masked. */
export function encodeFrame(
  opcode: AnyOpcode,
  payload: Uint8Array,
  options: { maskKey?: number | null; fin?: boolean } = {},
): Uint8Array {
  const maskKey = options.maskKey ?? null;
  const out = new Uint8Array(frameHeaderLength(payload.length, maskKey !== null) + payload.length);
  const h = writeFrameHeader(out, 0, opcode, options.fin ?? true, payload.length, maskKey);
  out.set(payload, h);
  if (maskKey !== null) maskInPlace(out, h, out.length, maskKey);
  return out;
}

/** Close codes a peer may send (RFC 6455 §7.4.1, IANA registry 1012–1014, private 3000–4999). */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Parses a close frame's payload; an empty one means "no status" (1005). */
export function parseClosePayload(payload: Uint8Array): { code: number; reason: string } {
  if (payload.length === 0) return { code: CloseCode.NO_STATUS, reason: "" };
  if (payload.length === 1) {
    throw new WebSocketProtocolError(
      "WS_BAD_CLOSE_PAYLOAD",
      "close frame with a 1-byte payload",
      CloseCode.PROTOCOL_ERROR,
    );
  }
  const code = ((payload[0] ?? 0) << 8) | (payload[1] ?? 0);
  if (!isValidCloseCode(code)) {
    throw new WebSocketProtocolError("WS_BAD_CLOSE_PAYLOAD", `invalid close code ${code}`, CloseCode.PROTOCOL_ERROR);
  }
  try {
    // The peer's reason ends up in logs and status: made printable here, where it enters.
    return { code, reason: peerText(utf8.decode(payload.subarray(2))) };
  } catch {
    throw new WebSocketProtocolError("WS_INVALID_UTF8", "close reason is not valid UTF-8", CloseCode.INVALID_PAYLOAD);
  }
}

/** Close payload: code + UTF-8 reason cut to fit the 125-byte control limit on a character boundary. */
export function encodeClosePayload(code: number, reason = ""): Uint8Array {
  const bytes = truncateUtf8(reason, MAX_CONTROL_PAYLOAD - 2);
  const out = new Uint8Array(2 + bytes.length);
  out[0] = code >>> 8;
  out[1] = code & 0xff;
  out.set(bytes, 2);
  return out;
}

/** Receives what the decoder finds. Views may point into pushed chunks; see `FrameDecoder.push`. */
export interface FrameSink {
  message(opcode: DataOpcode, data: Uint8Array): void;
  control(opcode: ControlOpcode, payload: Uint8Array): void;
}

export interface FrameDecoderOptions {
  /** True on the server: client frames must be masked; false on the client: server frames must not be. */
  expectMasked: boolean;
  /** Largest message payload accepted (after reassembly). */
  maxMessageBytes?: number;
  /**
   * Assemble a single-frame message split over chunks in one buffer reused for the next such
   * message, instead of a fresh one each time (a 256 KiB message spans several TLS reads, so almost
   * every tunnel message is assembled: a fresh buffer each time cost zero-filling, page faults and
   * unmapping, measured at a few % of the receiver's CPU). Such a message is then valid only during
   * the sink call. Fragmented messages still get their own buffers.
   */
  reuseBuffer?: boolean;
}

const fail = (
  code: ConstructorParameters<typeof WebSocketProtocolError>[0],
  msg: string,
  close: number = CloseCode.PROTOCOL_ERROR,
) => new WebSocketProtocolError(code, msg, close);

/** Incremental decoder. State: reading a header (into a 14-byte scratch when split) or a payload. */
export class FrameDecoder {
  readonly #expectMasked: boolean;
  readonly #max: number;
  readonly #scratch = new Uint8Array(14);
  #scratchLen = 0;
  #inPayload = false;
  // Current frame.
  #fin = false;
  #opcode = 0;
  #maskKey = 0;
  #length = 0;
  #have = 0;
  #buffer: Uint8Array | null = null;
  readonly #reuse: boolean;
  /** The reused assembly buffer (grows to the largest split message, at most `maxMessageBytes`). */
  #assembly: Uint8Array | null = null;
  // Message being reassembled from fragments (opcode 0 = none).
  #fragOpcode = 0;
  #fragments: Uint8Array[] = [];
  #fragBytes = 0;
  #failed: WebSocketProtocolError | null = null;

  constructor(options: FrameDecoderOptions) {
    this.#expectMasked = options.expectMasked;
    this.#max = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
    this.#reuse = options.reuseBuffer ?? false;
  }

  /**
   * Decodes `chunk`. Takes ownership of it: payloads are unmasked in place and may be handed to
   * `sink` as views of it. Throws `WebSocketProtocolError`; after that every push throws it again.
   */
  push(chunk: Uint8Array, sink: FrameSink): void {
    if (this.#failed) throw this.#failed;
    try {
      this.#decode(chunk, sink);
    } catch (err) {
      if (err instanceof WebSocketProtocolError) this.#failed = err;
      throw err;
    }
  }

  #decode(chunk: Uint8Array, sink: FrameSink): void {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (!this.#inPayload) {
        pos = this.#readHeader(chunk, pos);
        if (!this.#inPayload) return; // header incomplete, all bytes consumed
        if (this.#length === 0) this.#complete(new Uint8Array(0), sink);
        continue;
      }
      const need = this.#length - this.#have;
      const avail = end - pos;
      if (this.#have === 0 && avail >= need) {
        const data = chunk.subarray(pos, pos + need); // whole payload in this chunk: no copy
        maskInPlace(data, 0, need, this.#maskKey);
        pos += need;
        this.#complete(data, sink);
        continue;
      }
      const take = Math.min(avail, need);
      this.#buffer ??= this.#assemblyBuffer(this.#length);
      this.#buffer.set(chunk.subarray(pos, pos + take), this.#have);
      this.#have += take;
      pos += take;
      if (this.#have === this.#length) {
        const data = this.#buffer;
        maskInPlace(data, 0, data.length, this.#maskKey);
        this.#complete(data, sink);
      }
    }
  }

  /** Where a frame split over chunks is gathered: the reused buffer when the frame is a whole message. */
  #assemblyBuffer(length: number): Uint8Array {
    const wholeMessage = this.#fin && this.#opcode !== Opcode.continuation;
    if (!this.#reuse || !wholeMessage) return new Uint8Array(length);
    if (this.#assembly === null || this.#assembly.length < length) this.#assembly = new Uint8Array(length);
    return this.#assembly.subarray(0, length);
  }

  /** Consumes header bytes from `chunk[pos]`; returns the new position. Sets #inPayload when done. */
  #readHeader(chunk: Uint8Array, pos: number): number {
    let src = chunk;
    let at = pos;
    const avail = chunk.length - pos;
    if (this.#scratchLen > 0 || avail < 2 || avail < headerLengthOf(chunk, pos)) {
      // Split header: gather it in the scratch buffer, at most 14 bytes.
      while (pos < chunk.length) {
        this.#scratch[this.#scratchLen++] = chunk[pos++] ?? 0;
        if (this.#scratchLen >= 2 && this.#scratchLen === headerLengthOf(this.#scratch, 0)) break;
      }
      if (this.#scratchLen < 2 || this.#scratchLen < headerLengthOf(this.#scratch, 0)) return pos;
      src = this.#scratch;
      at = 0;
      this.#scratchLen = 0;
      this.#parseHeader(src, at);
      return pos;
    }
    return pos + this.#parseHeader(src, at);
  }

  /** Parses and validates a complete header at `buf[at]`; returns its length. */
  #parseHeader(buf: Uint8Array, at: number): number {
    const b0 = buf[at] ?? 0;
    const b1 = buf[at + 1] ?? 0;
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    if ((b0 & 0x70) !== 0) throw fail("WS_RSV_SET", "RSV1-3 must be clear (no extension negotiated)");
    const isControl = opcode >= 0x8;
    if (!(opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xa))) throw fail("WS_BAD_OPCODE", `unknown opcode ${opcode}`);
    if (masked !== this.#expectMasked) {
      throw this.#expectMasked
        ? fail("WS_MASK_EXPECTED", "client frames must be masked")
        : fail("WS_MASK_UNEXPECTED", "server frames must not be masked");
    }
    let length = b1 & 0x7f;
    let p = at + 2;
    if (isControl) {
      if (!fin) throw fail("WS_CONTROL_FRAGMENTED", "control frames must not be fragmented");
      if (length > MAX_CONTROL_PAYLOAD) throw fail("WS_CONTROL_TOO_LONG", "control frame payload over 125 bytes");
    } else if (opcode === Opcode.continuation) {
      if (this.#fragOpcode === 0) throw fail("WS_BAD_CONTINUATION", "continuation frame without a message to continue");
    } else if (this.#fragOpcode !== 0) {
      throw fail("WS_BAD_CONTINUATION", "new message started before the previous one finished");
    }
    if (length === 126) {
      length = ((buf[p] ?? 0) << 8) | (buf[p + 1] ?? 0);
      p += 2;
      if (length < 126) throw fail("WS_BAD_LENGTH", "16-bit length used for a length under 126");
    } else if (length === 127) {
      const high =
        (((buf[p] ?? 0) << 24) | ((buf[p + 1] ?? 0) << 16) | ((buf[p + 2] ?? 0) << 8) | (buf[p + 3] ?? 0)) >>> 0;
      const low =
        (((buf[p + 4] ?? 0) << 24) | ((buf[p + 5] ?? 0) << 16) | ((buf[p + 6] ?? 0) << 8) | (buf[p + 7] ?? 0)) >>> 0;
      p += 8;
      if (high >= 0x8000_0000) throw fail("WS_BAD_LENGTH", "64-bit length with the most significant bit set");
      if (high === 0 && low < 0x10000) throw fail("WS_BAD_LENGTH", "64-bit length used for a length under 65536");
      length = high > 0 ? Number.MAX_SAFE_INTEGER : low; // any high bits: far over the limit
    }
    if (!isControl && this.#fragBytes + length > this.#max) {
      throw fail("WS_MESSAGE_TOO_BIG", `message over ${this.#max} bytes`, CloseCode.MESSAGE_TOO_BIG);
    }
    if (masked) {
      this.#maskKey =
        (((buf[p] ?? 0) << 24) | ((buf[p + 1] ?? 0) << 16) | ((buf[p + 2] ?? 0) << 8) | (buf[p + 3] ?? 0)) >>> 0;
      p += 4;
    } else {
      this.#maskKey = 0;
    }
    this.#fin = fin;
    this.#opcode = opcode;
    this.#length = length;
    this.#have = 0;
    this.#buffer = null;
    this.#inPayload = true;
    return p - at;
  }

  #complete(data: Uint8Array, sink: FrameSink): void {
    this.#inPayload = false;
    this.#buffer = null;
    const opcode = this.#opcode;
    if (opcode >= 0x8) {
      sink.control(opcode as ControlOpcode, data);
      return;
    }
    if (this.#fin && opcode !== Opcode.continuation) {
      sink.message(opcode as DataOpcode, data);
      return;
    }
    if (opcode !== Opcode.continuation) this.#fragOpcode = opcode;
    this.#fragments.push(data);
    this.#fragBytes += data.length;
    if (!this.#fin) return;
    const whole = concat(this.#fragments, this.#fragBytes);
    const messageOpcode = this.#fragOpcode as DataOpcode;
    this.#fragOpcode = 0;
    this.#fragments = [];
    this.#fragBytes = 0;
    sink.message(messageOpcode, whole);
  }
}

/** Header length announced by the first two bytes at `buf[at]` (needs at least 2 bytes). */
function headerLengthOf(buf: Uint8Array, at: number): number {
  const b1 = buf[at + 1] ?? 0;
  const len7 = b1 & 0x7f;
  const base = len7 < 126 ? 2 : len7 === 126 ? 4 : 10;
  return (b1 & 0x80) !== 0 ? base + 4 : base;
}

function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1 && parts[0]) return parts[0];
  const out = new Uint8Array(total);
  let p = 0;
  for (const part of parts) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}
