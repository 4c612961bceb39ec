/**
 * An in-process connector for the gateway tests, made of the real modules: enrolled through the
 * control plane (EC P-256 key, so it is fast), an access token from POST /v1/token (fetched before each
 * dial unless the test brings its own), tunnels from src/supervisor/connection.ts, OPENs answered
 * by the dataplane's open handler with the catalog's allow-list (re-fetched on CONFIG_CHANGED). Each
 * tunnel records what the gateway sent it, and every wait has a deadline.
 */
import * as v from "valibot";
import { systemClock } from "../../../src/clock.ts";
import {
  CatalogSchema,
  EnrollResponseSchema,
  TokenResponseSchema,
  type Gateway,
  type TokenResponse,
} from "../../../src/control/api.ts";
import { AllowList } from "../../../src/dataplane/allow-list.ts";
import { createOpenHandler } from "../../../src/dataplane/open-handler.ts";
import { Secret } from "../../../src/secret.ts";
import { connectTunnel, type Tunnel, type TunnelCredentials } from "../../../src/supervisor/connection.ts";
import { ProxyBypass } from "../../../src/netaddr/proxy-bypass.ts";
import type { SessionClosed } from "../../../src/mux/session-types.ts";
import type { CloudHandle } from "../cloud.ts";
import { ecKeys, nativeCsr } from "../fixtures.ts";
import { controlFetch, enrollBody, postEnroll, silentLog } from "../test-client.ts";
import type { GatewayStatus } from "./admin-types.ts";
import { until as waitUntil } from "../../support/wait.ts";

/** A safety deadline: in-process events take milliseconds, but a loaded machine stalls for seconds. */
const WAIT_MS = 20_000;

/** `until` with this file's default deadline. */
export function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = WAIT_MS,
): Promise<T> {
  return waitUntil(what, probe, timeoutMs);
}

/** Waits until the gateways' own account (GET /admin/gateways, in-process) satisfies `ok`. */
export function untilGateways(
  cloud: CloudHandle,
  what: string,
  ok: (gateways: GatewayStatus[]) => boolean,
): Promise<GatewayStatus[]> {
  return until(what, async () => {
    const gateways = await cloud.gatewayAdmin!.describe();
    return ok(gateways) ? gateways : undefined;
  });
}

/** One tunnel of the test connector, with what the gateway sent on it. */
export class TestTunnel {
  readonly configChanged: string[] = [];
  readonly goAways: number[] = [];
  closed: SessionClosed | undefined;
  tunnel!: Tunnel;

  waitClosed(): Promise<SessionClosed> {
    return until("the tunnel to close", () => this.closed);
  }
}

export interface TestConnector {
  readonly id: string;
  readonly group: string;
  readonly gateways: readonly Gateway[];
  readonly credentials: TunnelCredentials;
  /** The client certificate and key, for control-plane requests in tests. */
  readonly clientCert: { cert: string; key: string };
  /** A fresh access token from POST /v1/token (throws on any other answer than 200). */
  token(): Promise<TokenResponse>;
  /**
   * Opens a tunnel to `gateway` (rejects with the dial error, e.g. 401, 403) with `options.token`, or
   * without one when it is null, or with a fresh one when it is absent; `connectorVersion` is its
   * X-Connector-Version (default "0.0.0-test").
   */
  connect(gateway: Gateway, options?: { token?: string | null; connectorVersion?: string }): Promise<TestTunnel>;
  /** Sends a health report for `app` with one server, healthy or not, on `tunnel`. */
  reportHealth(tunnel: TestTunnel, app: string, address: string, healthy: boolean): void;
  close(): void;
}

export async function enrollTestConnector(cloud: CloudHandle, name = "gateway-test"): Promise<TestConnector> {
  const keys = ecKeys("prime256v1");
  const response = await postEnroll(cloud, enrollBody(cloud.provisioningKey, nativeCsr(keys), name));
  if (response.status !== 201) throw new Error(`enrollment answered ${response.status}: ${await response.text()}`);
  const identity = v.parse(EnrollResponseSchema, await response.json());
  const keyPem = keys.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const credentials: TunnelCredentials = {
    certificateChainPem: identity.certificate,
    privateKeyPem: new Secret(keyPem),
    caCertificatePem: identity.caCertificate,
  };
  let allowList = AllowList.empty();
  const refreshCatalog = async () => {
    const answer = await controlFetch(cloud, "/v1/catalog", {
      clientCert: { cert: identity.certificate, key: keyPem },
    });
    allowList = AllowList.compile(v.parse(CatalogSchema, await answer.json()));
  };
  await refreshCatalog();
  const onOpen = createOpenHandler({ allowList: () => allowList, log: silentLog, counters: { failures: {} } });
  const open: Tunnel[] = [];
  const clientCert = { cert: identity.certificate, key: keyPem };
  const token = async () => {
    const answer = await controlFetch(cloud, "/v1/token", { method: "POST", clientCert });
    if (answer.status !== 200) throw new Error(`POST /v1/token answered ${answer.status}: ${await answer.text()}`);
    return v.parse(TokenResponseSchema, await answer.json());
  };

  return {
    id: identity.connectorId,
    group: identity.group,
    gateways: identity.gateways,
    credentials,
    clientCert,
    token,
    async connect(gateway, options = {}) {
      const record = new TestTunnel();
      const accessToken = options.token === undefined ? (await token()).token : options.token;
      record.tunnel = await connectTunnel(
        gateway,
        {
          credentials,
          connectorVersion: options.connectorVersion ?? "0.0.0-test",
          ...(accessToken === null ? {} : { accessToken: new Secret(accessToken) }),
          noProxy: ProxyBypass.parse([]),
          clock: systemClock,
          onOpen,
          timeoutMs: 5_000,
        },
        {
          configChanged: (version) => {
            record.configChanged.push(version);
            void refreshCatalog();
          },
          goAway: (code) => record.goAways.push(code),
          closed: (info) => (record.closed = info),
        },
      );
      open.push(record.tunnel);
      return record;
    },
    reportHealth(tunnel, app, address, healthy) {
      tunnel.tunnel.session.sendHealthReport({ apps: [{ name: app, servers: [{ address, healthy }] }] });
    },
    close() {
      for (const t of open) t.close("test over");
    },
  };
}
