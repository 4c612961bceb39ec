/** `connector preflight`: host and network checks before install. */
import { defineCommand } from "citty";
import { globalArgs } from "./global-args.ts";
import { unavailable } from "./unavailable.ts";

export default defineCommand({
  meta: { name: "preflight", description: "Check that this host can run the connector" },
  args: { ...globalArgs, json: { type: "boolean", description: "Print the checks as JSON" } },
  run() {
    unavailable("preflight", "the host and network checks");
  },
});
