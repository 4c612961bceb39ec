/**
 * The settings table: every setting's flag, env vars, value type, default and help text. Settings are
 * resolved from it (settings.ts), the CLI generates its flags and help from it (src/cli/options.ts),
 * and the docs' settings table is generated from it, so none of them can drift from what is read.
 */
import type * as v from "valibot";
import {
  ChannelName,
  HttpUrl,
  ListenAddress,
  LogFormat,
  LogLevel,
  NoProxyList,
  NonEmpty,
  OnOff,
  PositiveInt,
  ProxyUrl,
  VersionText,
  WindowText,
} from "./values.ts";

export const DEFAULT_STATE_DIR = "/var/lib/connector";
export const DEFAULT_ENV_FILE = "/etc/connector/connector.env";

/**
 * One entry per setting: its flag, env vars in priority order, schema, default, and the text `--help`
 * and the docs show (the CLI generates its flags from this table, so help cannot drift from what is
 * read). Defaults are strings so they go through the same validation as operator input; `defaultText`
 * says what happens when a setting has no default value (or what its default means).
 */
export interface SettingSpec {
  readonly flag: string;
  /** Other spellings of the flag the CLI accepts. */
  readonly aliases?: readonly string[];
  readonly env: readonly string[];
  readonly schema: v.GenericSchema<string, unknown>;
  readonly fallback: string | undefined;
  readonly defaultText?: string;
  readonly description: string;
  readonly valueHint: string;
  /** The value may hold a password: never echoed, scrubbed from the process environment. */
  readonly secret?: true;
}

