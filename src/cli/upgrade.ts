/** `connector upgrade`: signed, atomic binary upgrades and rollback. */
import { ExitCode, UsageError } from "../errors.ts";
import { trustedRoots } from "../upgrade/trust-roots.ts";
import { applyStagedNow, checkNow, rollbackNow, upgradeNow, type ManualContext } from "../upgrade/manual.ts";
import { renderCheck, renderOutcome, renderResult } from "../upgrade/render.ts";
import type { UpgradeResult } from "../upgrade/staging.ts";
import { buildInfo, VERSION_PATTERN } from "../version.ts";
import type { Command } from "./command.ts";
import { cliContext } from "./context.ts";
import { printOut } from "./io.ts";
import { GLOBAL_OPTIONS, PROXY_OPTIONS, settingOptions } from "./options.ts";

const command: Command = {
  name: "upgrade",
  about: [
    "A release is taken only when a release key vouched for by two of the root keys built into this binary signed its manifest, its sequence and version are not below what this connector accepted, its signature has not expired, and the binary has the signed size and SHA-256 and runs --version as the manifest says; the release host, the network and the daemon itself cannot make it install anything else. The swap is atomic; the old binary is kept as connector.prev.",
    "The daemon upgrades by itself: `connector run` settings --channel, --pin-version, --upgrade-window HH:MM-HH:MM (UTC), --upgrade-interval, --auto-upgrade off; a release that does not come up is rolled back and skipped.",
    'Exit codes: 0 done (or nothing to do), 2 usage error, 24 a release was refused; the code in brackets says why (docs/OPERATIONS.md "Upgrades").',
  ],
  options: [
    ...GLOBAL_OPTIONS,
    ...PROXY_OPTIONS,
    ...settingOptions("manifestUrl", "channel"),
    {
      name: "check",
      kind: "boolean",
      description: "Fetch and verify the channel's release and say what would happen and why; change nothing",
    },
    {
      name: "version",
      kind: "string",
      description: "Take exactly this version, even an older one (a downgrade needs a manifest signed for it)",
      valueHint: "V",
      check: (value) => (VERSION_PATTERN.test(value) ? undefined : "expected a version such as 1.4.2"),
    },
    { name: "rollback", kind: "boolean", description: "Put connector.prev back and mark the current version skipped" },
    {
      name: "apply-staged",
      kind: "boolean",
      description: "Verify and install the release the daemon staged (run by the root upgrade unit)",
    },
    { name: "json", kind: "boolean", description: "Print the result as JSON" },
  ],
  async run(args, io) {
    const modes = [args.flag("check"), args.flag("rollback"), args.flag("apply-staged")].filter(Boolean).length;
    if (modes > 1) throw new UsageError("--check, --rollback and --apply-staged are separate actions: give one.");
    const version = args.string("version");
    if (version !== undefined && modes > 0)
      throw new UsageError(
        "--version goes with a plain `connector upgrade`, not with --check, --rollback or --apply-staged.",
      );
    const { settings } = cliContext(args, io);
    const ctx: ManualContext = {
      settings,
      installed: io.execPath,
      roots: trustedRoots,
      running: { version: buildInfo.version, target: buildInfo.target },
      now: () => new Date(),
    };
    const json = args.flag("json");
    const print = (text: string, value: unknown) => printOut(io, json ? JSON.stringify(value, null, 2) : text);
    const finish = (result: UpgradeResult) => {
      const ok = result.result === "swapped" || result.result === "rolled-back";
      // A refusal reads like every other error: on stderr, with its code in brackets.
      if (ok || json) print(renderResult(result), result);
      else io.stderr(`error: ${renderResult(result)}\n`);
      return ok ? ExitCode.ok : ExitCode.upgradeRefused;
    };
    if (args.flag("check")) {
      const report = await checkNow(ctx);
      // The fetched bytes are not part of the answer.
      const { files: _bytes, ...check } = report.check as typeof report.check & { files?: unknown };
      print(renderCheck(report), { ...report, check });
      return ExitCode.ok;
    }
    if (args.flag("apply-staged")) {
      const result = await applyStagedNow(ctx);
      if (result) return finish(result);
      print("Nothing to apply: no upgrade request in the state dir.", { result: "nothing-requested" });
      return ExitCode.ok;
    }
    if (args.flag("rollback")) return finish(await rollbackNow(ctx));
    const outcome = await upgradeNow(ctx, version);
    if (outcome.kind === "result") return finish(outcome.result);
    print(renderOutcome(outcome), outcome);
    return ExitCode.ok;
  },
};
export default command;
