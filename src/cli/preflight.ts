/** `connector preflight`: host and network checks before install. Exit 0 no FAIL, 1 a FAIL, 2 usage. */
import { SECRET_SETTING_ENV_VARS } from "../config/settings.ts";
import { protectProcessSecrets } from "../host/process-secrets.ts";
import { KEY_ENV_VAR } from "../identity/key-source.ts";
import { runPreflight } from "../preflight/preflight.ts";
import { renderReport, reportExitCode } from "../preflight/report.ts";
import type { Command } from "./command.ts";
import { cliContext } from "./context.ts";
import { printOut } from "./io.ts";
import { GLOBAL_OPTIONS, PROXY_OPTIONS, KEY_OPTIONS, settingOptions } from "./options.ts";

const command: Command = {
  name: "preflight",
  about: [
    "Each check is PASS, WARN or FAIL with what to do about it. With a provisioning key it also checks that the cloud can be reached (only the key's cloud address and CA pin are used).",
    "Exit codes: 0 no check failed (warnings allowed), 1 a check failed, 2 usage error.",
  ],
  options: [
    ...GLOBAL_OPTIONS,
    ...PROXY_OPTIONS,
    // The name enroll will use: preflight checks it is a valid connector name.
    ...settingOptions("name"),
    ...KEY_OPTIONS,
    { name: "json", kind: "boolean", description: "Print the checks as JSON" },
  ],
  async run(args, io) {
    // Settings first (from the environment as given): a bad value is a usage error before anything changes.
    const { settings, log } = cliContext(args, io);
    const { env, problems } = protectProcessSecrets([KEY_ENV_VAR, ...SECRET_SETTING_ENV_VARS], io.env);
    for (const problem of problems) log.warn(problem);
    const report = await runPreflight({
      stateDir: settings.stateDir,
      key: args.string("key"),
      keyFile: args.string("key-file"),
      env,
      proxy: settings.proxy,
      noProxy: settings.noProxy,
      name: settings.name,
    });
    printOut(io, args.flag("json") ? JSON.stringify(report, null, 2) : renderReport(report));
    return reportExitCode(report);
  },
};
export default command;
