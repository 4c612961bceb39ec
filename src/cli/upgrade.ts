/** `connector upgrade`: signed, atomic binary upgrades. */
import { defineCommand } from "citty";
import { globalArgs } from "./global-args.ts";
import { unavailable } from "./unavailable.ts";

export default defineCommand({
  meta: { name: "upgrade", description: "Verify a signed release manifest and swap the binary atomically" },
  args: { ...globalArgs },
  run() {
    unavailable("upgrade", "verified upgrades from a signed manifest");
  },
});
