/**
 * The seam between the reference control plane and the reference gateways (test/cloud/README.md).
 *
 * Gateways live in test/cloud/gateway/ and are started by `startCloud` through a `StartGateways`
 * function. They get the shared `CloudState` (the CA to get a server certificate and verify client
 * certificates, the connector registry to refuse revoked connectors, the catalog to know the apps and
 * be told of changes) and return a `GatewayFleet`. Nothing else of the control plane is visible to them.
 */
import type { Catalog } from "../../src/control/api.ts";
import type { CertificateAuthority } from "./ca.ts";

/** Undoes a subscription. */
export type Unsubscribe = () => void;

/** What the cloud knows about one enrolled connector. */
export interface ConnectorRecord {
  /** "c-" + random hex; the CN of its client certificate. */
  readonly id: string;
  readonly name: string;
  /** Connector group (the O of its client certificate); apps are served by the connectors of their group. */
  readonly group: string;
  readonly machineId?: string;
  readonly version: string;
  /** Serial (upper-case hex) and SHA-256 fingerprint ("AA:BB:…") of the certificate issued at enrollment. */
  readonly certSerial: string;
  readonly certFingerprint256: string;
  readonly certNotAfter: string;
  readonly enrolledAt: string;
  readonly revoked: boolean;
}

/** Read access to the connector registry. */
export interface ConnectorDirectory {
  get(id: string): ConnectorRecord | undefined;
  list(): ConnectorRecord[];
  /**
   * Called with the connector's id when it is revoked (unless the revocation was made without telling
   * the gateways): its tunnels must be closed.
   */
  onRevoked(listener: (id: string) => void): Unsubscribe;
}

/** Read access to the app catalog, which is kept per connector group. */
export interface CatalogView {
  /** The catalog served to connectors of `group` (version = ETag). */
  forGroup(group: string): Catalog;
  /** The group whose connectors serve `app`, if the app exists. */
  groupOf(app: string): string | undefined;
  /** Called after every change, with the group whose catalog changed and its new version. */
  subscribe(listener: (change: { group: string; version: string }) => void): Unsubscribe;
}

/** Everything a gateway may use of the cloud. */
export interface CloudState {
  readonly ca: CertificateAuthority;
  readonly connectors: ConnectorDirectory;
  readonly catalog: CatalogView;
  /** SPKI PEM of the key access tokens are signed with: gateways verify every tunnel's token with it. */
  readonly tokenPublicKeyPem: string;
  /** The longest lifetime of the tokens the control plane issues: gateways refuse a token claiming more. */
  readonly tokenMaxTtlSeconds: number;
}

/** One running gateway. */
export interface GatewayHandle {
  readonly id: string;
  /** wss://127.0.0.1:PORT/v1/tunnel */
  readonly url: string;
  /** Set when the gateway runs in its own process. */
  readonly pid?: number;
  stop(): Promise<void>;
}

/** All gateways of a cloud, plus the user-facing side (one local listener per app). */
export interface GatewayFleet {
  readonly gateways: readonly GatewayHandle[];
  /** "127.0.0.1:PORT" where users of `app` connect, or null when there is no user listener. */
  listenAddress(app: string): string | null;
  stop(): Promise<void>;
}

export type StartGateways = (state: CloudState, options: { count: number }) => Promise<GatewayFleet>;
