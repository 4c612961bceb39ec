/**
 * The network checks: the proxy, then for the control plane and each gateway of the identity a name
 * lookup, a TCP connection (through the proxy unless the bypass list exempts the endpoint) and a TLS
 * handshake judged against the cloud CA pin, then this host's clock against the control plane's
 * `Date` header. Nothing is sent to the cloud but TLS handshakes and one unauthenticated
 * `GET /v1/ca`: the provisioning key's secret never leaves this process.
 */
import { isIP } from "node:net";
import { systemClock, type Clock } from "../clock.ts";
import { ControlClient, type FetchFn } from "../control/client.ts";
import { describeProxy } from "../control/no-proxy.ts";
import { describeError, DNS_ERROR_CODES, errnoCode } from "../errors.ts";
import type { Secret } from "../secret.ts";
import { describeTlsFailure, tlsFailureKind } from "../tls-failure.ts";
import { ProxyBypass } from "../netaddr/proxy-bypass.ts";
import { formatAuthority } from "../transport/websocket/handshake.ts";
import { parseProxyUrl, type ProxyTarget } from "../transport/websocket/proxy-connect.ts";
import {
  DeadlineError,
  NET_TIMEOUTS,
  openConnection,
  ProxyConnectError,
  systemNet,
  tlsHandshake,
  TlsProbeError,
  withDeadline,
  type NetSeams,
  type NetTimeouts,
} from "./net-probe.ts";
import { fail, pass, warn, type CheckResult } from "./report.ts";
import { judgeChain, type ChainVerdict } from "./tls-chain.ts";

/** Clock skew against the control plane: certificates and access tokens tolerate this much. */
export const CLOCK_PASS_MS = 30_000;
/** Beyond this, certificate validity and token lifetimes break: the connector cannot work. */
export const CLOCK_FAIL_MS = 5 * 60_000;

export interface NetTargets {
  /** Control-plane base URL (from the key or the identity). */
  readonly controlUrl: string;
  readonly caPin: string;
  /** The stored identity's CA (pin-checked), when there is one. */
  readonly caPem?: string | undefined;
  /** Gateway URLs (wss://) of the stored identity. */
  readonly gateways: readonly string[];
  /** The identity's client certificate chain and key, offered to gateways that ask for one. */
  readonly client?: { readonly cert: string; readonly key: Secret<string> } | undefined;
}

export interface NetworkCheckInput {
  readonly targets: NetTargets;
  readonly proxy?: string | undefined;
  readonly noProxy: readonly string[];
  readonly seams?: NetSeams;
  readonly clock?: Pick<Clock, "wallNow">;
  readonly timeouts?: NetTimeouts;
  /** The fetch the clock check's request uses (Bun's by default). */
  readonly fetch?: FetchFn;
}

interface Endpoint {
  readonly label: string;
  readonly host: string;
  readonly port: number;
  readonly target: string;
  readonly proxy: ProxyTarget | undefined;
}

function endpoint(
  label: string,
  raw: string,
  defaultPort: number,
  proxy: string | undefined,
  bypass: ProxyBypass,
): Endpoint {
  const url = new URL(raw);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port === "" ? defaultPort : Number(url.port);
  const viaProxy = proxy !== undefined && !bypass.bypasses(host, port);
  return { label, host, port, target: formatAuthority(host, port), proxy: viaProxy ? parseProxyUrl(proxy) : undefined };
}

const via = (e: Endpoint): string => (e.proxy ? ` through the proxy ${e.proxy.display}` : "");

