// @ts-check
/**
 * The loopback applications the connector reaches in the interop scenarios, each a catalog app of the
 * reference cloud: `echo` returns what it reads and half-closes after the client does; `source` sends
 * SOURCE_BYTES of a known pattern and closes (for flow control: the connector must not outrun the
 * gateway's window); `resetter` answers its first bytes with a TCP reset; `closed` is a port nobody
 * listens on.
 */
import { createServer } from "node:net";

export const SOURCE_BYTES = 1024 * 1024 + 123;

/** Byte i of what `source` sends. */
export const sourceByte = (/** @type {number} */ i) => (i * 7 + (i >> 8)) & 0xff;

export function sourcePattern(n = SOURCE_BYTES) {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = sourceByte(i);
  return out;
}

/** @param {import("node:net").Server} server */
function listen(server) {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address())));
}

export async function startApps() {
  /** @type {Set<import("node:net").Socket>} */
  const sockets = new Set();
  const track = (/** @type {import("node:net").Socket} */ s) => (
    sockets.add(s), s.on("close", () => sockets.delete(s))
  );

  const echo = createServer({ allowHalfOpen: true }, (s) => {
    track(s);
    s.on("error", () => {});
    s.pipe(s);
  });
  const pattern = sourcePattern();
  const source = createServer((s) => {
    track(s);
    s.on("error", () => {});
    s.end(pattern);
  });
  const resetter = createServer((s) => {
    track(s);
    s.on("error", () => {});
    s.once("data", () => s.resetAndDestroy());
  });
  const spare = createServer();
  const [e, so, r, c] = /** @type {import("node:net").AddressInfo[]} */ (
    await Promise.all([listen(echo), listen(source), listen(resetter), listen(spare)])
  );
  await new Promise((resolve) => spare.close(resolve)); // its port is now one nobody listens on

  const ports = { echo: e.port, source: so.port, resetter: r.port, closed: c.port };
  return {
    ports,
    /** `--app` entries for the cloud. */
    catalog: Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, `127.0.0.1:${port}`])),
    /** Connections the apps hold now. */
    openConnections: () => sockets.size,
    close() {
      for (const s of sockets) s.destroy();
      echo.close();
      source.close();
      resetter.close();
    },
  };
}
