/**
 * Response bodies of the release server, over node:http because the misbehaving ones need exact control
 * of the framing (Bun.serve sends any streamed body chunked and drops a declared Content-Length):
 * a file streamed with its Content-Length, and the four ways a binary can go wrong on the wire.
 */
import { randomFillSync } from "node:crypto";
import { closeSync, createReadStream, fstatSync, openSync, readSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Transform } from "node:stream";
import type { BodyMode } from "./misbehaviour.ts";

/** endless-body writes this much per write, random each time. */
const ENDLESS_CHUNK_BYTES = 64 * 1024;
/** slow-body sends SLOW_CHUNK_BYTES every SLOW_INTERVAL_MS: about 1 KiB/s. */
const SLOW_CHUNK_BYTES = 256;
const SLOW_INTERVAL_MS = 250;

const baseHeaders = (contentType: string) => ({ "content-type": contentType, "cache-control": "no-store" });

/** Opens a regular file; undefined when it is missing or anything else. */
export function openRegular(path: string): { fd: number; size: number } | undefined {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return undefined;
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    return undefined;
  }
  return { fd, size: st.size };
}

/** A byte string as a complete response. */
export function sendBytes(
  req: IncomingMessage,
  res: ServerResponse,
  bytes: Uint8Array | string,
  contentType: string,
): void {
  const body = typeof bytes === "string" ? Buffer.from(bytes) : bytes;
  res.writeHead(200, { ...baseHeaders(contentType), "content-length": body.byteLength });
  res.end(req.method === "HEAD" ? undefined : body);
}

/** XORs one byte (at `offset` of the whole body) with 0xff as the stream goes by. */
function flipByteAt(offset: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      const out = Buffer.from(chunk);
      if (offset >= seen && offset < seen + out.length) out[offset - seen] = out[offset - seen]! ^ 0xff;
      seen += out.length;
      done(null, out);
    },
  });
}

/** Streams an open file: as it is, or as `mode` says. Closes `file.fd` in every case. */
export function sendFile(
  req: IncomingMessage,
  res: ServerResponse,
  file: { fd: number; size: number },
  contentType: string,
  mode?: BodyMode,
): void {
  if (mode === "endless-body") {
    closeSync(file.fd);
    return sendEndless(req, res, contentType);
  }
  // Every other mode declares the true size, as the manifest does.
  res.writeHead(200, { ...baseHeaders(contentType), "content-length": file.size });
  if (req.method === "HEAD") {
    closeSync(file.fd);
    res.end();
    return;
  }
  if (mode === "slow-body") return sendSlow(res, file);
  if (mode === "truncated-body") {
    const half = Math.floor(file.size / 2);
    if (half === 0) {
      closeSync(file.fd);
      res.destroy();
      return;
    }
    const stream = createReadStream("", { fd: file.fd, start: 0, end: half - 1 });
    stream.on("end", () => res.destroy()); // half the bytes, then the connection closes
    stream.pipe(res, { end: false });
    res.on("close", () => stream.destroy());
    return;
  }
  const stream = createReadStream("", { fd: file.fd });
  res.on("close", () => stream.destroy());
  if (mode === "wrong-hash") stream.pipe(flipByteAt(Math.floor(file.size / 2))).pipe(res);
  else stream.pipe(res);
}

/** Random bytes for as long as the client reads, no Content-Length (chunked). */
function sendEndless(req: IncomingMessage, res: ServerResponse, contentType: string): void {
  res.writeHead(200, baseHeaders(contentType));
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  let open = true;
  res.on("close", () => (open = false));
  const pump = () => {
    while (open) {
      const chunk = randomFillSync(Buffer.allocUnsafe(ENDLESS_CHUNK_BYTES));
      if (!res.write(chunk)) {
        res.once("drain", pump);
        return;
      }
    }
  };
  pump();
}

/** The file at about 1 KiB/s, until it ends or the client goes away. */
function sendSlow(res: ServerResponse, file: { fd: number; size: number }): void {
  let offset = 0;
  let closed = false;
  const finish = () => {
    if (closed) return;
    closed = true;
    clearInterval(timer);
    closeSync(file.fd);
  };
  const timer = setInterval(() => {
    const chunk = Buffer.alloc(Math.min(SLOW_CHUNK_BYTES, file.size - offset));
    const n = chunk.length > 0 ? readSync(file.fd, chunk, 0, chunk.length, offset) : 0;
    offset += n;
    if (n > 0) res.write(chunk.subarray(0, n));
    if (offset >= file.size || n === 0) {
      finish();
      res.end();
    }
  }, SLOW_INTERVAL_MS);
  res.on("close", finish);
}
