/** `connector run`: the daemon. */
import { defineCommand } from "citty";
import { SECRET_SETTING_ENV_VARS } from "../config/settings.ts";
import { runDaemon } from "../daemon/assemble.ts";
import { takeHandoverRequest } from "../daemon/handover-child.ts";
import { protectProcessSecrets } from "../host/process-secrets.ts";
import { KEY_ENV_VAR } from "../identity/key-source.ts";
import { cliContext } from "./context.ts";
import { globalArgs, proxyArgs } from "./global-args.ts";

export default defineCommand({
  meta: { name: "run", description: "Run the connector: keep tunnels to the cloud and relay streams to private apps" },
  args: {
    ...globalArgs,
    ...proxyArgs,
    tunnels: {
      type: "string",
      description: "Tunnels to keep up, to distinct gateways (default 2, env CONNECTOR_TUNNELS)",
      valueHint: "N",
    },
    "grace-period": {
      type: "string",
      description: "Seconds open streams get to finish on SIGTERM (default 30)",
      valueHint: "SECONDS",
    },
    "dial-timeout": {
      type: "string",
      description: "Seconds to reach an app before a stream fails TIMEOUT (default 10)",
      valueHint: "SECONDS",
    },
    "max-streams": {
      type: "string",
      description:
        "Streams open at once over all tunnels; more are answered BUSY (default 20000, lowered to fit the fd limit; env CONNECTOR_MAX_STREAMS)",
      valueHint: "N",
    },
    "stream-idle-timeout": {
      type: "string",
      description:
        "Seconds a stream may move no data before it is reset (default 3600, 0 = never; env CONNECTOR_STREAM_IDLE_TIMEOUT)",
      valueHint: "SECONDS",
    },
    metrics: {
      type: "string",
      description: "Serve Prometheus metrics, /healthz and /readyz on HOST:PORT (env CONNECTOR_METRICS)",
      valueHint: "HOST:PORT",
    },
    health: {
      type: "string",
      description: "Serve only /healthz and /readyz on HOST:PORT, for orchestrator probes (env CONNECTOR_HEALTH)",
      valueHint: "HOST:PORT",
    },
    name: { type: "string", description: "Name to enroll under when enrolling by itself (default: hostname)" },
    "auto-upgrade": {
      type: "string",
      description: "on|off: take signed releases by itself (default on; env CONNECTOR_AUTO_UPGRADE)",
      valueHint: "on|off",
    },
    channel: {
      type: "string",
      description: "Release channel (default stable; env CONNECTOR_CHANNEL)",
      valueHint: "NAME",
    },
    "manifest-url": {
      type: "string",
      description: "The channel's manifest.json (default: the release host built in; env CONNECTOR_MANIFEST_URL)",
      valueHint: "URL",
    },
    "pin-version": {
      type: "string",
      description: "Take only this release version (env CONNECTOR_PIN_VERSION)",
      valueHint: "V",
    },
    "upgrade-interval": {
      type: "string",
      description: "Seconds between release checks, ±20 % jitter (default 21600; env CONNECTOR_UPGRADE_INTERVAL)",
      valueHint: "SECONDS",
    },
    "upgrade-window": {
      type: "string",
      description: "Take releases only within HH:MM-HH:MM UTC (env CONNECTOR_UPGRADE_WINDOW)",
      valueHint: "HH:MM-HH:MM",
    },
    "upgrade-health-timeout": {
      type: "string",
      description:
        "Seconds a new version gets to bring its tunnels up when it takes over, before it is stopped (default 120; env CONNECTOR_UPGRADE_HEALTH_TIMEOUT)",
      valueHint: "SECONDS",
    },
  },
  async run({ args }) {
    const { env, problems } = protectProcessSecrets([KEY_ENV_VAR, ...SECRET_SETTING_ENV_VARS]);
    // Taken out of the environment before anything else reads it: it is for this process only.
    const handover = takeHandoverRequest(env);
    const { settings, log } = cliContext(args, env);
    for (const problem of problems) log.warn(problem);
    if (handover.problem) log.warn(handover.problem);
    return runDaemon({ settings, env, log, ...(handover.role ? { successor: handover.role } : {}) });
  },
});
