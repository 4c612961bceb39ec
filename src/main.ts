/** Process entry point: the command line (src/cli/main.ts) with this process's streams and environment. */
import { processIo } from "./cli/io.ts";
import { run } from "./cli/main.ts";

process.exit(await run(process.argv.slice(2), processIo()));