async function dnsCheck(e: Endpoint, seams: NetSeams, t: NetTimeouts): Promise<CheckResult> {
  if (isIP(e.host)) return pass("net.dns", `${e.label}: ${e.host} is an address (no lookup needed)`, e.target);
  if (e.proxy) return pass("net.dns", `${e.label}: ${e.host} is resolved by the proxy ${e.proxy.display}`, e.target);
  try {
    const addresses = await withDeadline(`lookup of ${e.host}`, t.dnsMs, seams.lookup(e.host));
    if (addresses.length === 0) throw Object.assign(new Error("no address"), { code: "ENOTFOUND" });
    return pass("net.dns", `${e.label}: ${e.host} resolves to ${addresses.slice(0, 4).join(", ")}`, e.target);
  } catch (err) {
    const why =
      err instanceof DeadlineError ? `no answer within ${t.dnsMs / 1000} s` : (errnoCode(err) ?? describeError(err));
    return fail(
      "net.dns",
      `${e.label}: cannot resolve ${e.host} (${why})`,
      `check the nameservers in /etc/resolv.conf can resolve ${e.host}, or set --proxy if only the proxy can`,
      e.target,
    );
  }
}

/** The net.tcp failure for an error of `openConnection`. */
function tcpFailure(e: Endpoint, err: unknown, t: NetTimeouts): CheckResult {
  const firewall = `allow outbound TCP to ${e.target} in the firewall, or set --proxy (CONNECTOR_PROXY) if this network requires a proxy`;
  if (err instanceof ProxyConnectError) {
    const fix =
      err.status === 407
        ? "give the proxy credentials in the proxy URL: --proxy http://USER:PASS@HOST:PORT (better: CONNECTOR_PROXY in /etc/connector/connector.env)"
        : `allow CONNECT to ${e.target} on the proxy, or add ${e.host} to --no-proxy (CONNECTOR_NO_PROXY) if it is reachable directly`;
    return fail("net.tcp", `${e.label}: ${err.message}`, fix, e.target);
  }
  if (err instanceof DeadlineError)
    return fail(
      "net.tcp",
      `${e.label}: ${err.what}: no answer within ${t.tcpMs / 1000} s (a firewall dropping it?)`,
      firewall,
      e.target,
    );
  const code = errnoCode(err) ?? describeError(err);
  if (e.proxy) {
    return fail(
      "net.tcp",
      `${e.label}: cannot connect to the proxy ${e.proxy.display} (${code})`,
      "check the proxy address in --proxy / CONNECTOR_PROXY",
      e.target,
    );
  }
  const what =
    code === "ECONNREFUSED"
      ? "connection refused"
      : code === "EHOSTUNREACH"
        ? "host unreachable"
        : code === "ENETUNREACH"
          ? "network unreachable"
          : code;
  return fail("net.tcp", `${e.label}: cannot connect to ${e.target} (${what})`, firewall, e.target);
}

function tlsFailure(e: Endpoint, err: unknown, now: Date): CheckResult {
  if (err instanceof DeadlineError) {
    return fail(
      "net.tls",
      `${e.label}: the TLS handshake did not finish within ${err.ms / 1000} s${via(e)}`,
      `check that nothing between this host and ${e.target} holds TLS connections`,
      e.target,
    );
  }
  const code = err instanceof TlsProbeError ? err.code : errnoCode(err);
  const kind = tlsFailureKind(code, describeError(err)) ?? "other";
  const said = describeTlsFailure(kind, `${e.label} ${e.target}${via(e)}`, code ?? describeError(err), now);
  return fail(
    "net.tls",
    said,
    `check that ${e.target} is the cloud's TLS port and that no middlebox answers in its place`,
    e.target,
  );
}

interface EndpointOutcome {
  readonly checks: CheckResult[];
  /** The pinned CA when the TLS check passed. */
  readonly ca?: string;
}

