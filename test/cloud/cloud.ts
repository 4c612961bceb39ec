/**
 * `startCloud` assembles the reference cloud in-process: the CA, the shared state (provisioning keys,
 * connector registry, app catalog), the gateways, the control plane and the admin API, all on
 * 127.0.0.1 with ports chosen by the OS, plus a first provisioning key for the "default" group.
 *
 * Gateways plug in through `options.startGateways` (see gateway-api.ts); by default they are the
 * reference gateways of test/cloud/gateway/, one process each, with one user port per app.
 */
import type { Gateway } from "../../src/control/api.ts";
import { createLogger, type Logger } from "../../src/log.ts";
import { DEFAULT_TOKEN_TTL_SECONDS, TokenIssuer } from "./access-token.ts";
import { startAdmin } from "./admin.ts";
import { CertificateAuthority } from "./ca.ts";
import { CatalogStore, type AppSpec } from "./catalog.ts";
import { DEFAULT_CERT_TTL_SECONDS, DEFAULT_KEY_MAX_USES, DEFAULT_KEY_TTL_SECONDS } from "./config.ts";
import { startControlPlane } from "./control-plane.ts";
import type { CloudState, GatewayFleet, StartGateways, Unsubscribe } from "./gateway-api.ts";
import type { GatewayAdmin } from "./gateway/admin-types.ts";
import { fleetAdmin, startGatewayFleet } from "./gateway/fleet.ts";
import { KeyStore } from "./keys.ts";
import { ConnectorRegistry } from "./registry.ts";
import { startReleaseServer, type ReleaseServer } from "./releases/server.ts";
import { UpgradeReports } from "./upgrade-reports.ts";

export interface CloudOptions {
  /** Number of gateways the cloud runs (≥ 1, or ≥ 0 with `extraGateways`); default 1. */
  readonly gateways?: number;
  /**
   * wss:// URLs of gateways the cloud does not run (test/interop's independent gateway), listed to
   * connectors after its own. Each gets a server certificate from the CA (`extraGateways` of the handle).
   */
  readonly extraGateways?: readonly string[];
  /** Apps of the initial catalog. */
  readonly apps?: readonly AppSpec[];
  /** Max uses of the initial provisioning key; default 10. */
  readonly keyUses?: number;
  /** Lifetime of the initial provisioning key; default one day. */
  readonly keyExpiresInSeconds?: number;
  /** Lifetime of issued client certificates; default 30 days. */
  readonly certTtlSeconds?: number;
  /** Lifetime of access tokens (POST /v1/token); default 10 minutes. */
  readonly tokenTtlSeconds?: number;
  /** Wall clock (ms since the epoch) for certificates and key expiry; default Date.now. */
  readonly now?: () => number;
  readonly log?: Logger;
  readonly startGateways?: StartGateways;
  /** A releases directory to serve (releases/server.ts); no release server without it. */
  readonly releases?: string;
  /** A `bun run keygen` directory with release.key, for the misbehaviour modes that re-sign with it. */
  readonly releaseSigningKeys?: string;
}

/** A gateway run outside the cloud: its URL and the server certificate the CA issued for it. */
export interface ExtraGateway extends Gateway {
  readonly certPem: string;
  readonly keyPem: string;
}

/** What cloud.json says of the release server: its base URL and each channel's manifest at start. */
export interface ReleasesInfo {
  readonly baseUrl: string;
  readonly channels: Record<string, { manifestUrl: string }>;
}

export interface CloudHandle {
  readonly controlUrl: string;
  readonly adminUrl: string;
  readonly caPin: string;
  readonly caCertPem: string;
  /** The initial `cnk1.` key (group "default"). A secret: do not log it. */
  readonly provisioningKey: string;
  readonly provisioningKeyId: string;
  readonly apps: Record<string, { listen: string | null }>;
  /** The gateways now: `pid` is the current process (absent while a gateway is stopped). */
  readonly gateways: readonly (Gateway & { pid?: number })[];
  /** The `extraGateways` with their certificates (ids `ext-1`, `ext-2`, …); empty without. */
  readonly extraGateways: readonly ExtraGateway[];
  /** Restart, stop and describe gateways (undefined when `options.startGateways` made other gateways). */
  readonly gatewayAdmin: GatewayAdmin | undefined;
  /** Called when a gateway's process changes (restart, stop, crash), e.g. to rewrite cloud.json. */
  onGatewaysChanged(listener: () => void): Unsubscribe;
  /** The release server, when started with `releases`. */
  readonly releases: ReleasesInfo | undefined;
  readonly releaseServer: ReleaseServer | undefined;
  /** The live state, for in-process tests. */
  readonly state: CloudState & {
    readonly keys: KeyStore;
    readonly registry: ConnectorRegistry;
    readonly catalog: CatalogStore;
    readonly upgradeReports: UpgradeReports;
  };
  stop(): Promise<void>;
}

