/** A loopback port nothing listens on now (bound to port 0, then released), for a daemon flag such as --metrics. */
export function freeLoopbackPort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}
