/**
 * The daemon's local admin socket: HTTP over a Unix socket in the state dir, mode 0660, so only
 * the service user (and its group) can read status. Nothing is reachable over the network.
 * `GET /v1/status` answers the `StatusSnapshot` that `connector status` validates and prints.
 */
import { chmodSync, lstatSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ConnectorError, ExitCode } from "../errors.ts";
import { ADMIN_SOCKET_NAME } from "../status/config.ts";
import type { StatusSnapshot } from "../status/schema.ts";

export interface AdminServer {
  readonly path: string;
  /** Whether the socket file at `path` is still the one this server bound (a hand-over successor may have replaced it). */
  owned(): boolean;
  /** Stops serving; removes the socket file only while it is still ours, never a successor's. */
  stop(): void;
}

export interface AdminServerOptions {
  /** A hand-over successor takes the path over from the process that answers on it (unlink + bind). */
  takeOver?: boolean;
}

/**
 * Which file is at `path` (undefined: none). The inode number alone is not enough: a successor unlinks
 * our socket and binds its own, and the freed inode number is often reused at once; the change time
 * (in nanoseconds) tells the two apart.
 */
function identityAt(path: string): string | undefined {
  try {
    const stats = lstatSync(path, { bigint: true });
    return `${stats.dev}:${stats.ino}:${stats.ctimeNs}`;
  } catch {
    return undefined;
  }
}

/** A daemon already answers on `path`: two daemons on one identity would fight over its tunnels. */
async function answering(path: string): Promise<boolean> {
  try {
    const response = await fetch("http://localhost/v1/status", { unix: path, signal: AbortSignal.timeout(1_000) });
    await response.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

export async function startAdminServer(
  stateDir: string,
  snapshot: () => StatusSnapshot,
  options: AdminServerOptions = {},
): Promise<AdminServer> {
  const path = join(stateDir, ADMIN_SOCKET_NAME);
  if (!options.takeOver && (await answering(path))) {
    throw new ConnectorError(
      "ALREADY_RUNNING",
      `Another connector daemon is running on ${stateDir} (its admin socket answers); stop it first.`,
      ExitCode.alreadyRunning,
    );
  }
  // Bound under a name of its own, then renamed into place (over a socket left by a daemon that was
  // killed, or, in a hand-over, over the previous process's): the path moves to the new socket in one
  // step, and Bun's stop() unlinks the name it bound (gone by then), never a successor's socket.
  const boundAt = `${path}.${process.pid}`;
  rmSync(boundAt, { force: true });
  const server = Bun.serve({
    unix: boundAt,
    fetch(request) {
      const url = new URL(request.url);
      if (request.method === "GET" && url.pathname === "/v1/status") return Response.json(snapshot());
      return new Response("not found\n", { status: 404 });
    },
  });
  chmodSync(boundAt, 0o660);
  renameSync(boundAt, path);
  const bound = identityAt(path);
  const owned = () => bound !== undefined && identityAt(path) === bound;
  return {
    path,
    owned,
    stop() {
      server.stop(true);
      if (owned()) rmSync(path, { force: true });
    },
  };
}
