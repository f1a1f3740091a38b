import { CommanderError } from "commander";
import { buildProgram } from "./program.ts";
import { stopAllProgress } from "./progress.ts";

async function main(): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    // A bar still on screen would share its line with the message.
    stopAllProgress();
    // User-facing failures carry their own message; a stack trace would bury it.
    console.error(`grpo: ${(err as Error).message}`);
    if (process.env.GRPO_DEBUG) console.error((err as Error).stack);
    const code = (err as { exitCode?: unknown }).exitCode;
    process.exit(typeof code === "number" && code > 0 ? code : 1);
  }
}

await main();
