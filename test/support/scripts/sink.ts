/**
 * A private app that reads and discards everything, in its own process (so a test can run load at
 * low CPU priority without it competing with what the test measures). Prints its port, then serves
 * until killed. Listens on 127.0.0.1 only.
 */
export {};
const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {}, error() {} } });
console.log(listener.port);