/** `--gateways 0`: the cloud runs none (only extra gateways); apps then have no user listener. */
const NO_GATEWAYS: GatewayFleet = { gateways: [], listenAddress: () => null, stop: async () => {} };

export async function startCloud(options: CloudOptions = {}): Promise<CloudHandle> {
  const now = options.now ?? Date.now;
  const log = options.log ?? createLogger({ level: "info", format: "pretty" });
  const gatewayCount = options.gateways ?? 1;
  const extraUrls = options.extraGateways ?? [];
  if (!Number.isInteger(gatewayCount) || gatewayCount < (extraUrls.length > 0 ? 0 : 1))
    throw new Error("a cloud needs at least one gateway");

  const ca = new CertificateAuthority({ now });
  const registry = new ConnectorRegistry({ now });
  const catalog = new CatalogStore();
  for (const app of options.apps ?? []) catalog.put(app);
  let controlUrl = ""; // known once the control plane listens, before any key is made
  const keys = new KeyStore({ caPin: ca.pin, controlUrl: () => controlUrl, now });
  const tokens = new TokenIssuer({ ttlSeconds: options.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS, now });
  const upgradeReports = new UpgradeReports(now);
  const state = {
    ca,
    connectors: registry,
    catalog,
    keys,
    registry,
    upgradeReports,
    tokenPublicKeyPem: tokens.publicKeyPem,
    tokenMaxTtlSeconds: tokens.ttlSeconds,
  };

  const stoppers: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const stopOne of stoppers.splice(0).reverse()) await stopOne();
  };
  try {
    const gatewayOptions = { count: gatewayCount, apps: (options.apps ?? []).map((a) => a.name), log };
    const fleet =
      gatewayCount === 0 ? NO_GATEWAYS : await (options.startGateways ?? startGatewayFleet)(state, gatewayOptions);
    stoppers.push(() => fleet.stop());
    const gatewayAdmin = fleetAdmin(fleet);
    const extraGateways = extraUrls.map((url, i) => ({ id: `ext-${i + 1}`, url, ...ca.issueServerCert() }));
    // URLs never change (a restarted gateway keeps its port); pids do, so they are read live.
    const gateways = () => [
      ...fleet.gateways.map((g) => ({ id: g.id, url: g.url, ...(g.pid === undefined ? {} : { pid: g.pid }) })),
      ...extraGateways.map(({ id, url }) => ({ id, url })),
    ];

    const control = await startControlPlane({
      ca,
      keys,
      registry,
      catalog,
      log,
      tokens,
      upgradeReports,
      gateways: () => gateways().map(({ id, url }) => ({ id, url })),
      certTtlSeconds: options.certTtlSeconds ?? DEFAULT_CERT_TTL_SECONDS,
    });
    stoppers.push(() => control.stop());
    controlUrl = control.url;

    let releaseServer: ReleaseServer | undefined;
    if (options.releases !== undefined) {
      releaseServer = await startReleaseServer({
        dir: options.releases,
        signingKeysDir: options.releaseSigningKeys,
        log,
        now,
      });
      stoppers.push(() => releaseServer!.stop());
    }
    const releases = releaseServer && {
      baseUrl: releaseServer.baseUrl,
      channels: Object.fromEntries(
        releaseServer.channelsAtStart.map((c) => [c, { manifestUrl: releaseServer.manifestUrl(c) }]),
      ),
    };

    const admin = startAdmin({
      keys,
      registry,
      catalog,
      log,
      gateways: gatewayAdmin,
      releases: releaseServer,
      upgradeReports,
    });
    stoppers.push(() => admin.stop());

    const first = keys.createKey({
      group: "default",
      maxUses: options.keyUses ?? DEFAULT_KEY_MAX_USES,
      expiresAt: new Date(now() + (options.keyExpiresInSeconds ?? DEFAULT_KEY_TTL_SECONDS) * 1000),
    });
    const apps = Object.fromEntries(
      (options.apps ?? []).map((app) => [app.name, { listen: fleet.listenAddress(app.name) }]),
    );
    return {
      controlUrl,
      adminUrl: admin.url,
      caPin: ca.pin,
      caCertPem: ca.certPem,
      provisioningKey: first.key,
      provisioningKeyId: first.id,
      apps,
      get gateways() {
        return gateways();
      },
      extraGateways,
      gatewayAdmin,
      onGatewaysChanged: (listener) => gatewayAdmin?.onChange(listener) ?? (() => {}),
      releases,
      releaseServer,
      state,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
