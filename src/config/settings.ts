/**
 * Settings resolution: each setting comes from its flag, else its environment variable(s),
 * else `/etc/connector/connector.env`, else its default. Values are validated with valibot; an
 * invalid one is reported with the setting's name and where the value came from, so an operator
 * knows which file or flag to fix.
 */
import * as v from "valibot";
import { SettingsError } from "../errors.ts";
import { readEnvFile } from "./env-file.ts";
import { VERSION_PATTERN } from "../version.ts";

export const DEFAULT_STATE_DIR = "/var/lib/connector";
export const DEFAULT_ENV_FILE = "/etc/connector/connector.env";

const LogLevel = v.picklist(["silent", "error", "warn", "info", "debug", "trace"]);
const LogFormat = v.picklist(["pretty", "json"]);
const ProxyUrl = v.pipe(
  v.string(),
  v.url("expected a URL such as http://proxy.example:3128"),
  // CONNECT to the proxy is plain HTTP; TLS to the proxy itself (https://) is not supported by the tunnels.
  v.check((s) => /^http:\/\//i.test(s), "expected an http:// proxy URL (https:// proxies are not supported)"),
);
const NoProxyList = v.pipe(
  v.string(),
  v.transform((s) =>
    s
      .split(",")
      .map((e) => e.trim())
      .filter((e) => e.length > 0),
  ),
);
const PositiveInt = (min: number, max: number) =>
  v.pipe(
    v.string(),
    v.regex(/^\d+$/, `expected a whole number from ${min} to ${max}`),
    v.transform(Number),
    v.minValue(min, `expected a whole number from ${min} to ${max}`),
    v.maxValue(max, `expected a whole number from ${min} to ${max}`),
  );
const ListenAddress = v.pipe(
  v.string(),
  v.regex(/^(\[[0-9a-fA-F:.]+\]|[0-9A-Za-z.-]+):\d{1,5}$/, "expected HOST:PORT, e.g. 127.0.0.1:9300"),
);
const NonEmpty = v.pipe(v.string(), v.trim(), v.minLength(1, "must not be empty"));
const OnOff = v.pipe(
  v.string(),
  v.transform((s) => s.trim().toLowerCase()),
  v.picklist(["on", "off"], "expected on or off"),
  v.transform((s) => s === "on"),
);
const ChannelName = v.pipe(
  v.string(),
  v.regex(/^[a-z0-9][a-z0-9-]{0,31}$/, "expected a channel name such as stable or beta"),
);
const HttpUrl = v.pipe(
  v.string(),
  v.url("expected a URL"),
  v.check((s) => /^https?:\/\//i.test(s), "expected an http:// or https:// URL"),
);
const VersionText = v.pipe(v.string(), v.regex(VERSION_PATTERN, "expected a version such as 1.4.2"));
const WindowText = v.pipe(
  v.string(),
  v.regex(/^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$/, "expected HH:MM-HH:MM in UTC, e.g. 02:00-05:00"),
);

/** One entry per setting: flag name, env vars in priority order, schema. Defaults are strings so
 * they go through the same validation as operator input. */
const SPEC = {
  stateDir: { flag: "state-dir", env: ["CONNECTOR_STATE_DIR"], schema: NonEmpty, fallback: DEFAULT_STATE_DIR },
  logLevel: { flag: "log-level", env: ["CONNECTOR_LOG_LEVEL"], schema: LogLevel, fallback: "info" },
  logFormat: { flag: "log-format", env: ["CONNECTOR_LOG_FORMAT"], schema: LogFormat, fallback: undefined },
  proxy: {
    flag: "proxy",
    env: ["CONNECTOR_PROXY", "HTTPS_PROXY", "https_proxy"],
    schema: ProxyUrl,
    fallback: undefined,
    secret: true,
  },
  noProxy: {
    flag: "proxy-bypass",
    env: ["CONNECTOR_NO_PROXY", "NO_PROXY", "no_proxy"],
    schema: NoProxyList,
    fallback: "",
  },
  tunnels: { flag: "tunnels", env: ["CONNECTOR_TUNNELS"], schema: PositiveInt(1, 16), fallback: "2" },
  gracePeriod: { flag: "grace-period", env: ["CONNECTOR_GRACE_PERIOD"], schema: PositiveInt(0, 3600), fallback: "30" },
  dialTimeout: { flag: "dial-timeout", env: ["CONNECTOR_DIAL_TIMEOUT"], schema: PositiveInt(1, 120), fallback: "10" },
  // Process-wide stream cap (src/dataplane/admission.ts explains the default); the fd limit may lower it.
  maxStreams: {
    flag: "max-streams",
    env: ["CONNECTOR_MAX_STREAMS"],
    schema: PositiveInt(1, 1_000_000),
    fallback: "20000",
  },
  // A week at most: a stream idle for longer is abandoned whatever the app; 0 turns the timeout off.
  streamIdleTimeout: {
    flag: "stream-idle-timeout",
    env: ["CONNECTOR_STREAM_IDLE_TIMEOUT"],
    schema: PositiveInt(0, 604_800),
    fallback: "3600",
  },
  metrics: { flag: "metrics", env: ["CONNECTOR_METRICS"], schema: ListenAddress, fallback: undefined },
  // Probes for orchestrators: /healthz and /readyz only, no app names, so it may listen off loopback.
  health: { flag: "health", env: ["CONNECTOR_HEALTH"], schema: ListenAddress, fallback: undefined },
  name: { flag: "name", env: ["CONNECTOR_NAME"], schema: NonEmpty, fallback: undefined },
  // Upgrades (docs/OPERATIONS.md "Upgrades"): where releases come from and when the daemon takes them.
  autoUpgrade: { flag: "auto-upgrade", env: ["CONNECTOR_AUTO_UPGRADE"], schema: OnOff, fallback: "on" },
  channel: { flag: "channel", env: ["CONNECTOR_CHANNEL"], schema: ChannelName, fallback: "stable" },
  manifestUrl: { flag: "manifest-url", env: ["CONNECTOR_MANIFEST_URL"], schema: HttpUrl, fallback: undefined },
  pinVersion: { flag: "pin-version", env: ["CONNECTOR_PIN_VERSION"], schema: VersionText, fallback: undefined },
  // Seconds between checks, ±20 % jitter so a fleet does not ask at the same instant.
  upgradeInterval: {
    flag: "upgrade-interval",
    env: ["CONNECTOR_UPGRADE_INTERVAL"],
    schema: PositiveInt(10, 30 * 86_400),
    fallback: "21600",
  },
  upgradeWindow: { flag: "upgrade-window", env: ["CONNECTOR_UPGRADE_WINDOW"], schema: WindowText, fallback: undefined },
  // How long a new version gets to bring its tunnels up during a hand-over before it is killed.
  upgradeHealthTimeout: {
    flag: "upgrade-health-timeout",
    env: ["CONNECTOR_UPGRADE_HEALTH_TIMEOUT"],
    schema: PositiveInt(1, 3600),
    fallback: "120",
  },
} as const;

type Spec = typeof SPEC;
export type SettingName = keyof Spec;

/** Environment variables of settings that may hold a password (the proxy URL): scrubbed from the
 * process environment at start (src/host/process-secrets.ts); settings read them from the copy. */
export const SECRET_SETTING_ENV_VARS: readonly string[] = Object.values(SPEC).flatMap((spec) =>
  "secret" in spec ? [...spec.env] : [],
);
export type Settings = {
  [K in SettingName]: Spec[K]["fallback"] extends string
    ? v.InferOutput<Spec[K]["schema"]>
    : v.InferOutput<Spec[K]["schema"]> | undefined;
} & { logFormat: "pretty" | "json" };

export interface SettingsInput {
  /** Parsed flags by flag name (e.g. `state-dir`); undefined means not given. */
  flags: Record<string, string | undefined>;
  env: Record<string, string | undefined>;
  /** Path of the env file; `CONNECTOR_ENV_FILE` or the default when omitted. */
  envFile?: string;
  isTTY: boolean;
}

export type SettingSource = "flag" | "env" | "env-file" | "default";

function pick(
  spec: Spec[SettingName],
  input: SettingsInput,
  fileValues: Record<string, string>,
  envFile: string,
): { value: string | undefined; source: SettingSource; origin: string } {
  const flagValue = input.flags[spec.flag];
  if (flagValue !== undefined) return { value: flagValue, source: "flag", origin: `flag --${spec.flag}` };
  for (const name of spec.env) {
    const value = input.env[name];
    if (value !== undefined && value !== "") return { value, source: "env", origin: `environment variable ${name}` };
  }
  for (const name of spec.env) {
    const value = fileValues[name];
    if (value !== undefined && value !== "") return { value, source: "env-file", origin: `${name} in ${envFile}` };
  }
  return { value: spec.fallback, source: "default", origin: "default" };
}

export function resolveSettings(input: SettingsInput): {
  settings: Settings;
  sources: Record<SettingName, SettingSource>;
} {
  const envFile = input.envFile ?? input.env.CONNECTOR_ENV_FILE ?? DEFAULT_ENV_FILE;
  const fileValues = readEnvFile(envFile);
  const settings: Record<string, unknown> = {};
  const sources: Record<string, SettingSource> = {};
  for (const [name, spec] of Object.entries(SPEC) as [SettingName, Spec[SettingName]][]) {
    const { value, source, origin } = pick(spec, input, fileValues, envFile);
    sources[name] = source;
    if (value === undefined) {
      settings[name] = undefined;
      continue;
    }
    const result = v.safeParse(spec.schema, value);
    if (!result.success) {
      const reason = result.issues[0]?.message ?? "invalid value";
      // A proxy URL may carry a password anywhere a parser could misread it (one with a "/" does not
      // look like userinfo at all): such a value is never echoed, only named with its source.
      const shown = "secret" in spec ? "(value not shown: it may hold a password)" : `= ${JSON.stringify(value)}`;
      throw new SettingsError(`Invalid setting ${spec.flag} ${shown} (from ${origin}): ${reason}`);
    }
    settings[name] = result.output;
  }
  settings.logFormat ??= input.isTTY ? "pretty" : "json";
  return { settings: settings as Settings, sources: sources as Record<SettingName, SettingSource> };
}
