/**
 * The value types of settings, as valibot schemas: each one turns the operator's text into the value
 * the connector uses or fails with a message that says what was expected, which `resolveSettings`
 * prefixes with the setting's flag and where the value came from.
 */
import { isIPv4, isIPv6 } from "node:net";
import * as v from "valibot";
import { VERSION_PATTERN } from "../version.ts";

export const LogLevel = v.picklist(
  ["silent", "error", "warn", "info", "debug", "trace"],
  "expected one of silent, error, warn, info, debug, trace",
);
export const LogFormat = v.picklist(["pretty", "json"], "expected pretty or json");
export const ProxyUrl = v.pipe(
  v.string(),
  v.url("expected a URL such as http://proxy.example:3128"),
  // CONNECT to the proxy is plain HTTP; TLS to the proxy itself (https://) is not supported by the tunnels.
  v.check((s) => /^http:\/\//i.test(s), "expected an http:// proxy URL (https:// proxies are not supported)"),
);
export const NoProxyList = v.pipe(
  v.string(),
  v.transform((s) =>
    s
      .split(",")
      .map((e) => e.trim())
      .filter((e) => e.length > 0),
  ),
);
export const PositiveInt = (min: number, max: number) =>
  v.pipe(
    v.string(),
    v.regex(/^\d+$/, `expected a whole number from ${min} to ${max}`),
    v.transform(Number),
    v.minValue(min, `expected a whole number from ${min} to ${max}`),
    v.maxValue(max, `expected a whole number from ${min} to ${max}`),
  );

/** What is wrong with a HOST:PORT to listen on, or undefined when nothing is. */
export function listenAddressProblem(text: string): string | undefined {
  const colon = text.lastIndexOf(":");
  if (colon < 0) return "expected HOST:PORT, e.g. 127.0.0.1:9300";
  const host = text.slice(0, colon);
  const port = text.slice(colon + 1);
  if (host === "")
    return "the host is missing: expected HOST:PORT, e.g. 127.0.0.1:9300 (0.0.0.0:9300 for every interface)";
  if (host.startsWith("[")) {
    if (!host.endsWith("]") || !isIPv6(host.slice(1, -1)))
      return `"${host}" is not an IPv6 address in brackets, e.g. [::1]:9300`;
  } else if (host.includes(":")) {
    return "an IPv6 address goes in brackets, e.g. [::1]:9300";
  } else if (/^[\d.]+$/.test(host) ? !isIPv4(host) : !/^[0-9A-Za-z]([0-9A-Za-z.-]{0,252})$/.test(host)) {
    return `"${host}" is not an IP address or host name`;
  }
  if (!/^\d{1,5}$/.test(port)) return "the port must be a number from 1 to 65535";
  const number = Number(port);
  // Port 0 asks the kernel for any free port: nobody could find the listener.
  if (number === 0) return "port 0 would listen on a port chosen at random: give one from 1 to 65535";
  if (number > 65535) return `port ${number} is out of range: give one from 1 to 65535`;
  return undefined;
}

/** HOST:PORT to listen on; kept as text (the listener parses it), checked here so a typo fails at start. */
export const ListenAddress = v.pipe(
  v.string(),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const problem = listenAddressProblem(dataset.value);
    if (problem) addIssue({ message: problem });
  }),
);
export const NonEmpty = v.pipe(v.string(), v.trim(), v.minLength(1, "must not be empty"));
export const OnOff = v.pipe(
  v.string(),
  v.transform((s) => s.trim().toLowerCase()),
  v.picklist(["on", "off"], "expected on or off"),
  v.transform((s) => s === "on"),
);
export const ChannelName = v.pipe(
  v.string(),
  v.regex(/^[a-z0-9][a-z0-9-]{0,31}$/, "expected a channel name such as stable or beta"),
);
export const HttpUrl = v.pipe(
  v.string(),
  v.url("expected a URL"),
  v.check((s) => /^https?:\/\//i.test(s), "expected an http:// or https:// URL"),
);
export const VersionText = v.pipe(v.string(), v.regex(VERSION_PATTERN, "expected a version such as 1.4.2"));
export const WindowText = v.pipe(
  v.string(),
  v.regex(/^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$/, "expected HH:MM-HH:MM in UTC, e.g. 02:00-05:00"),
);
