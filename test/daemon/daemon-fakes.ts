/**
 * Fakes of everything a `Daemon` talks to (`DaemonDeps`): a control plane that serves a catalog and
 * tokens (or says CONNECTOR_REVOKED), gateways that hand out `FakeTunnel`s, the local servers, systemd,
 * the process's signals. With a `FakeClock` a whole daemon runs, stops, is revoked and renews without
 * a socket; only the state dir is real (a temp dir).
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConsola } from "consola";
import { resolveSettings, type Settings } from "../../src/config/settings.ts";
import type { Catalog } from "../../src/control/api.ts";
import { apiRejection } from "../../src/control/errors.ts";
import type { DaemonDeps, DaemonOptions, StopSignal } from "../../src/daemon/daemon-deps.ts";
import type { Identity } from "../../src/identity/identity.ts";
import type { Logger } from "../../src/log.ts";
import type { StatusSnapshot } from "../../src/status/schema.ts";
import type { SessionEvents } from "../../src/mux/session-types.ts";
import type { ConnectTunnelOptions, Tunnel } from "../../src/supervisor/connection.ts";
import type { Gateway } from "../../src/supervisor/supervisor-types.ts";
import { TunnelDialError } from "../../src/transport/websocket/errors.ts";
import { Secret } from "../../src/secret.ts";
import { testCa } from "../identity/fixtures.ts";
import type { FakeClock } from "../support/fake-clock.ts";
import { FakeTunnel } from "../supervisor/fake-tunnel.ts";

export const CATALOG: Catalog = { version: "v1", apps: [] };
const HOUR_MS = 60 * 60_000;

/** A logger that keeps every line as `level message {fields}` for assertions. */
export function recordingLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log = createConsola({
    level: 999,
    reporters: [
      {
        log: (e) =>
          void lines.push(`${e.type} ${e.args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ")}`),
      },
    ],
  });
  return { log, lines };
}

let sharedKeys: { publicKey: string; privateKey: string } | undefined;

/**
 * An identity whose certificate lives `lifeMs` from `start` (the fake clock's start, 2026-01-01), on
 * `gateways`. One key pair serves every test identity (RSA generation is slow); certificates differ.
 */
export function identityFor(
  gateways: Gateway[],
  lifeMs = 3 * HOUR_MS,
  start = new Date(Date.UTC(2026, 0, 1)),
  id = "conn-1",
): Identity {
  sharedKeys ??= generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  const ca = testCa();
  return {
    formatVersion: 1,
    connectorId: id,
    name: `host-${id}`,
    group: "group-a",
    controlUrl: "https://control.invalid",
    caPin: ca.pin,
    caCertificate: ca.cert,
    certificate: ca.signPublicKey(sharedKeys.publicKey, {
      commonName: id,
      organization: "group-a",
      usage: "client",
      notBefore: start,
      notAfter: new Date(start.getTime() + lifeMs),
    }),
    chain: [],
    gateways,
    enrolledAt: start.toISOString(),
    machineId: "0123456789abcdef0123456789abcdef",
    privateKeyPem: new Secret(sharedKeys.privateKey),
  };
}

/** The control plane as the daemon sees it: a catalog (ETag'd) and tokens, until it revokes. */
export class FakeControlPlane {
  revoked = false;
  catalog: Catalog = CATALOG;
  catalogRequests = 0;
  tokenRequests = 0;
  /** Certificates the requests were made with (a renewal changes it). */
  readonly certificates: string[] = [];

  client(identity: Identity) {
    const plane = this;
    return {
      async request(_method: "GET" | "POST", _path: string, init: { headers?: Record<string, string> } = {}) {
        plane.catalogRequests++;
        plane.certificates.push(identity.certificate);
        if (plane.revoked) throw apiRejection(403, "CONNECTOR_REVOKED", "revoked");
        const etag = `"${plane.catalog.version}"`;
        if (init.headers?.["if-none-match"] === etag) return { status: 304, headers: new Headers(), text: "" };
        return { status: 200, headers: new Headers({ etag }), text: JSON.stringify(plane.catalog) };
      },
      async token() {
        plane.tokenRequests++;
        if (plane.revoked) throw apiRejection(403, "CONNECTOR_REVOKED", "revoked");
        return { token: `token-${plane.tokenRequests}`, expiresAt: "2026-01-01T01:00:00.000Z", expiresIn: 3600 };
      },
      async reportUpgrade() {},
    };
  }
}

/** One dial that reached a fake gateway. */
export interface Dialled {
  readonly tunnel: FakeTunnel;
  readonly certificate: string;
  readonly events: SessionEvents;
}

/** Gateways that accept every dial with a `FakeTunnel`, or refuse with `refuse(gatewayId, status)`. */
export class FakeGateways {
  readonly dialled: Dialled[] = [];
  readonly #refusing = new Map<string, number>();

  refuse(gatewayId: string, status: number | undefined): void {
    if (status === undefined) this.#refusing.delete(gatewayId);
    else this.#refusing.set(gatewayId, status);
  }

