import { type Command, InvalidArgumentError } from "commander";
import type { GeneratorId } from "../../recipes/causal-scaffold/rewards.ts";
import {
  addGeneratorOptions,
  addProblemRangeOptions,
  addSolverOptions,
  runSolverCommand,
  type SolverOptions,
} from "../training-free-options.ts";

interface GeneratorCliOptions extends SolverOptions {
  id: GeneratorId;
  dataset: string[];
  maxProblems?: number;
  startProblem: number;
  rollouts: number;
  temperature: number;
}

function parseGeneratorId(v: string): GeneratorId {
  if (v === "1" || v === "2" || v === "3") return Number(v) as GeneratorId;
  throw new InvalidArgumentError(`--id must be 1, 2 or 3, got "${v}"`);
}

export function register(program: Command): void {
  const cmd = program
    .command("generator")
    .description(
      "Run one training-free generator: N causal-scaffold rollouts per problem, rewards, experience updates.\n" +
        "Appends one line per problem to grpo_training/cache/generator_<id>_rollouts.jsonl; a rerun redoes exactly\n" +
        "what failed. Exit status 0 when every problem completed, 2 when some failed, 1 on an error.",
    )
    .requiredOption("--id <n>", "generator 1, 2 or 3", parseGeneratorId);
  addSolverOptions(
    addProblemRangeOptions(addGeneratorOptions(cmd, "rollouts per problem (the group)"), "solve"),
  )
    .addHelpText(
      "after",
      "\nExample:\n" +
        "  grpo generator --id 1 --dataset toy-math --dataset-config examples/dataset_config.json --max-problems 3 --rollouts 3\n" +
        "  (the data set that ships in examples/; endpoints in data/api_keys/api_config.json)",
    )
    .action(async (opts: GeneratorCliOptions) => {
      const agent = `generator_${opts.id}`;
      await runSolverCommand(agent, opts, { generator: opts.temperature }, {}, async (rt) => {
        rt.lock([agent]);
        const problems = rt.loadProblems(opts.dataset, { start: opts.startProblem, max: opts.maxProblems });
        const s = await rt.engine.runGenerator(opts.id, {
          problems,
          rollouts: opts.rollouts,
          experiences: rt.experiences,
        });
        const { passComplete, passLine } = await import("../../recipes/causal-scaffold/failures.ts");
        console.log(`${passLine(agent, s)} → ${s.cachePath}`);
        return {
          complete: passComplete(s),
          incomplete: `${agent}: ${s.failed + s.skipped} of ${s.requested} problems did not complete`,
        };
      });
    });
}
