/**
 * Bulk load for end-to-end tests, in its own process so the measuring test's event loop stays free:
 * `bun bulk-sender.ts HOST:PORT SECONDS` writes as fast as the connection takes for SECONDS (or until
 * SIGTERM, so a test can stop it once what it measures is done), then prints the bytes sent and exits.
 * Loopback addresses only.
 */
const [address, secondsText] = process.argv.slice(2);
export {};
if (!address || !secondsText) throw new Error("usage: bulk-sender.ts HOST:PORT SECONDS");
const host = address.slice(0, address.lastIndexOf(":"));
if (!host.startsWith("127.") && host !== "::1" && host !== "[::1]") throw new Error("loopback only");
const port = Number(address.slice(address.lastIndexOf(":") + 1));
let until = Date.now() + Number(secondsText) * 1000;
const block = new Uint8Array(256 * 1024);
let sent = 0;
let rest: Uint8Array | undefined;
let current: Bun.Socket<undefined> | undefined;
process.on("SIGTERM", () => {
  until = 0;
  current?.end();
});

function pump(socket: Bun.Socket<undefined>) {
  current = socket;
  while (Date.now() < until) {
    const chunk = rest ?? block;
    const n = Math.max(0, socket.write(chunk));
    sent += n;
    if (n < chunk.byteLength) {
      rest = chunk.subarray(n);
      return;
    }
    rest = undefined;
  }
  socket.end();
}

await Bun.connect<undefined>({
  hostname: host,
  port,
  socket: {
    open: pump,
    drain: pump,
    data() {},
    close() {
      console.log(JSON.stringify({ sent }));
      process.exit(0);
    },
    error(_s, error) {
      console.error(error.message);
      process.exit(1);
    },
  },
});
setTimeout(() => process.exit(2), Number(secondsText) * 1000 + 15_000).unref();
