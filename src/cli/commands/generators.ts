import type { Command } from "commander";
import { GENERATOR_IDS, type GeneratorId } from "../../recipes/causal-scaffold/rewards.ts";
import {
  addGeneratorOptions,
  addProblemRangeOptions,
  addSolverOptions,
  parseGeneratorList,
  runSolverCommand,
  type SolverOptions,
} from "../training-free-options.ts";

interface GeneratorsCliOptions extends SolverOptions {
  all?: boolean;
  ids?: GeneratorId[];
  dataset: string[];
  maxProblems?: number;
  startProblem: number;
  rollouts: number;
  temperature: number;
}

export function register(program: Command): void {
  const cmd = program
    .command("generators")
    .description(
      "Run several generators at once in one process. Each owns its rollout cache and experience library,\n" +
        "so they never write the same file.",
    )
    .option("--all", "run generators 1, 2 and 3")
    .option("--ids <list>", "comma list of generators to run, e.g. 1,3", parseGeneratorList("--ids"));
  addSolverOptions(
    addProblemRangeOptions(addGeneratorOptions(cmd, "rollouts per problem and generator"), "solve"),
  )
    .addHelpText(
      "after",
      "\nExample:\n" +
        "  grpo generators --all --dataset toy-math --dataset-config examples/dataset_config.json --rollouts 3 --concurrency 8\n" +
        "  (the data set that ships in examples/; endpoints in data/api_keys/api_config.json)",
    )
    .action(async (opts: GeneratorsCliOptions) => {
      if (!opts.all && !opts.ids) throw new Error("generators: pass --all or --ids <list>");
      const ids: GeneratorId[] = opts.all ? [...GENERATOR_IDS] : opts.ids!;
      await runSolverCommand(
        "generators",
        opts,
        { generator: opts.temperature },
        { plainProgress: ids.length > 1 },
        async (rt) => {
          rt.lock(ids.map((id) => `generator_${id}`));
          const problems = rt.loadProblems(opts.dataset, { start: opts.startProblem, max: opts.maxProblems });
          const all = await rt.engine.runGenerators(
            { problems, rollouts: opts.rollouts, experiences: rt.experiences },
            ids,
          );
          const { passComplete, passLine } = await import("../../recipes/causal-scaffold/failures.ts");
          for (const s of all) console.log(`${passLine(`generator_${s.generator}`, s)} → ${s.cachePath}`);
          const short = all.filter((s) => !passComplete(s));
          return {
            complete: short.length === 0,
            incomplete: short
              .map(
                (s) =>
                  `generator_${s.generator}: ${s.failed + s.skipped} of ${s.requested} problems did not complete`,
              )
              .join("; "),
          };
        },
      );
    });
}
