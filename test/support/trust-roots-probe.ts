/** Compiled by test/scripts/build-trust-roots.test.ts through build.ts: prints what the build embedded. */
import { releaseBaseUrl, rootIds, trustedRoots } from "../../src/upgrade/trust-roots.ts";

console.log(JSON.stringify({ trustedRoots, rootIds: rootIds(), releaseBaseUrl: releaseBaseUrl ?? null }));
