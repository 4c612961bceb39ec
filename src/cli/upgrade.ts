/** `connector upgrade`: signed, atomic binary upgrades and rollback. */
import { defineCommand } from "citty";
import { ExitCode, UsageError } from "../errors.ts";
import { trustedRoots } from "../upgrade/trust-roots.ts";
import { applyStagedNow, checkNow, rollbackNow, upgradeNow, type ManualContext } from "../upgrade/manual.ts";
import { renderCheck, renderOutcome, renderResult } from "../upgrade/render.ts";
import type { UpgradeResult } from "../upgrade/staging.ts";
import { buildInfo } from "../version.ts";
import { cliContext, printOut } from "./context.ts";
import { globalArgs, proxyArgs } from "./global-args.ts";

export default defineCommand({
  meta: {
    name: "upgrade",
    description: [
      "Take the channel's signed release now, --check what the daemon would do, or --rollback.",
      "A release is taken only when a release key vouched for by two of the root keys built into this binary signed its manifest,",
      "its sequence and version are not below what this connector accepted, its signature has not expired, and the binary has",
      "the signed size and SHA-256 and runs --version as the manifest says; the release host, the network and the daemon",
      "itself cannot make it install anything else. The swap is atomic; the old binary is kept as connector.prev.",
      "The daemon upgrades by itself: `connector run` settings --channel, --pin-version, --upgrade-window HH:MM-HH:MM (UTC),",
      "--upgrade-interval, --auto-upgrade off; a release that does not come up is rolled back and skipped.",
      'Exit 24 when a release is refused; the code in brackets says why (docs/OPERATIONS.md "Upgrades").',
    ].join(" "),
  },
  args: {
    ...globalArgs,
    ...proxyArgs,
    check: {
      type: "boolean",
      description: "Fetch and verify the channel's release and say what would happen and why; change nothing",
    },
    version: {
      type: "string",
      description: "Take exactly this version, even an older one (a downgrade needs a manifest signed for it)",
      valueHint: "V",
    },
    rollback: { type: "boolean", description: "Put connector.prev back and mark the current version skipped" },
    "apply-staged": {
      type: "boolean",
      description: "Verify and install the release the daemon staged (run by the root upgrade unit)",
    },
    "manifest-url": {
      type: "string",
      description: "The channel's manifest.json (env CONNECTOR_MANIFEST_URL; default: the release host built in)",
      valueHint: "URL",
    },
    channel: {
      type: "string",
      description: "Release channel (default stable, env CONNECTOR_CHANNEL)",
      valueHint: "NAME",
    },
    json: { type: "boolean", description: "Print the result as JSON" },
  },
  async run({ args }) {
    const modes = [args.check, args.rollback, args["apply-staged"]].filter(Boolean).length;
    if (modes > 1) throw new UsageError("--check, --rollback and --apply-staged are separate actions: give one.");
    if (args.version !== undefined && modes > 0)
      throw new UsageError(
        "--version goes with a plain `connector upgrade`, not with --check, --rollback or --apply-staged.",
      );
    const { settings } = cliContext(args);
    const ctx: ManualContext = {
      settings,
      installed: process.execPath,
      roots: trustedRoots,
      running: { version: buildInfo.version, target: buildInfo.target },
      now: () => new Date(),
    };
    const print = (text: string, json: unknown) => printOut(args.json ? JSON.stringify(json, null, 2) : text);
    const finish = (result: UpgradeResult) => {
      const ok = result.result === "swapped" || result.result === "rolled-back";
      // A refusal reads like every other error: on stderr, with its code in brackets.
      if (ok || args.json) print(renderResult(result), result);
      else process.stderr.write(`error: ${renderResult(result)}\n`);
      return ok ? ExitCode.ok : ExitCode.upgradeRefused;
    };
    if (args.check) {
      const report = await checkNow(ctx);
      // The fetched bytes are not part of the answer.
      const { files: _bytes, ...check } = report.check as typeof report.check & { files?: unknown };
      print(renderCheck(report), { ...report, check });
      return ExitCode.ok;
    }
    if (args["apply-staged"]) {
      const result = await applyStagedNow(ctx);
      if (result) return finish(result);
      print("Nothing to apply: no upgrade request in the state dir.", { result: "nothing-requested" });
      return ExitCode.ok;
    }
    if (args.rollback) return finish(await rollbackNow(ctx));
    const outcome = await upgradeNow(ctx, args.version);
    if (outcome.kind === "result") return finish(outcome.result);
    print(renderOutcome(outcome), outcome);
    return ExitCode.ok;
  },
});
