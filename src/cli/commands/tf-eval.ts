import { join, resolve } from "node:path";
import type { Command } from "commander";
import { writeJsonAtomic } from "../../io/files.ts";
import { summarizeUsage } from "../../llm/index.ts";
import { SOLVER_DEFAULTS } from "../../recipes/causal-scaffold/defaults.ts";
import { GENERATOR_IDS, type GeneratorId } from "../../recipes/causal-scaffold/rewards.ts";
import { floatFlag, intFlag } from "../flags.ts";
import {
  addProblemRangeOptions,
  addSolverOptions,
  parseGeneratorList,
  runSolverCommand,
  type SolverOptions,
} from "../training-free-options.ts";

interface EvalCliOptions extends SolverOptions {
  datasets: string[];
  maxProblems?: number;
  startProblem: number;
  k: number;
  generators: GeneratorId[];
  temperature: number;
  output?: string;
}

export function register(program: Command): void {
  const cmd = program
    .command("tf-eval")
    .description(
      "A/B evaluation of the learned libraries: Mean@k and Pass@k with and without the experiences on the same\n" +
        "problems, plus the learning cost (tokens, calls, USD) of the recorded training runs.",
    )
    .requiredOption("--datasets <names...>", "data set name(s) from the dataset config, or full")
    .option("--k <n>", "rollouts per problem (Mean@k, Pass@k)", intFlag("--k", 1), 3)
    .option(
      "--generators <list>",
      "comma list of generators to evaluate",
      parseGeneratorList("--generators"),
      [...GENERATOR_IDS],
    )
    .option(
      "--temperature <t>",
      "generator sampling temperature",
      floatFlag("--temperature", 0, 2),
      SOLVER_DEFAULTS.generatorTemperature,
    )
    .option("--output <path>", "result file (default <workdir>/grpo_training/tf_eval_results.json)");
  addSolverOptions(addProblemRangeOptions(cmd, "evaluate", { shard: false }))
    .addHelpText(
      "after",
      "\nExample:\n" +
        "  grpo tf-eval --datasets toy-physics --dataset-config examples/dataset_config.json --k 3 --generators 1,2,3\n" +
        "  (after tf-train; the data set that ships in examples/)",
    )
    .action(async (opts: EvalCliOptions) => {
      const { evaluate } = await import("../../recipes/causal-scaffold/evaluate.ts");
      await runSolverCommand(
        "tf-eval",
        opts,
        { generator: opts.temperature },
        { plainProgress: true },
        async (rt) => {
          const problems = rt.loadProblems(opts.datasets, {
            start: opts.startProblem,
            max: opts.maxProblems,
          });
          const stamp = rt.startedAt.toISOString().replace(/[:.]/g, "-");
          const result = await evaluate({
            engine: rt.engine,
            experiences: rt.experiences,
            problems,
            k: opts.k,
            generators: opts.generators,
            outDir: join(rt.workdir, "grpo_training", "eval", stamp),
          });
          const evalCost = summarizeUsage(Object.values(rt.clients).map((c) => c.stats()));
          const path = opts.output
            ? resolve(opts.output)
            : join(rt.workdir, "grpo_training", "tf_eval_results.json");
          writeJsonAtomic(path, { ...result, eval_cost: evalCost });
          const w = result.with_experiences.overall;
          const wo = result.without_experiences.overall;
          console.log(
            `with experiences: Mean@${opts.k}=${w.meanAtK.toFixed(3)} Pass@${opts.k}=${w.passAtK.toFixed(3)}; ` +
              `without: Mean@${opts.k}=${wo.meanAtK.toFixed(3)} Pass@${opts.k}=${wo.passAtK.toFixed(3)} ` +
              `on ${result.problems.length} problems (${result.failed_problems.length} left out: failed); ` +
              `learning cost ${result.learning_cost.total.calls} calls, ` +
              `${result.learning_cost.total.promptTokens + result.learning_cost.total.completionTokens} tokens, ` +
              `$${result.learning_cost.total.costUSD.toFixed(4)} → ${path}`,
          );
          return {
            complete: result.failed_problems.length === 0,
            incomplete: `tf-eval: ${result.failed_problems.length} of ${result.failed_problems.length + result.problems.length} problems failed in some arm and are left out of the figures (${result.failed_problems.slice(0, 5).join(", ")})`,
          };
        },
      );
    });
}
