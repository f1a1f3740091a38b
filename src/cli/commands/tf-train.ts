import { join } from "node:path";
import type { Command } from "commander";
import { writeJsonAtomic } from "../../io/files.ts";
import { SOLVER_DEFAULTS } from "../../recipes/causal-scaffold/defaults.ts";
import { floatFlag, intFlag } from "../flags.ts";
import { addSolverOptions, createRuntime, type SolverOptions } from "../training-free-options.ts";

interface TrainCliOptions extends SolverOptions {
  epochs: number;
  rolloutsPerGenerator: number;
  datasets: string[];
  maxProblems?: number;
  useExistingExperiences?: boolean;
  temperature: number;
  criticTemperature: number;
  quiet?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command("tf-train")
    .description(
      "Training-free GRPO: per epoch, the three generators then the critic, each learning its experience library.\n" +
        "Without --use-existing-experiences the libraries start empty (existing ones are backed up first).",
    )
    .requiredOption("--datasets <names...>", "data set name(s) from the dataset config, or full")
    .option("--epochs <n>", "epochs over the problems", intFlag("--epochs", 1), SOLVER_DEFAULTS.numEpochs)
    .option(
      "--rollouts-per-generator <n>",
      "rollouts per problem and generator",
      intFlag("--rollouts-per-generator", 1),
      SOLVER_DEFAULTS.rolloutsPerGenerator,
    )
    .option("--max-problems <n>", "use at most this many problems", intFlag("--max-problems", 1))
    .option("--use-existing-experiences", "continue from the libraries on disk")
    .option(
      "--temperature <t>",
      "generator sampling temperature",
      floatFlag("--temperature", 0, 2),
      SOLVER_DEFAULTS.generatorTemperature,
    )
    .option(
      "--critic-temperature <t>",
      "critic sampling temperature",
      floatFlag("--critic-temperature", 0, 2),
      SOLVER_DEFAULTS.criticTemperature,
    )
    .option("--quiet", "no per-epoch log lines");
  addSolverOptions(cmd)
    .addHelpText(
      "after",
      "\nExample:\n" +
        "  grpo tf-train --epochs 2 --rollouts-per-generator 3 --datasets toy-math toy-physics --dataset-config examples/dataset_config.json\n" +
        "  (the data sets that ship in examples/; endpoints in data/api_keys/api_config.json)",
    )
    .action(async (opts: TrainCliOptions) => {
      const { TrainingFreeGRPOTrainer } = await import("../../recipes/causal-scaffold/trainer.ts");
      const rt = await createRuntime(
        opts,
        { generator: opts.temperature, critic: opts.criticTemperature },
        { plainProgress: true },
      );
      const problems = rt.loadProblems(opts.datasets, { max: opts.maxProblems });
      const trainer = new TrainingFreeGRPOTrainer({
        causalEngine: rt.engine,
        experienceManager: rt.experiences,
        rolloutsPerGenerator: opts.rolloutsPerGenerator,
        numEpochs: opts.epochs,
        useExistingExperiences: opts.useExistingExperiences,
        verbose: !opts.quiet,
      });
      try {
        const report = await trainer.train(problems);
        const path = join(rt.workdir, "grpo_training", "tf_train_report.json");
        writeJsonAtomic(path, report);
        console.log(`training report → ${path}`);
      } finally {
        rt.finish("tf-train");
      }
    });
}
