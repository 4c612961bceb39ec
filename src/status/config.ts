/** Status tunables with their reasons. */

/** The daemon's admin socket, in the state dir. */
export const ADMIN_SOCKET_NAME = "admin.sock";

/**
 * How long `status` waits for the daemon on the admin socket. 2 s: the daemon answers from memory
 * in microseconds; a socket that stays silent this long belongs to a hung or dead process.
 */
export const ADMIN_QUERY_TIMEOUT_MS = 2_000;

/** Largest status answer read from the admin socket (10,000 apps with servers fit easily). */
export const MAX_STATUS_BYTES = 4 * 1024 * 1024;
