/**
 * Constants that shape the tunnel's WebSocket layer, each with the reason for its value. Everything
 * that bounds memory or time in `src/transport/` and in test/support/ws-server.ts
 * is here, so a reviewer can check the bounds in one place.
 */

/** HTTP path of the tunnel endpoint (docs/PROTOCOL.md §4). Used when a gateway URL has no path. */
export const TUNNEL_PATH = "/v1/tunnel";

/** WebSocket subprotocol that names tunnel protocol version 1 (PROTOCOL §4). */
export const SUBPROTOCOL_V1 = "connector.v1";

/** Largest WebSocket message; a larger one is a protocol error (PROTOCOL §4 `MAX_MESSAGE_BYTES`). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** RFC 6455 §5.5: control frames carry at most 125 bytes. */
export const MAX_CONTROL_PAYLOAD = 125;

/**
 * Size of the staging buffers outgoing frames are copied into. Measured with Bun 1.4.5 on loopback
 * TLS: 64 KiB writes run at about half the rate of 128 KiB–1 MiB writes (per-write cost dominates),
 * so frames are batched into buffers of this size and written with one `socket.write` each. Four
 * 64 KiB messages plus their headers fit, or one 256 KiB session batch (`SessionConfig`); with a
 * plain 256 KiB only three 64 KiB messages would, and writes would average 192 KiB.
 */
export const WRITE_BATCH_BYTES = 4 * (64 * 1024 + 64);

/**
 * `send()` returns false once this many bytes wait in user space. Everything queued here is FIFO
 * ahead of any other stream's next frame, so it is kept to one staging batch: 256 KiB keeps a
 * 6 Gbit/s tunnel busy for ~0.3 ms beyond the kernel's own buffers (1 MiB measured no faster and let
 * 1 KiB echoes under bulk load reach ~15x their idle latency). Memory per tunnel: this plus one
 * message (a send is never refused, only signalled).
 */
export const WRITE_HIGH_WATER_BYTES = 256 * 1024;

/** `drain` fires when the queue falls to this; a quarter of the high-water mark avoids flapping. */
export const WRITE_LOW_WATER_BYTES = 64 * 1024;

/**
 * Staging buffers kept for reuse per transport: enough to cover the high-water mark, because
 * allocating (zero-filling, faulting in) a fresh 256 KiB buffer per batch measured at 13% of the
 * CPU of a bulk transfer. Costs up to 1 MiB per tunnel once it has carried bulk traffic.
 */
export const WRITE_POOL_BUFFERS = Math.ceil(WRITE_HIGH_WATER_BYTES / WRITE_BATCH_BYTES) + 1;

/** How long a close handshake may take before the socket is cut (RFC 6455 §7.1.1 leaves it open). */
export const CLOSE_TIMEOUT_MS = 5_000;

/** Dial budget: TCP connect, proxy CONNECT, TLS and the HTTP upgrade together. */
export const DIAL_TIMEOUT_MS = 15_000;

/** Server side: time from TCP accept to a complete upgrade request (slowloris bound). */
export const ACCEPT_TIMEOUT_MS = 10_000;

/** Largest HTTP head (request or response, incl. proxy answers) read before it counts as hostile. */
export const MAX_HTTP_HEAD_BYTES = 16 * 1024;

/** Bytes a server holds from a client between its upgrade request and the authorisation decision. */
export const MAX_EARLY_DATA_BYTES = 64 * 1024;