  /** Tunnels not closed yet. */
  open(): Dialled[] {
    return this.dialled.filter((d) => !d.tunnel.session.isClosed);
  }

  /** The gateway closes `tunnel` with a WebSocket close code (1008: by policy). */
  close(d: Dialled, code: number): void {
    d.events.closed?.({ code, reason: "closed by the gateway", initiator: "remote" });
    d.tunnel.peerClose(`closed (${code})`);
  }

  readonly connect = async (
    gateway: Gateway,
    options: ConnectTunnelOptions,
    events: SessionEvents = {},
  ): Promise<Tunnel> => {
    const status = this.#refusing.get(gateway.id);
    if (status !== undefined)
      throw new TunnelDialError("TUNNEL_HANDSHAKE", `the gateway answered ${status}`, { status });
    const tunnel = new FakeTunnel(gateway);
    this.dialled.push({ tunnel, certificate: options.credentials.certificateChainPem, events });
    return tunnel;
  };
}

/** The process's signals, sent by the test. */
export class FakeSignals {
  #handlers: { signal(s: StopSignal): void } | undefined;
  readonly listen: DaemonDeps["signals"]["listen"] = (handlers) => {
    this.#handlers = handlers;
    return () => (this.#handlers = undefined);
  };
  send(signal: StopSignal): void {
    this.#handlers?.signal(signal);
  }
  get listening(): boolean {
    return this.#handlers !== undefined;
  }
}

export interface DaemonWorld {
  readonly options: DaemonOptions;
  readonly deps: DaemonDeps;
  readonly settings: Settings;
  readonly control: FakeControlPlane;
  readonly gateways: FakeGateways;
  readonly signals: FakeSignals;
  readonly lines: string[];
  /** What the local servers and the lock went through: "admin", "metrics …", "admin stopped", "lock released". */
  readonly happened: string[];
  readonly renewals: Identity[];
  /** Status as the admin socket would answer it (once the daemon bound it). */
  snapshot(): StatusSnapshot;
  cleanup(): void;
}

/** A daemon's world on `clock`: `gateways` known, `flags` as on the command line. */
export function daemonWorld(
  clock: FakeClock,
  options: { gateways?: Gateway[]; flags?: Record<string, string>; renew?: (current: Identity) => Identity } = {},
): DaemonWorld {
  const stateDir = mkdtempSync(join(tmpdir(), "daemon-unit-"));
  const gws = options.gateways ?? [
    { id: "gw-a", url: "wss://gw-a.invalid/v1/tunnel" },
    { id: "gw-b", url: "wss://gw-b.invalid/v1/tunnel" },
  ];
  const { settings } = resolveSettings({
    flags: { "state-dir": stateDir, "auto-upgrade": "off", ...options.flags },
    env: {},
    envFile: join(stateDir, "no-env-file"),
    isTTY: false,
  });
  const { log, lines } = recordingLog();
  const control = new FakeControlPlane();
  const gateways = new FakeGateways();
  const signals = new FakeSignals();
  const happened: string[] = [];
  const renewals: Identity[] = [];
  const identity = identityFor(gws);
  let statusOf: (() => StatusSnapshot) | undefined;
  const deps: DaemonDeps = {
    clock,
    random: () => 0.5, // full jitter at 0 would make every backoff 0 ms: a loop on a fake clock
    signals,
    controlClient: (id) => control.client(id),
    servers: {
      admin: async (_dir, snapshot, o) => {
        statusOf = snapshot;
        happened.push(o.takeOver ? "admin (taken over)" : "admin");
        return {
          path: join(stateDir, "admin.sock"),
          owned: () => true,
          stop: () => void happened.push("admin stopped"),
        };
      },
      metrics: (listen) => {
        happened.push(`metrics ${listen}`);
        return { url: `http://${listen}`, stop: () => void happened.push("metrics stopped") };
      },
      health: (listen) => {
        happened.push(`health ${listen}`);
        return { url: `http://${listen}`, stop: () => void happened.push("health stopped") };
      },
    },
    connectTunnel: gateways.connect,
    notifier: { enabled: false, send: () => undefined },
    lockStateDir: async () => ({
      path: join(stateDir, "daemon.lock"),
      release: () => void happened.push("lock released"),
    }),
    obtainIdentity: async () => identity,
    renewIdentity: async (current) => {
      const now = clock.wallNow();
      const renewed = options.renew
        ? options.renew(current)
        : { ...identityFor(gws, 3 * HOUR_MS, now), renewedAt: now.toISOString() };
      renewals.push(renewed);
      return renewed;
    },
    installedBinary: "/nonexistent/connector",
    pid: 4242,
  };
  return {
    options: { settings, env: {}, log },
    deps,
    settings,
    control,
    gateways,
    signals,
    lines,
    happened,
    renewals,
    snapshot: () => {
      if (!statusOf) throw new Error("the admin socket is not bound yet");
      return statusOf();
    },
    cleanup: () => rmSync(stateDir, { recursive: true, force: true }),
  };
}
