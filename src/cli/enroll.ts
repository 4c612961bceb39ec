/** `connector enroll`: exchange a provisioning key for this connector's identity. */
import { defineCommand } from "citty";
import { SECRET_SETTING_ENV_VARS } from "../config/settings.ts";
import { protectProcessSecrets } from "../host/process-secrets.ts";
import { enrollExclusively } from "../identity/enroll.ts";
import { KEY_ENV_VAR } from "../identity/key-source.ts";
import { cliContext, printOut } from "./context.ts";
import { globalArgs, proxyArgs } from "./global-args.ts";

export default defineCommand({
  meta: { name: "enroll", description: "Enroll this connector with a provisioning key (generates its key pair here)" },
  args: {
    ...globalArgs,
    ...proxyArgs,
    key: {
      type: "string",
      description:
        "Provisioning key cnk1.… (other users can see argv: prefer --key-file or CONNECTOR_PROVISIONING_KEY)",
      valueHint: "KEY",
    },
    "key-file": { type: "string", description: "Read the provisioning key from this file", valueHint: "PATH" },
    name: {
      type: "string",
      description: "Connector name (env CONNECTOR_NAME; default: the hostname, cut to 63 characters)",
      valueHint: "NAME",
    },
    force: { type: "boolean", description: "Replace an existing identity" },
    json: { type: "boolean", description: "Print the result as JSON" },
  },
  async run({ args }) {
    const { env, problems } = protectProcessSecrets([KEY_ENV_VAR, ...SECRET_SETTING_ENV_VARS]);
    const { settings, log } = cliContext(args, env);
    for (const problem of problems) log.warn(problem);
    const result = await enrollExclusively({
      stateDir: settings.stateDir,
      key: args.key,
      keyFile: args["key-file"],
      env,
      name: settings.name,
      force: Boolean(args.force),
      proxy: settings.proxy,
      noProxy: settings.noProxy,
      log,
    });
    const { identity } = result;
    const notAfter = result.notAfter.toISOString();
    if (args.json) {
      const out = {
        connectorId: identity.connectorId,
        name: identity.name,
        group: identity.group,
        gateways: identity.gateways,
        certificate: { notAfter },
      };
      printOut(JSON.stringify(out, null, 2));
      return;
    }
    printOut(
      [
        `Enrolled connector ${identity.connectorId} "${identity.name}" in group ${identity.group}${result.replaced ? " (previous identity replaced)" : ""}.`,
        `Certificate valid until ${notAfter}; ${identity.gateways.length} gateway(s).`,
        `Identity stored in ${settings.stateDir}. Start the daemon: connector run (or systemctl start connector).`,
      ].join("\n"),
    );
  },
});
