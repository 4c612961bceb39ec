/**
 * The daemon's local admin socket (§4): HTTP over a Unix socket in the state dir, mode 0660, so only
 * the service user (and its group) can read status. Nothing is reachable over the network.
 * `GET /v1/status` answers the `StatusSnapshot` that `connector status` validates and prints.
 */
import { chmodSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ADMIN_SOCKET_NAME } from "../status/config.ts";
import type { StatusSnapshot } from "../status/schema.ts";

export interface AdminServer {
  readonly path: string;
  stop(): void;
}

export function startAdminServer(stateDir: string, snapshot: () => StatusSnapshot): AdminServer {
  const path = join(stateDir, ADMIN_SOCKET_NAME);
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
