import type { Command } from "commander";
import { writeJsonAtomic } from "../../io/files.ts";
import { SOLVER_DEFAULTS } from "../../recipes/causal-scaffold/defaults.ts";
import { trainReportPath } from "../../recipes/causal-scaffold/paths.ts";
import { floatFlag, intFlag } from "../flags.ts";
import { addSolverOptions, runSolverCommand, type SolverOptions } from "../training-free-options.ts";

interface TrainCliOptions extends SolverOptions {
  epochs: number;
  rolloutsPerGenerator: number;
  datasets: string[];
  maxProblems?: number;
  useExistingExperiences?: boolean;
  restart?: boolean;
  temperature: number;
  criticTemperature: number;
  quiet?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command("tf-train")
    .description(
      "Training-free GRPO: per epoch, the three generators then the critic, each learning its experience library.\n" +
        "A rerun continues an interrupted run (same epoch, libraries as they were); --restart starts over.\n" +
        "A first run without --use-existing-experiences starts from empty libraries (existing ones are backed up).\n" +
        "Exit status 0 when every epoch completed, 2 when an epoch has failures (rerun to redo them), 1 on an error.",
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
    .option("--use-existing-experiences", "a first run starts from the libraries on disk")
    .option(
      "--restart",
      "start over: back up the earlier run (caches, progress, libraries) under grpo_training/backups/ first",
    )
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
      await runSolverCommand(
        "tf-train",
        opts,
        { generator: opts.temperature, critic: opts.criticTemperature },
        { plainProgress: true },
        async (rt) => {
          rt.lock(["generator_1", "generator_2", "generator_3", "critic"]);
          const problems = rt.loadProblems(opts.datasets, { max: opts.maxProblems });
          const trainer = new TrainingFreeGRPOTrainer({
            causalEngine: rt.engine,
            experienceManager: rt.experiences,
            rolloutsPerGenerator: opts.rolloutsPerGenerator,
            numEpochs: opts.epochs,
            useExistingExperiences: opts.useExistingExperiences,
            restart: opts.restart,
            // the decisions (continue, restart, incomplete epoch) are shown even with --quiet
            verbose: true,
            log: (line) => {
              if (!opts.quiet || !/^epoch \d+\/\d+: /.test(line)) console.log(line);
            },
          });
          const report = await trainer.train(problems);
          const path = trainReportPath(rt.workdir);
          writeJsonAtomic(path, report);
          console.log(`training report → ${path}`);
          const last = report.epochs.at(-1);
          return {
            complete: report.complete,
            incomplete: last
              ? `tf-train: epoch ${last.epoch} did not complete`
              : "tf-train: the run stopped before its first epoch",
          };
        },
      );
    });
}
