/** `connector run`: the daemon. */
import { SECRET_SETTING_ENV_VARS } from "../config/settings.ts";
import { runDaemon } from "../daemon/assemble.ts";
import { takeHandoverRequest } from "../daemon/handover-child.ts";
import { protectProcessSecrets } from "../host/process-secrets.ts";
import { KEY_ENV_VAR } from "../identity/key-source.ts";
import type { Command } from "./command.ts";
import { cliContext } from "./context.ts";
import { GLOBAL_OPTIONS, PROXY_OPTIONS, settingOptions } from "./options.ts";

const command: Command = {
  name: "run",
  about: [
    "Runs in the foreground until SIGTERM or SIGINT, then lets open streams finish for the grace period. Not enrolled yet, it enrolls by itself with the provisioning key it finds (CONNECTOR_PROVISIONING_KEY, <state-dir>/provision_key).",
  ],
  options: [
    ...GLOBAL_OPTIONS,
    ...PROXY_OPTIONS,
    ...settingOptions(
      "tunnels",
      "gracePeriod",
      "dialTimeout",
      "maxStreams",
      "streamIdleTimeout",
      "metrics",
      "health",
      "name",
      "autoUpgrade",
      "channel",
      "manifestUrl",
      "pinVersion",
      "upgradeInterval",
      "upgradeWindow",
      "upgradeHealthTimeout",
    ),
  ],
  async run(args, io) {
    // Settings first (from the environment as given): a bad value is a usage error before anything changes.
    const { settings, log } = cliContext(args, io);
    const { env, problems } = protectProcessSecrets([KEY_ENV_VAR, ...SECRET_SETTING_ENV_VARS], io.env);
    // Taken out of the environment before anything else reads it: it is for this process only.
    const handover = takeHandoverRequest(env, { processEnv: io.env });
    for (const problem of problems) log.warn(problem);
    if (handover.problem) log.warn(handover.problem);
    return runDaemon({ settings, env, log, ...(handover.role ? { successor: handover.role } : {}) });
  },
};
export default command;
