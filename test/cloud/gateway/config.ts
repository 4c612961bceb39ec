/**
 * Numbers that shape the reference gateways, in one place, each with the reason for its value.
 * Wire-level numbers (windows, heartbeats, open timeout) are the session's own (src/mux/config.ts).
 */

/**
 * A user connection is offered to at most this many tunnels. A tunnel refusing with BUSY, draining or
 * closing under us is worth trying the next one; three covers "one connector stopping, one full"
 * without making a user wait through every tunnel of a large group.
 */
export const MAX_OPEN_ATTEMPTS = 3;

/**
 * A gateway process must be listening (tunnel port bound, first message answered) within this time of
 * being spawned: Bun starts in ~0.1 s, so 10 s only trips on a broken child, never on a slow machine.
 */
export const GATEWAY_READY_TIMEOUT_MS = 10_000;

/**
 * The tunnel upgrade asks the cloud process (over IPC) whether the connector id exists and is not
 * revoked. The answer takes well under a millisecond; after 5 s the upgrade is refused 503 rather than
 * holding the connection (the handshake itself is bounded by ws-server's 10 s accept timeout).
 */
export const CONNECTOR_LOOKUP_TIMEOUT_MS = 5_000;

/** GET /admin/gateways asks each live gateway for its state; one that does not answer in 2 s is shown as not answering. */
export const DESCRIBE_TIMEOUT_MS = 2_000;

/**
 * A gateway acknowledges a new set of refused connector versions within 2 s, so that once the admin
 * API has answered, every running gateway refuses them (a test dials right after).
 */
export const SETTINGS_ACK_TIMEOUT_MS = 2_000;
/** At most this many refused connector versions at a time: a test refuses one or two. */
export const MAX_REFUSED_VERSIONS = 64;

/**
 * A gateway stopped through the admin API (or by the cloud stopping) sends GO_AWAY and lets open
 * streams finish for this long before it closes its tunnels. Short, because the reference cloud is
 * stopped by tests; the admin API can ask for a longer grace.
 */
export const DEFAULT_STOP_GRACE_MS = 2_000;

/**
 * After closing its tunnels, a stopping gateway waits up to 1 s for the WebSocket close handshakes
 * (a loopback round trip) before its process exits, so connectors see 1001 "gateway stopping" rather
 * than a connection dropped without a close frame.
 */
export const CLOSE_FLUSH_MS = 1_000;

/**
 * When the whole cloud stops (SIGTERM, `stop()` at the end of a test) its gateways still send GO_AWAY
 * but give open streams only 0.5 s: nobody is left to route to, and test launchers give the whole
 * cloud 5 s before SIGKILL.
 */
export const CLOUD_STOP_GRACE_MS = 500;

/** Longest grace the admin API accepts for a gateway stop, so a typo cannot wedge a test for hours. */
export const MAX_STOP_GRACE_MS = 60_000;

/**
 * A gateway that has not exited this long after its grace ran out is killed (SIGKILL): its own
 * close handshakes (WebSocket close, 5 s timeout) must not hold up the cloud's stop.
 */
export const STOP_KILL_AFTER_MS = 3_000;

/**
 * `restart` of a gateway that is still running first waits this long for it to exit by itself: a test
 * that has just sent it SIGKILL and asks for a restart at once races the exit notification.
 */
export const RESTART_EXIT_WAIT_MS = 1_000;

/** A new app added through the admin API gets its user listener (port) within this time, or none is reported. */
export const APP_LISTEN_TIMEOUT_MS = 5_000;

/**
 * A user connection that cannot be routed is half-closed (FIN) and cut after 2 s if the user has not
 * closed it: long enough for any client to see the FIN and close, short enough that refused users
 * cannot pile up.
 */
export const USER_LINGER_MS = 2_000;

/**
 * A tunnel whose access token expired without a valid TOKEN_UPDATE gets GO_AWAY AUTH_EXPIRED and is
 * closed this long after: time for the GO_AWAY to arrive ahead of the close (so the connector knows why
 * and dials a replacement with a fresh token), short enough that an unauthorised tunnel carries
 * nothing for long.
 */
export const AUTH_EXPIRED_CLOSE_MS = 1_000;
