/**
 * Stand-in gateways until the real ones (test/cloud/gateway/) exist: each is a TLS listener with a
 * server certificate from the cloud CA at a real wss:// URL, so enrollment can hand out gateway
 * addresses and a connector's TLS and pinning can be exercised. It says honestly that it cannot tunnel:
 * every request, WebSocket upgrades included, gets 503. There are no user listeners (listen = null).
 */
import type { CloudState, GatewayFleet, GatewayHandle, StartGateways } from "./gateway-api.ts";

export const PLACEHOLDER_MESSAGE = "reference gateway: tunnels are not implemented yet";

function startPlaceholder(state: CloudState, id: string): GatewayHandle {
  const { certPem, keyPem } = state.ca.issueServerCert();
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: certPem, key: keyPem },
    fetch: () => new Response(PLACEHOLDER_MESSAGE, { status: 503, headers: { "content-type": "text/plain" } }),
  });
  return { id, url: `wss://127.0.0.1:${server.port}/v1/tunnel`, stop: () => server.stop(true) };
}

export const startPlaceholderGateways: StartGateways = async (state, { count }): Promise<GatewayFleet> => {
  const gateways = Array.from({ length: count }, (_, i) => startPlaceholder(state, `gw-${i + 1}`));
  return {
    gateways,
    listenAddress: () => null,
    stop: async () => void (await Promise.all(gateways.map((g) => g.stop()))),
  };
};
