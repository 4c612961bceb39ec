/**
 * The tiny protocol between the load generator and the benchmark's target app: the first byte a client
 * sends picks the mode, so one listening port serves every scenario and every path relays the same bytes.
 * Sink reports are 16 bytes: cumulative bytes received and microseconds since the sink's first byte, both
 * as big-endian u64, so the upload rate is measured where the bytes arrive, not where they were buffered.
 */

export const Mode = {
  /** Discard everything; send a report every SINK_REPORT_MS. Upload throughput. */
  sink: 0x75, // "u"
  /** Write as fast as the connection takes it until the client closes. Download throughput, slow reader. */
  source: 0x64, // "d"
  /** Echo every byte back. Request/response latency. */
  echo: 0x65, // "e"
  /** Send one byte, then wait for the client to close. New streams per second (open, first byte, close). */
  ping: 0x70, // "p"
  /** Send one byte (proof the stream reaches the app), then hold the stream open doing nothing. Idle streams. */
  idle: 0x69, // "i"
  /**
   * An HTTP/1.0 request ("G" of "GET "): answer HTTP_BODY_BYTES after the header's blank line, then close
   * first, as nginx does for ApacheBench — so ApacheBench itself can be a client of every path.
   */
  http: 0x47, // "G"
} as const;
export type ModeByte = (typeof Mode)[keyof typeof Mode];

export const REPORT_BYTES = 16;

/** Body of the HTTP answer: about nginx's default page (615 bytes), the page ApacheBench runs fetch. */
export const HTTP_BODY_BYTES = 612;
/** A request header longer than this is not HTTP from ApacheBench: the connection is closed. */
export const HTTP_HEADER_LIMIT = 8 * 1024;

/** The whole answer to one HTTP request: status line, length, `Connection: close`, body. */
export function httpAnswer(): Uint8Array {
  const head = `HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: ${HTTP_BODY_BYTES}\r\nConnection: close\r\n\r\n`;
  const out = new Uint8Array(head.length + HTTP_BODY_BYTES).fill(0x61);
  out.set(new TextEncoder().encode(head));
  return out;
}

export function encodeReport(bytes: number, micros: number): Uint8Array {
  const out = new Uint8Array(REPORT_BYTES);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(bytes));
  view.setBigUint64(8, BigInt(Math.max(0, Math.round(micros))));
  return out;
}

/** Splits a byte stream into reports; keeps a partial report for the next chunk. */
export class ReportDecoder {
  #pending = new Uint8Array(0);

  push(chunk: Uint8Array): { bytes: number; micros: number }[] {
    const buf = new Uint8Array(this.#pending.length + chunk.length);
    buf.set(this.#pending);
    buf.set(chunk, this.#pending.length);
    const out: { bytes: number; micros: number }[] = [];
    let at = 0;
    const view = new DataView(buf.buffer);
    for (; at + REPORT_BYTES <= buf.length; at += REPORT_BYTES) {
      out.push({ bytes: Number(view.getBigUint64(at)), micros: Number(view.getBigUint64(at + 8)) });
    }
    this.#pending = buf.slice(at);
    return out;
  }
}
