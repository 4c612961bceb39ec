/**
 * The benchmark's target app, run as its own process (`bun test/bench/target.ts`) so neither the load
 * generator nor a relay shares its CPU: listens on 127.0.0.1:0, prints {"port":N} once listening, serves
 * the modes of wire.ts, runs until SIGTERM. Writes honour Bun's no-buffering write (keep the rest, resume
 * on drain) and every buffer is bounded: an echo that falls behind pauses reading.
 */
import type { Socket } from "bun";
import { SEND_CHUNK_BYTES, SINK_REPORT_MS } from "./config.ts";
import { HTTP_HEADER_LIMIT, Mode, encodeReport, httpAnswer } from "./wire.ts";

/** An echo backlog beyond this pauses reading until it drains (latency runs keep one 1 KiB request in flight). */
const ECHO_BACKLOG_LIMIT = 1 << 20;
/** Unsent sink reports beyond this are dropped (the reader takes the latest cumulative count anyway). */
const REPORT_BACKLOG_LIMIT = 64 * 1024;
/** Writes per turn of the source pump before yielding, so one connection cannot starve the others. */
const PUMP_WRITES_PER_TURN = 64;

interface Conn {
  mode: number;
  received: number;
  firstAt: number;
  pending: Uint8Array;
  timer: ReturnType<typeof setInterval> | undefined;
  closed: boolean;
  /** Mode.http: the request header so far (bounded), then whether the answer is out and the close due. */
  header: string;
  endWhenFlushed: boolean;
}

const chunk = new Uint8Array(SEND_CHUNK_BYTES).fill(0x5a);
const one = new Uint8Array([0x21]);
const answer = httpAnswer();

function flush(socket: Socket<Conn>): void {
  const c = socket.data;
  if (c.pending.length === 0) return;
  const n = socket.write(c.pending);
  c.pending = c.pending.subarray(Math.max(0, n));
  if (c.endWhenFlushed && c.pending.length === 0) socket.end();
  if (c.mode === Mode.echo && c.pending.length < ECHO_BACKLOG_LIMIT) socket.resume();
}

function queue(socket: Socket<Conn>, bytes: Uint8Array): void {
  const c = socket.data;
  if (c.pending.length === 0) {
    const n = socket.write(bytes);
    if (n >= bytes.length) return;
    c.pending = bytes.slice(Math.max(0, n));
    return;
  }
  const merged = new Uint8Array(c.pending.length + bytes.length);
  merged.set(c.pending);
  merged.set(bytes, c.pending.length);
  c.pending = merged;
  flush(socket);
  if (c.mode === Mode.echo && c.pending.length >= ECHO_BACKLOG_LIMIT) socket.pause();
}

function pump(socket: Socket<Conn>): void {
  for (let i = 0; i < PUMP_WRITES_PER_TURN; i++) {
    if (socket.data.closed) return;
    if (socket.write(chunk) < chunk.length) return; // the rest of the stream is filler: drain resumes the pump
  }
  setImmediate(() => pump(socket));
}

function startMode(socket: Socket<Conn>, mode: number, rest: Uint8Array): void {
  const c = socket.data;
  c.mode = mode;
  switch (mode) {
    case Mode.sink:
      c.timer = setInterval(() => {
        // a client that stops reading reports must not grow our backlog: drop reports beyond the bound
        if (c.firstAt > 0 && c.pending.length < REPORT_BACKLOG_LIMIT)
          queue(socket, encodeReport(c.received, (performance.now() - c.firstAt) * 1000));
      }, SINK_REPORT_MS);
      onBytes(socket, rest);
      return;
    case Mode.source:
      pump(socket);
      return;
    case Mode.echo:
      onBytes(socket, rest);
      return;
    case Mode.ping:
    case Mode.idle:
      queue(socket, one);
      return;
    case Mode.http:
      c.header = "G";
      onBytes(socket, rest);
      return;
    default:
      socket.end();
  }
}

function onBytes(socket: Socket<Conn>, bytes: Uint8Array): void {
  if (bytes.length === 0) return;
  const c = socket.data;
  if (c.mode === Mode.sink) {
    if (c.firstAt === 0) c.firstAt = performance.now();
    c.received += bytes.length;
  } else if (c.mode === Mode.echo) {
    queue(socket, bytes.slice());
  } else if (c.mode === Mode.http && !c.endWhenFlushed) {
    c.header += new TextDecoder().decode(bytes);
    if (c.header.includes("\r\n\r\n")) {
      // the server closes first, as nginx does for an HTTP/1.0 request without keep-alive
      c.endWhenFlushed = true;
      queue(socket, answer);
      if (c.pending.length === 0) socket.end();
    } else if (c.header.length > HTTP_HEADER_LIMIT) socket.end();
  }
}

const server = Bun.listen<Conn>({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    open(socket) {
      socket.data = {
        mode: 0,
        received: 0,
        firstAt: 0,
        pending: new Uint8Array(0),
        timer: undefined,
        closed: false,
        header: "",
        endWhenFlushed: false,
      };
    },
    data(socket, bytes) {
      if (socket.data.mode === 0) startMode(socket, bytes[0]!, bytes.subarray(1));
      else onBytes(socket, bytes);
    },
    drain(socket) {
      flush(socket);
      if (socket.data.mode === Mode.source && socket.data.pending.length === 0) pump(socket);
    },
    close(socket) {
      socket.data.closed = true;
      clearInterval(socket.data.timer);
    },
    error(socket) {
      socket.data.closed = true;
      clearInterval(socket.data.timer);
    },
  },
});

process.on("SIGTERM", () => {
  server.stop(true);
  process.exit(0);
});
console.log(JSON.stringify({ port: server.port }));
