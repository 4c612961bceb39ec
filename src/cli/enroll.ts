/** `connector enroll`: exchange a provisioning key for this connector's identity. */
import { SECRET_SETTING_ENV_VARS } from "../config/settings.ts";
import { protectProcessSecrets } from "../host/process-secrets.ts";
import { enrollExclusively } from "../identity/enroll.ts";
import { KEY_ENV_VAR } from "../identity/key-source.ts";
import type { Command } from "./command.ts";
import { cliContext } from "./context.ts";
import { printOut } from "./io.ts";
import { GLOBAL_OPTIONS, PROXY_OPTIONS, KEY_OPTIONS, settingOptions } from "./options.ts";

const command: Command = {
  name: "enroll",
  about: [
    "The provisioning key is read from, first found: --key, --key-file, CONNECTOR_PROVISIONING_KEY, <state-dir>/provision_key.",
  ],
  options: [
    ...GLOBAL_OPTIONS,
    ...PROXY_OPTIONS,
    ...settingOptions("name"),
    ...KEY_OPTIONS,
    { name: "force", kind: "boolean", description: "Replace an existing identity" },
    { name: "json", kind: "boolean", description: "Print the result as JSON" },
  ],
  async run(args, io) {
    // Settings first (from the environment as given): a bad value is a usage error before anything changes.
    const { settings, log } = cliContext(args, io);
    const { env, problems } = protectProcessSecrets([KEY_ENV_VAR, ...SECRET_SETTING_ENV_VARS], io.env);
    for (const problem of problems) log.warn(problem);
    const result = await enrollExclusively({
      stateDir: settings.stateDir,
      key: args.string("key"),
      keyFile: args.string("key-file"),
      env,
      name: settings.name,
      force: args.flag("force"),
      proxy: settings.proxy,
      noProxy: settings.noProxy,
      log,
    });
    const { identity } = result;
    const notAfter = result.notAfter.toISOString();
    if (args.flag("json")) {
      const out = {
        connectorId: identity.connectorId,
        name: identity.name,
        group: identity.group,
        gateways: identity.gateways,
        certificate: { notAfter },
      };
      printOut(io, JSON.stringify(out, null, 2));
      return 0;
    }
    printOut(
      io,
      [
        `Enrolled connector ${identity.connectorId} "${identity.name}" in group ${identity.group}${result.replaced ? " (previous identity replaced)" : ""}.`,
        `Certificate valid until ${notAfter}; ${identity.gateways.length} gateway(s).`,
        `Identity stored in ${settings.stateDir}. Start the daemon: connector run (or systemctl start connector).`,
      ].join("\n"),
    );
    return 0;
  },
};
export default command;
