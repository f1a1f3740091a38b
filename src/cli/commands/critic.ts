import type { Command } from "commander";
import { SOLVER_DEFAULTS } from "../../recipes/causal-scaffold/defaults.ts";
import { floatFlag, intFlag } from "../flags.ts";
import { addSolverOptions, runSolverCommand, type SolverOptions } from "../training-free-options.ts";

interface CriticCliOptions extends SolverOptions {
  temperature: number;
  maxProblems?: number;
}

export function register(program: Command): void {
  const cmd = program
    .command("critic")
    .description(
      "Fuse each generator's rollouts per problem into one scaffold, score the fusion and learn critic lessons.\n" +
        "Reads grpo_training/cache/generator_{1,2,3}_rollouts.jsonl; appends grpo_training/cache/critic_results.jsonl.",
    )
    .option(
      "--temperature <t>",
      "sampling temperature of the fusion requests",
      floatFlag("--temperature", 0, 2),
      SOLVER_DEFAULTS.criticTemperature,
    )
    .option("--max-problems <n>", "fuse at most this many problems", intFlag("--max-problems", 1));
  addSolverOptions(cmd)
    .addHelpText(
      "after",
      "\nExample:\n  grpo critic --temperature 0 --max-problems 3\n  (after grpo generators, in the same working directory)",
    )
    .action(async (opts: CriticCliOptions) => {
      await runSolverCommand("critic", opts, { critic: opts.temperature }, {}, async (rt) => {
        rt.lock(["critic"]);
        const s = await rt.engine.runCritic({ experiences: rt.experiences, maxProblems: opts.maxProblems });
        const { passComplete, passLine } = await import("../../recipes/causal-scaffold/failures.ts");
        console.log(
          `${passLine("critic", s)}; ${s.fused} fusions (${s.failedFusions} failed, ${s.waitingForGenerators} waiting for a generator) → ${s.resultsPath}`,
        );
        return {
          complete: passComplete(s),
          incomplete: `critic: ${s.failed + s.skipped} of ${s.requested} problems did not complete`,
        };
      });
    });
}
