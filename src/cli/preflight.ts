/** `connector preflight`: host and network checks before install. Exit 0 no FAIL, 1 a FAIL, 2 usage. */
import { defineCommand } from "citty";
import { SECRET_SETTING_ENV_VARS } from "../config/settings.ts";
import { protectProcessSecrets } from "../host/process-secrets.ts";
import { KEY_ENV_VAR } from "../identity/key-source.ts";
import { runPreflight } from "../preflight/preflight.ts";
import { renderReport, reportExitCode } from "../preflight/report.ts";
import { cliContext, printOut } from "./context.ts";
import { globalArgs, proxyArgs } from "./global-args.ts";

export default defineCommand({
  meta: {
    name: "preflight",
    description: "Check that this host can run the connector (exit 0 ok or warnings, 1 a check failed, 2 usage)",
  },
  args: {
    ...globalArgs,
    ...proxyArgs,
    key: {
      type: "string",
      description: "Provisioning key cnk1.… (only its cloud address and CA pin are used; prefer --key-file)",
      valueHint: "KEY",
    },
    "key-file": { type: "string", description: "Read the provisioning key from this file", valueHint: "PATH" },
    json: { type: "boolean", description: "Print the checks as JSON" },
  },
  async run({ args }) {
    const { env, problems } = protectProcessSecrets([KEY_ENV_VAR, ...SECRET_SETTING_ENV_VARS]);
    const { settings, log } = cliContext(args, env);
    for (const problem of problems) log.warn(problem);
    const report = await runPreflight({
      stateDir: settings.stateDir,
      key: args.key,
      keyFile: args["key-file"],
      env,
      proxy: settings.proxy,
      noProxy: settings.noProxy,
      name: settings.name,
    });
    printOut(args.json ? JSON.stringify(report, null, 2) : renderReport(report));
    return reportExitCode(report);
  },
});
