/**
 * The daemon's local admin socket (§4): HTTP over a Unix socket in the state dir, mode 0660, so only
 * the service user (and its group) can read status. Nothing is reachable over the network.
 * `GET /v1/status` answers the `StatusSnapshot` that `connector status` validates and prints.
 */
import { chmodSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ConnectorError, ExitCode } from "../errors.ts";
import { ADMIN_SOCKET_NAME } from "../status/config.ts";
import type { StatusSnapshot } from "../status/schema.ts";

export interface AdminServer {
  readonly path: string;
  stop(): void;
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

export async function startAdminServer(stateDir: string, snapshot: () => StatusSnapshot): Promise<AdminServer> {
  const path = join(stateDir, ADMIN_SOCKET_NAME);
  if (await answering(path)) {
    throw new ConnectorError("ALREADY_RUNNING", `Another connector daemon is running on ${stateDir} (its admin socket answers); stop it first.`, ExitCode.alreadyRunning);
  }
  // A socket left by a daemon that was killed would make the bind fail.
  rmSync(path, { force: true });
  const server = Bun.serve({
    unix: path,
    fetch(request) {
      const url = new URL(request.url);
      if (request.method === "GET" && url.pathname === "/v1/status") return Response.json(snapshot());
      return new Response("not found\n", { status: 404 });
    },
  });
  chmodSync(path, 0o660);
  return {
    path,
    stop() {
      server.stop(true);
      rmSync(path, { force: true });
    },
  };
}