async function checkEndpoint(
  e: Endpoint,
  input: NetworkCheckInput,
  client: NetTargets["client"],
): Promise<EndpointOutcome> {
  const seams = input.seams ?? systemNet;
  const t = input.timeouts ?? NET_TIMEOUTS;
  const now = (input.clock ?? systemClock).wallNow();
  const dns = await dnsCheck(e, seams, t);
  const skipped = (id: "net.tcp" | "net.tls", after: string) =>
    warn(id, `${e.label}: not checked (${after} failed)`, `fix ${after} for ${e.target} first`, e.target);
  if (dns.status === "fail") return { checks: [dns, skipped("net.tcp", "net.dns"), skipped("net.tls", "net.dns")] };
  let tcp: CheckResult;
  try {
    (await openConnection(seams, e.host, e.port, e.proxy, t.tcpMs)).destroy();
    tcp = pass("net.tcp", `${e.label}: connected to ${e.target}${via(e)}`, e.target);
  } catch (err) {
    return { checks: [dns, tcpFailure(e, err, t), skipped("net.tls", "net.tcp")] };
  }
  let socket: Awaited<ReturnType<typeof openConnection>>;
  try {
    socket = await openConnection(seams, e.host, e.port, e.proxy, t.tcpMs);
  } catch (err) {
    // Connected a moment ago: the second connection failing is reported as what it is.
    const again = tcpFailure(e, err, t);
    return { checks: [dns, tcp, fail("net.tls", `${e.label}: not checked: ${again.summary}`, again.fix!, e.target)] };
  }
  let handshake: Awaited<ReturnType<typeof tlsHandshake>>;
  try {
    handshake = await tlsHandshake(socket, { serverName: isIP(e.host) ? undefined : e.host, client }, t.tlsMs);
  } catch (err) {
    return { checks: [dns, tcp, tlsFailure(e, err, now)] };
  }
  const verdict = judgeChain(handshake.chain, input.targets.caPin, input.targets.caPem, e.host, now);
  if (verdict.ok) {
    return {
      checks: [
        dns,
        tcp,
        pass("net.tls", `${e.label}: ${handshake.protocol}, the certificate chains to the pinned cloud CA`, e.target),
      ],
      ca: verdict.ca.toString(),
    };
  }
  return { checks: [dns, tcp, chainFailure(e, verdict)] };
}

function chainFailure(e: Endpoint, verdict: Exclude<ChainVerdict, { ok: true }>): CheckResult {
  if (verdict.problem === "interception") {
    return fail(
      "net.tls",
      `${e.label}${via(e)}: TLS interception: the certificate is issued by ${verdict.detail}, not by the pinned cloud CA`,
      `add ${e.host} to the proxy's TLS-inspection bypass (and to --no-proxy / CONNECTOR_NO_PROXY if the proxy is not needed)`,
      e.target,
    );
  }
  if (verdict.problem === "dates")
    return fail(
      "net.tls",
      `${e.label}: ${verdict.detail}`,
      "correct this host's clock (enable systemd-timesyncd or chrony)",
      e.target,
    );
  return fail(
    "net.tls",
    `${e.label}: ${verdict.detail}`,
    `check that DNS sends ${e.host} to the cloud and that the URL in the key is right`,
    e.target,
  );
}

function proxyCheck(
  proxy: string | undefined,
  bypass: ProxyBypass,
  endpoints: readonly Endpoint[],
  seams: NetSeams,
  t: NetTimeouts,
): Promise<CheckResult> | CheckResult {
  const ignored = bypass.ignored.length > 0 ? bypass.ignored : undefined;
  const ignoredFix = `fix or remove these --no-proxy (CONNECTOR_NO_PROXY) entries: ${bypass.ignored.join(", ")}`;
  if (proxy === undefined) {
    if (ignored)
      return warn(
        "net.proxy",
        `no proxy configured; ${ignored.length} --no-proxy entries are not understood`,
        ignoredFix,
      );
    return pass("net.proxy", "no proxy configured: connections go direct");
  }
  const target = parseProxyUrl(proxy);
  const used = endpoints.filter((e) => e.proxy).map((e) => e.target);
  const scope = used.length === 0 ? "every endpoint bypasses it" : `used for ${used.join(", ")}`;
  return openConnection(seams, target.host, target.port, undefined, t.tcpMs).then(
    (socket) => {
      socket.destroy();
      if (ignored)
        return warn(
          "net.proxy",
          `proxy ${describeProxy(proxy)} reachable (${scope}); ${ignored.length} --no-proxy entries are not understood`,
          ignoredFix,
        );
      return pass("net.proxy", `proxy ${describeProxy(proxy)} reachable (${scope})`);
    },
    (err: unknown) => {
      const why =
        err instanceof DeadlineError
          ? `no answer within ${t.tcpMs / 1000} s`
          : DNS_ERROR_CODES.has(errnoCode(err) ?? "")
            ? "its name does not resolve"
            : (errnoCode(err) ?? describeError(err));
      return fail(
        "net.proxy",
        `cannot connect to the proxy ${describeProxy(proxy)} (${why})`,
        "check the proxy address in --proxy / CONNECTOR_PROXY (or HTTPS_PROXY, or /etc/connector/connector.env)",
      );
    },
  );
}

