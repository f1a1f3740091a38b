import { Command } from "commander";
import { commands } from "./commands/index.ts";
import { configureHelpLayout } from "./help.ts";

/** The whole `grpo` command tree, without running it (main.ts runs it; tests read its help). */
export function buildProgram(): Command {
  const program = configureHelpLayout(new Command("grpo"))
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
