/**
 * An HTTPS server on 127.0.0.1 that asks every client for a certificate but does not require one, so
 * unauthenticated endpoints (GET /v1/ca, POST /v1/enroll) and mutual-TLS ones (GET /v1/catalog) share
 * a port. Handlers read `req.socket.authorized` and `getPeerCertificate()`.
 *
 * Bun-specific: Bun's node:https hides the peer certificate (its request socket has no
 * getPeerCertificate), and Bun.serve cannot show it at all. node:tls does, so TLS is terminated by a
 * node:tls server and each secure socket is handed to a node:http server with emit("connection").
 * Bun's node:tls also reports a handshake timeout without closing the socket, so that is done here.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import type { AddressInfo, Socket } from "node:net";
import { HANDSHAKE_TIMEOUT_MS, IDLE_TIMEOUT_MS, STOP_GRACE_MS } from "./config.ts";

export interface MtlsServerOptions {
  readonly certPem: string;
  readonly keyPem: string;
  /** The CA client certificates must chain to for `socket.authorized` to be true. */
  readonly caPem: string;
}

export interface MtlsServer {
  readonly port: number;
  stop(): Promise<void>;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** The TLS socket under a request of an MtlsServer. */
export const tlsSocketOf = (req: IncomingMessage): TLSSocket => req.socket as TLSSocket;

export async function listenMtls(options: MtlsServerOptions, handler: RequestHandler): Promise<MtlsServer> {
  const http = createHttpServer(handler);
  const sockets = new Set<Socket>();
  const tls = createTlsServer(
    {
      cert: options.certPem,
      key: options.keyPem,
      ca: [options.caPem],
      requestCert: true,
      // Verification still runs; its result is in socket.authorized for the handlers to enforce.
      rejectUnauthorized: false,
      minVersion: "TLSv1.2",
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    },
    (socket) => {
      socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
      http.emit("connection", socket);
    },
  );
  tls.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  tls.on("tlsClientError", (_err: Error, socket: TLSSocket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    tls.once("error", reject);
    tls.listen(0, "127.0.0.1", () => resolve());
  });
  return {
    port: (tls.address() as AddressInfo).port,
    async stop() {
      const closed = new Promise<void>((resolve) => tls.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await Promise.race([closed, Bun.sleep(STOP_GRACE_MS)]);
    },
  };
}