const span = (ms: number): string => {
  const s = Math.round(Math.abs(ms) / 1000);
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
};

async function clockCheck(input: NetworkCheckInput, ca: string | undefined): Promise<CheckResult> {
  const fix =
    "correct this host's clock and keep it synchronised (enable systemd-timesyncd or chrony: timedatectl set-ntp true)";
  const target = new URL(input.targets.controlUrl).host;
  if (ca === undefined)
    return warn(
      "net.clock",
      "not checked: the control plane's TLS check did not pass",
      "fix net.tls for the control plane first",
      target,
    );
  const client = new ControlClient({
    controlUrl: input.targets.controlUrl,
    proxy: input.proxy,
    noProxy: input.noProxy,
    caCertificate: ca,
    timeoutMs: (input.timeouts ?? NET_TIMEOUTS).httpMs,
    fetch: input.fetch,
  });
  let date: string | null;
  try {
    date = (await client.request("GET", "/v1/ca")).headers.get("date");
  } catch (err) {
    return warn(
      "net.clock",
      `not checked: GET /v1/ca failed (${describeError(err)})`,
      "fix the failing net.* checks of the control plane first",
      target,
    );
  }
  const server = date === null ? NaN : Date.parse(date);
  if (Number.isNaN(server))
    return warn(
      "net.clock",
      "not checked: the control plane sent no usable Date header",
      "compare this host's clock with a trusted one by hand (timedatectl)",
      target,
    );
  const skew = (input.clock ?? systemClock).wallNow().getTime() - server;
  const how = `this host's clock is ${span(skew)} ${skew >= 0 ? "ahead of" : "behind"} the control plane's`;
  if (Math.abs(skew) <= CLOCK_PASS_MS) return pass("net.clock", `${how} (within ${CLOCK_PASS_MS / 1000} s)`, target);
  if (Math.abs(skew) <= CLOCK_FAIL_MS)
    return warn("net.clock", `${how}: certificates and tokens still work, but it drifts`, fix, target);
  return fail(
    "net.clock",
    `${how}: more than ${CLOCK_FAIL_MS / 60_000} min breaks certificate and token validity`,
    fix,
    target,
  );
}

/** The most gateways checked: an identity lists a few; a longer list would only slow preflight down. */
export const MAX_CHECKED_GATEWAYS = 8;

/** net.proxy, then net.dns/net.tcp/net.tls for the control plane and each gateway, then net.clock. */
export async function networkChecks(input: NetworkCheckInput): Promise<CheckResult[]> {
  const bypass = ProxyBypass.parse(input.noProxy);
  const seams = input.seams ?? systemNet;
  const t = input.timeouts ?? NET_TIMEOUTS;
  const endpoints = [
    endpoint("control plane", input.targets.controlUrl, 443, input.proxy, bypass),
    ...input.targets.gateways
      .slice(0, MAX_CHECKED_GATEWAYS)
      .map((url) => endpoint("gateway", url, 443, input.proxy, bypass)),
  ];
  const [proxy, ...outcomes] = await Promise.all([
    proxyCheck(input.proxy, bypass, endpoints, seams, t),
    ...endpoints.map((e, i) => checkEndpoint(e, input, i === 0 ? undefined : input.targets.client)),
  ]);
  const clock = await clockCheck(input, outcomes[0]?.ca);
  return [proxy!, ...outcomes.flatMap((o) => o.checks), clock];
}
