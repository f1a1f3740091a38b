import { Command, CommanderError } from "commander";
import { commands } from "./commands/index.ts";

export function buildProgram(): Command {
  const program = new Command("grpo")
    .description(
      "Group Relative Policy Optimization for TypeScript.\n" +
        "Training-free GRPO (experience libraries for frozen LLMs behind any OpenAI-compatible endpoint)\n" +
        "and parametric GRPO (real gradients on an in-process transformer policy).",
    )
    .version("0.1.0")
    .showHelpAfterError("(run with --help for usage)");
  for (const register of commands) register(program);
  return program;
}

async function main(): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    // User-facing failures carry their own message; a stack trace would bury it.
    console.error(`grpo: ${(err as Error).message}`);
    if (process.env.GRPO_DEBUG) console.error((err as Error).stack);
    const code = (err as { exitCode?: unknown }).exitCode;
    process.exit(typeof code === "number" && code > 0 ? code : 1);
  }
}

await main();