export const SPEC = {
  stateDir: {
    flag: "state-dir",
    env: ["CONNECTOR_STATE_DIR"],
    schema: NonEmpty,
    fallback: DEFAULT_STATE_DIR,
    description: "State directory: the identity, the catalog cache, the daemon's lock and admin socket",
    valueHint: "DIR",
  },
  logLevel: {
    flag: "log-level",
    env: ["CONNECTOR_LOG_LEVEL"],
    schema: LogLevel,
    fallback: "info",
    description: "Log level: silent, error, warn, info, debug or trace",
    valueHint: "LEVEL",
  },
  logFormat: {
    flag: "log-format",
    env: ["CONNECTOR_LOG_FORMAT"],
    schema: LogFormat,
    fallback: undefined,
    defaultText: "pretty on a terminal, json otherwise",
    description: "Log format: pretty or json (one object per line)",
    valueHint: "FORMAT",
  },
  proxy: {
    flag: "proxy",
    env: ["CONNECTOR_PROXY", "HTTPS_PROXY", "https_proxy"],
    schema: ProxyUrl,
    fallback: undefined,
    defaultText: "none: connect directly",
    description: "HTTP proxy for outbound connections, http://[user:pass@]host:port",
    valueHint: "URL",
    secret: true,
  },
  noProxy: {
    flag: "proxy-bypass",
    aliases: ["no-proxy"],
    env: ["CONNECTOR_NO_PROXY", "NO_PROXY", "no_proxy"],
    schema: NoProxyList,
    fallback: "",
    defaultText: "none",
    description: "Destinations that bypass the proxy, comma-separated: IPs, CIDRs, domains, *.suffix (also --no-proxy)",
    valueHint: "LIST",
  },
  tunnels: {
    flag: "tunnels",
    env: ["CONNECTOR_TUNNELS"],
    schema: PositiveInt(1, 16),
    fallback: "2",
    description: "Tunnels to keep up, to distinct gateways (1 to 16)",
    valueHint: "N",
  },
  gracePeriod: {
    flag: "grace-period",
    env: ["CONNECTOR_GRACE_PERIOD"],
    schema: PositiveInt(0, 3600),
    fallback: "30",
    description: "Seconds open streams get to finish on SIGTERM (0 to 3600)",
    valueHint: "SECONDS",
  },
  dialTimeout: {
    flag: "dial-timeout",
    env: ["CONNECTOR_DIAL_TIMEOUT"],
    schema: PositiveInt(1, 120),
    fallback: "10",
    description: "Seconds to reach an app before a stream fails TIMEOUT (1 to 120)",
    valueHint: "SECONDS",
  },
  // Process-wide stream cap (src/dataplane/admission.ts explains the default); the fd limit may lower it.
  maxStreams: {
    flag: "max-streams",
    env: ["CONNECTOR_MAX_STREAMS"],
    schema: PositiveInt(1, 1_000_000),
    fallback: "20000",
    defaultText: "20000, lowered to fit the fd limit",
    description: "Streams open at once over all tunnels; more are answered BUSY",
    valueHint: "N",
  },
  // A week at most: a stream idle for longer is abandoned whatever the app; 0 turns the timeout off.
  streamIdleTimeout: {
    flag: "stream-idle-timeout",
    env: ["CONNECTOR_STREAM_IDLE_TIMEOUT"],
    schema: PositiveInt(0, 604_800),
    fallback: "3600",
    description: "Seconds a stream may move no data before it is reset; 0 = never (at most 604800, a week)",
    valueHint: "SECONDS",
  },
  metrics: {
    flag: "metrics",
    env: ["CONNECTOR_METRICS"],
    schema: ListenAddress,
    fallback: undefined,
    defaultText: "off",
    description: "Serve Prometheus metrics, /healthz and /readyz on HOST:PORT (they name apps: keep it on loopback)",
    valueHint: "HOST:PORT",
  },
  // Probes for orchestrators: /healthz and /readyz only, no app names, so it may listen off loopback.
  health: {
    flag: "health",
    env: ["CONNECTOR_HEALTH"],
    schema: ListenAddress,
    fallback: undefined,
    defaultText: "off",
    description: "Serve only /healthz and /readyz on HOST:PORT, for orchestrator probes",
    valueHint: "HOST:PORT",
  },
  name: {
    flag: "name",
    env: ["CONNECTOR_NAME"],
    schema: NonEmpty,
    fallback: undefined,
    defaultText: "the hostname, cut to 63 characters",
    description: "Connector name to enroll under (`run` enrolls by itself when it finds a provisioning key)",
    valueHint: "NAME",
  },
  // Upgrades (docs/OPERATIONS.md "Upgrades"): where releases come from and when the daemon takes them.
  autoUpgrade: {
    flag: "auto-upgrade",
    env: ["CONNECTOR_AUTO_UPGRADE"],
    schema: OnOff,
    fallback: "on",
    description: "on or off: take signed releases of the channel by itself",
    valueHint: "on|off",
  },
  channel: {
    flag: "channel",
    env: ["CONNECTOR_CHANNEL"],
    schema: ChannelName,
    fallback: "stable",
    description: "Release channel",
    valueHint: "NAME",
  },
  manifestUrl: {
    flag: "manifest-url",
    env: ["CONNECTOR_MANIFEST_URL"],
    schema: HttpUrl,
    fallback: undefined,
    defaultText: "the release host built in",
    description: "The channel's manifest.json",
    valueHint: "URL",
  },
  pinVersion: {
    flag: "pin-version",
    env: ["CONNECTOR_PIN_VERSION"],
    schema: VersionText,
    fallback: undefined,
    defaultText: "none",
    description: "Take only this release version",
    valueHint: "V",
  },
  // Seconds between checks, ±20 % jitter so a fleet does not ask at the same instant.
  upgradeInterval: {
    flag: "upgrade-interval",
    env: ["CONNECTOR_UPGRADE_INTERVAL"],
    schema: PositiveInt(10, 30 * 86_400),
    fallback: "21600",
    description: "Seconds between release checks, ±20 % jitter (10 to 2592000)",
    valueHint: "SECONDS",
  },
  upgradeWindow: {
    flag: "upgrade-window",
    env: ["CONNECTOR_UPGRADE_WINDOW"],
    schema: WindowText,
    fallback: undefined,
    defaultText: "any time",
    description: "Take releases only within this daily window, in UTC",
    valueHint: "HH:MM-HH:MM",
  },
  // How long a new version gets to bring its tunnels up during a hand-over before it is killed.
  upgradeHealthTimeout: {
    flag: "upgrade-health-timeout",
    env: ["CONNECTOR_UPGRADE_HEALTH_TIMEOUT"],
    schema: PositiveInt(1, 3600),
    fallback: "120",
    description:
      "Seconds a new version gets to bring its tunnels up when it takes over before it is stopped (1 to 3600)",
    valueHint: "SECONDS",
  },
} as const satisfies Record<string, SettingSpec>;

/** Every setting, for the CLI's flags and the docs' table. */
export const SETTINGS: Readonly<Record<keyof typeof SPEC, SettingSpec>> = SPEC;

/** The env file is not a setting (settings are read from it) but is given the same way. */
export const ENV_FILE_OPTION = {
  flag: "env-file",
  env: ["CONNECTOR_ENV_FILE"],
  fallback: DEFAULT_ENV_FILE,
  description: "Settings file, KEY=value lines, read after the flags and the environment",
  valueHint: "PATH",
} as const;

/** What `--help` and the docs show as a setting's default. */
export function defaultText(spec: Pick<SettingSpec, "fallback" | "defaultText">): string {
  return spec.defaultText ?? (spec.fallback === undefined || spec.fallback === "" ? "none" : spec.fallback);
}
