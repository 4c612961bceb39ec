/**
 * A minimal control plane over real TLS on 127.0.0.1 for unit tests: serves `GET /v1/ca` and
 * `POST /v1/enroll` (signing the CSR's key with a throw-away CA), with knobs to misbehave. The full
 * reference implementation is test/cloud; this one exists so client tests run in milliseconds.
 */
import forge from "node-forge";
import { createTestCa, type TestCa } from "../support/test-pki.ts";
import { encodeProvisioningKey } from "../../src/identity/provisioning-key.ts";

export interface FakeControlPlane {
  readonly url: string;
  readonly port: number;
  readonly ca: TestCa;
  /** A valid provisioning key for this control plane. */
  readonly key: string;
  readonly secret: string;
  /** Requests received, as "METHOD /path". */
  readonly requests: string[];
  /** Last enroll request body. */
  lastEnroll: Record<string, unknown> | undefined;
  /** Replace the handler of one route, or of everything with "*". */
  override(route: string, handler: (req: Request) => Response | Promise<Response>): void;
  stop(): void;
}

export const SECRET = Buffer.alloc(32, 7).toString("base64url");

export function startFakeControlPlane(options: { ca?: TestCa; serverCa?: TestCa } = {}): FakeControlPlane {
  const ca = options.ca ?? createTestCa("Fake Cloud CA");
  // `serverCa` different from `ca` simulates a TLS-inspecting middlebox that passes /v1/ca through.
  const serverCert = (options.serverCa ?? ca).issueServer();
  const overrides = new Map<string, (req: Request) => Response | Promise<Response>>();
  const requests: string[] = [];
  const state: { lastEnroll: Record<string, unknown> | undefined } = { lastEnroll: undefined };

  const enrollHandler = async (req: Request): Promise<Response> => {
    const body = (await req.json()) as Record<string, unknown>;
    state.lastEnroll = body;
    if (body.secret !== SECRET)
      return Response.json({ error: { code: "KEY_UNKNOWN", message: "no such key" } }, { status: 401 });
    const csr = forge.pki.certificationRequestFromPem(String(body.csr));
    if (!csr.verify())
      return Response.json({ error: { code: "CSR_INVALID", message: "bad signature" } }, { status: 400 });
    const publicKeyPem = forge.pki.publicKeyToPem(csr.publicKey as forge.pki.rsa.PublicKey);
    const certificate = ca.signPublicKey(publicKeyPem, {
      commonName: "conn-1",
      organization: "group-a",
      usage: "client",
    });
    return Response.json(
      {
        connectorId: "conn-1",
        name: body.name,
        group: "group-a",
        certificate,
        chain: [],
        caCertificate: ca.cert,
        gateways: [{ id: "gw-1", url: "wss://127.0.0.1:1/v1/tunnel" }],
      },
      { status: 201 },
    );
  };

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: serverCert.cert, key: serverCert.key },
    async fetch(req) {
      const path = new URL(req.url).pathname;
      const route = `${req.method} ${path}`;
      requests.push(route);
      const handler = overrides.get(route) ?? overrides.get("*");
      if (handler) return handler(req);
      if (route === "GET /v1/ca")
        return new Response(ca.cert, { headers: { "content-type": "application/x-pem-file" } });
      if (route === "POST /v1/enroll") return enrollHandler(req);
      return Response.json({ error: { code: "NOT_FOUND", message: "no route" } }, { status: 404 });
    },
  });
  const url = `https://127.0.0.1:${server.port}`;
  return {
    url,
    port: server.port!,
    ca,
    key: encodeProvisioningKey({ controlUrl: url, caPin: ca.pin, secret: SECRET }),
    secret: SECRET,
    requests,
    get lastEnroll() {
      return state.lastEnroll;
    },
    set lastEnroll(value) {
      state.lastEnroll = value;
    },
    override(route, handler) {
      overrides.set(route, handler);
    },
    stop() {
      server.stop(true);
    },
  };
}

/** A TCP listener that accepts and never answers: every request to it hits its deadline. */
export function startSilentListener(): { port: number; stop(): void } {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {}, open() {} } });
  return { port: listener.port, stop: () => listener.stop(true) };
}

/** A loopback port with nothing listening (bound, then released). */
export function closedPort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}
