// @ts-check
/**
 * Raw RFC 6455 frames, for what the `ws` package will not send: reserved bits, unknown opcodes, masked
 * server frames, fragmented or oversized control frames, non-minimal lengths, broken continuations
 * (docs/PROTOCOL.md §4 lists them as 1002). Tests write these straight to the tunnel's socket.
 */

export const OP = Object.freeze({ CONT: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa });

/**
 * @param {{ opcode: number, payload?: Uint8Array, fin?: boolean, rsv?: number, maskKey?: Buffer,
 *   lengthForm?: "minimal" | "16" | "64" }} f  `rsv`: the three RSV bits as 0–7; `lengthForm` forces a
 *   (possibly non-minimal) length encoding.
 */
export function wsFrame(f) {
  const payload = Buffer.from(f.payload ?? Buffer.alloc(0));
  const len = payload.length;
  const form = f.lengthForm ?? "minimal";
  const first = ((f.fin ?? true) ? 0x80 : 0) | ((f.rsv ?? 0) << 4) | f.opcode;
  const mask = f.maskKey ? 0x80 : 0;
  /** @type {Buffer} */
  let head;
  if (form === "64" || (form === "minimal" && len > 0xffff)) {
    head = Buffer.alloc(10);
    head[1] = mask | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  } else if (form === "16" || (form === "minimal" && len > 125)) {
    head = Buffer.alloc(4);
    head[1] = mask | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(2);
    head[1] = mask | len;
  }
  head[0] = first;
  if (!f.maskKey) return Buffer.concat([head, payload]);
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i] = (masked[i] ?? 0) ^ (f.maskKey[i % 4] ?? 0);
  return Buffer.concat([head, f.maskKey, masked]);
}

/** A close frame's payload: code (u16) and reason bytes. @param {number} code @param {Uint8Array | string} [reason] */
export function closePayload(code, reason = "") {
  const r = typeof reason === "string" ? Buffer.from(reason, "utf8") : Buffer.from(reason);
  const out = Buffer.alloc(2 + r.length);
  out.writeUInt16BE(code);
  r.copy(out, 2);
  return out;
}
