/**
 * The IPC contract between the cloud process and its gateway processes (Bun.spawn `ipc`, JSON
 * serialisation). Both sides validate what they receive with these schemas: a gateway is a separate
 * program that may be killed at any point, and its messages are a boundary like any other.
 *
 * Cloud → gateway: `init` once, then catalog snapshots, revocations, listener instructions (`hold`,
 * `release`), answers to lookups, `describe` requests and `stop`.
 * Gateway → cloud: `ready` (or `failed`), connector lookups, per-app listener state, descriptions.
 */
import * as v from "valibot";
import { MAX_REFUSED_VERSIONS } from "./config.ts";

const Id = v.pipe(v.string(), v.minLength(1), v.maxLength(128));
const Port = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(65_535));
const Count = v.pipe(v.number(), v.integer(), v.minValue(0));
const RequestId = v.pipe(v.number(), v.integer(), v.minValue(0));

/** What a gateway needs of one catalog app: who serves it and where streams go. */
export const GatewayAppSchema = v.object({
  name: Id,
  group: Id,
  /** `host:port` targets from the catalog, used round-robin as OPEN destinations. */
  servers: v.array(v.pipe(v.string(), v.maxLength(300))),
});
export type GatewayApp = v.InferOutput<typeof GatewayAppSchema>;

/** The registry's answer about a connector id (a client certificate's CN). */
export const ConnectorInfoSchema = v.object({ id: Id, group: Id, revoked: v.boolean() });
export type ConnectorInfo = v.InferOutput<typeof ConnectorInfoSchema>;

export const LogLevelSchema = v.picklist(["silent", "error", "warn", "info", "debug", "trace"]);

/** X-Connector-Version values to refuse, bounded like every other list a gateway is handed. */
const RefusedVersionsSchema = v.pipe(
  v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(64))),
  v.maxLength(MAX_REFUSED_VERSIONS),
);

export const InitMessageSchema = v.object({
  type: v.literal("init"),
  id: Id,
  /** 0 on first start; the port it got afterwards, so a restarted gateway keeps its URL. */
  tunnelPort: Port,
  logLevel: LogLevelSchema,
  tls: v.object({ certPem: v.string(), keyPem: v.string(), caPem: v.string() }),
  /** SPKI PEM of the cloud's access-token signing key (docs/PROTOCOL.md §3.5). */
  tokenPublicKeyPem: v.pipe(v.string(), v.maxLength(4096)),
  /** The longest access-token lifetime the control plane issues, seconds. */
  tokenMaxTtlSeconds: v.pipe(v.number(), v.integer(), v.minValue(1)),
  apps: v.array(GatewayAppSchema),
  /** Known user ports per app; a gateway binds them (SO_REUSEPORT) when it can route the app. */
  appPorts: v.record(v.string(), Port),
  /** Connector versions whose tunnel upgrades are answered 403 (POST /admin/refuse-version). */
  refusedVersions: RefusedVersionsSchema,
});
export type InitMessage = v.InferOutput<typeof InitMessageSchema>;

export const ParentMessageSchema = v.variant("type", [
  InitMessageSchema,
  v.object({
    type: v.literal("catalog"),
    apps: v.array(GatewayAppSchema),
    /** The group whose catalog changed: its connectors' tunnels get CONFIG_CHANGED with this version. */
    changed: v.optional(v.object({ group: Id, version: Id })),
  }),
  v.object({ type: v.literal("revoked"), connectorId: Id }),
  v.object({ type: v.literal("lookupResult"), reqId: RequestId, connector: v.nullable(ConnectorInfoSchema) }),
  /** Listen for `app` on `port` (0: any port, to be reported) even without a tunnel to route to. */
  v.object({ type: v.literal("hold"), app: Id, port: Port }),
  /** Stop listening for `app` unless this gateway can route it: another gateway serves the port. */
  v.object({ type: v.literal("release"), app: Id }),
  v.object({ type: v.literal("describe"), reqId: RequestId }),
  /** The whole set of refused connector versions from now on; answered with `ack`. */
  v.object({ type: v.literal("refuseVersions"), reqId: RequestId, versions: RefusedVersionsSchema }),
  v.object({ type: v.literal("stop"), graceMs: Count }),
]);
export type ParentMessage = v.InferOutput<typeof ParentMessageSchema>;

