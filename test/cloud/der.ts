/**
 * A minimal DER reader and writer: just enough to take a CSR or certificate apart with the exact bytes
 * of each part (a signature covers bytes, not a re-encoding) and to put a certificate together.
 * Only single-byte tags and definite lengths exist in DER, so nothing else is accepted.
 */

export const Tag = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  SEQUENCE: 0x30,
  SET: 0x31,
  /** [0] constructed, e.g. the attributes of a CertificationRequestInfo. */
  CONTEXT_0: 0xa0,
} as const;

/** One tag-length-value element; `bytes` is the whole element, `content` its value. */
export interface Tlv {
  readonly tag: number;
  readonly bytes: Buffer;
  readonly content: Buffer;
}

export class DerError extends Error {
  override readonly name = "DerError";
}

/** Reads the element starting at `offset` of `buf`. */
function readAt(buf: Buffer, offset: number): Tlv {
  const tag = buf[offset];
  const first = buf[offset + 1];
  if (tag === undefined || first === undefined) throw new DerError("truncated element");
  if ((tag & 0x1f) === 0x1f) throw new DerError("multi-byte tags are not used in these structures");
  let length = first;
  let header = 2;
  if (first & 0x80) {
    const count = first & 0x7f;
    // 0x80 is BER's indefinite length; more than 4 length bytes is beyond any sane structure here.
    if (count === 0 || count > 4) throw new DerError("unsupported length encoding");
    length = 0;
    for (let i = 0; i < count; i++) {
      const b = buf[offset + 2 + i];
      if (b === undefined) throw new DerError("truncated length");
      length = length * 256 + b;
    }
    if (length < 0x80) throw new DerError("non-minimal length (not DER)");
    header += count;
  }
  const end = offset + header + length;
  if (end > buf.length) throw new DerError("element longer than its container");
  return { tag, bytes: buf.subarray(offset, end), content: buf.subarray(offset + header, end) };
}

/** Parses `buf` as exactly one element (trailing bytes are an error). */
export function parseDer(buf: Buffer): Tlv {
  const tlv = readAt(buf, 0);
  if (tlv.bytes.length !== buf.length) throw new DerError("trailing bytes after the element");
  return tlv;
}

/** The elements inside a constructed element, in order. */
export function childrenOf(tlv: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let offset = 0; offset < tlv.content.length; ) {
    const child = readAt(tlv.content, offset);
    out.push(child);
    offset += child.bytes.length;
  }
  return out;
}

/** Like `childrenOf`, checking the tag and the number of children. */
export function expectSequence(tlv: Tlv | undefined, what: string, minChildren: number): Tlv[] {
  if (tlv?.tag !== Tag.SEQUENCE) throw new DerError(`${what} is not a SEQUENCE`);
  const children = childrenOf(tlv);
  if (children.length < minChildren)
    throw new DerError(`${what} has ${children.length} parts, expected ${minChildren}`);
  return children;
}

/** Encodes one element. */
export function encodeTlv(tag: number, content: Uint8Array): Buffer {
  const n = content.length;
  let header: number[];
  if (n < 0x80) header = [tag, n];
  else {
    const lengthBytes: number[] = [];
    for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) lengthBytes.unshift(rest % 256);
    header = [tag, 0x80 | lengthBytes.length, ...lengthBytes];
  }
  return Buffer.concat([Buffer.from(header), content]);
}

export function encodeSequence(parts: readonly Uint8Array[]): Buffer {
  return encodeTlv(Tag.SEQUENCE, Buffer.concat(parts));
}

/** A BIT STRING holding whole bytes (no unused bits), as signatures and keys are. */
export function encodeBitString(bytes: Uint8Array): Buffer {
  return encodeTlv(Tag.BIT_STRING, Buffer.concat([Buffer.from([0]), bytes]));
}

/** The bytes of a BIT STRING that holds whole bytes. */
export function bitStringBytes(tlv: Tlv | undefined, what: string): Buffer {
  if (tlv?.tag !== Tag.BIT_STRING || tlv.content[0] !== 0)
    throw new DerError(`${what} is not a BIT STRING of whole bytes`);
  return tlv.content.subarray(1);
}

/** Dotted-decimal text of an OBJECT IDENTIFIER element. */
export function oidOf(tlv: Tlv | undefined, what: string): string {
  if (tlv?.tag !== Tag.OID || tlv.content.length === 0) throw new DerError(`${what} is not an OBJECT IDENTIFIER`);
  const bytes = tlv.content;
  const arcs: number[] = [];
  let value = 0;
  for (const b of bytes) {
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER) throw new DerError(`${what} has an oversized arc`);
    if ((b & 0x80) === 0) {
      if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else arcs.push(value);
      value = 0;
    }
  }
  if ((bytes[bytes.length - 1] ?? 0) & 0x80) throw new DerError(`${what} ends mid-arc`);
  return arcs.join(".");
}