export const CountersSchema = v.object({
  /** User connections accepted on this gateway's app listeners. */
  userConnections: Count,
  /** User connections joined to a stream. */
  routed: Count,
  /** User connections closed because no tunnel of the app's group was usable here. */
  noTunnel: Count,
  /** User connections closed because the app is no longer in the catalog. */
  unknownApp: Count,
  /** User connections closed after every attempted open failed. */
  routeFailed: Count,
  /** OPENs answered OK. */
  opensOk: Count,
  /** Failed OPENs by error code (OPEN_BUSY, OPEN_REFUSED, TUNNEL_CLOSED, TUNNEL_DRAINING, OPEN_TIMEOUT, …). */
  opensFailed: v.record(v.string(), Count),
  /** Opens tried on another tunnel after a BUSY / draining / closed one. */
  retries: Count,
  tunnelsAccepted: Count,
  /** Upgrades refused: unknown or revoked connector, missing or invalid access token, no common protocol version. */
  tunnelsRefused: Count,
  /** TOKEN_UPDATEs accepted (the tunnel's expiry moved). */
  tokenUpdates: Count,
  /** Tunnels closed for an invalid TOKEN_UPDATE. */
  tokenUpdatesRefused: Count,
  /** Tunnels ended because their access token expired (GO_AWAY AUTH_EXPIRED, then closed). */
  tunnelsExpired: Count,
});
export type GatewayCounters = v.InferOutput<typeof CountersSchema>;

export const TunnelInfoSchema = v.object({
  connectorId: Id,
  group: Id,
  /** Either side sent GO_AWAY: no new streams on it. */
  draining: v.boolean(),
  /** Streams open (or opening) on it now. */
  streams: Count,
  rttMs: v.nullable(v.number()),
  /** Apps the connector's last health report on this tunnel said it cannot reach. */
  unhealthyApps: v.array(v.string()),
  bytesIn: Count,
  bytesOut: Count,
  /** When the tunnel's current access token expires (ISO 8601). */
  tokenExpiresAt: v.pipe(v.string(), v.maxLength(64)),
  /** TOKEN_UPDATEs accepted on this tunnel. */
  tokenUpdates: Count,
});
export type TunnelInfo = v.InferOutput<typeof TunnelInfoSchema>;

export const AppListenerSchema = v.object({ routable: v.boolean(), listening: v.boolean() });

export const DescriptionSchema = v.object({
  tunnels: v.array(TunnelInfoSchema),
  counters: CountersSchema,
  apps: v.record(v.string(), AppListenerSchema),
});
export type GatewayDescription = v.InferOutput<typeof DescriptionSchema>;

export const ListenStateSchema = v.object({
  type: v.literal("listenState"),
  app: Id,
  /** This gateway has a usable tunnel for the app. */
  routable: v.boolean(),
  /** This gateway's listener for the app is bound. */
  listening: v.boolean(),
  port: v.nullable(Port),
  /** Why binding failed, if it did. */
  error: v.optional(v.string()),
});
export type ListenState = v.InferOutput<typeof ListenStateSchema>;

export const ChildMessageSchema = v.variant("type", [
  v.object({ type: v.literal("ready"), tunnelPort: Port }),
  v.object({ type: v.literal("failed"), message: v.string() }),
  v.object({ type: v.literal("lookup"), reqId: RequestId, connectorId: Id }),
  ListenStateSchema,
  v.object({ type: v.literal("description"), reqId: RequestId, description: DescriptionSchema }),
  /** A `refuseVersions` is in force. */
  v.object({ type: v.literal("ack"), reqId: RequestId }),
]);
export type ChildMessage = v.InferOutput<typeof ChildMessageSchema>;
