import { type Command, Option } from "commander";
import {
  DISCOVERY_THEORY_RUN,
  LEARNING_THEORY_RUN,
  QUICK_RUN_MEASURED,
  QUICK_RUN_SECONDS,
  QUICK_THEORY_RUN,
  THEORY_GRPO_KEYS,
  type TheoryRunOptions,
} from "../../recipes/theory/presets.ts";
import { floatFlag, intFlag } from "../flags.ts";
import { addFlagAliases, addGrpoFlags, OLD_FLAG_NAMES } from "../grpo-flags.ts";
import { createProgress, formatDuration } from "../progress.ts";
import { grpoSteps, printSummary, reportCommand } from "../summary.ts";
import { registerEmail } from "./train-email.ts";

type PresetName = "quick" | "learning" | "discovery";

interface TheoryCliOptions extends Omit<TheoryRunOptions, "checkpoint"> {
  checkpoint?: string;
  eval?: boolean;
  preset: PresetName;
}

const PRESETS: Record<Exclude<PresetName, "quick">, TheoryRunOptions> = {
  learning: LEARNING_THEORY_RUN,
  discovery: DISCOVERY_THEORY_RUN,
};

/** The preset's values for every option the user left at its default. */
function applyPreset(opts: TheoryCliOptions, cmd: Command): TheoryCliOptions {
  if (opts.preset === "quick") return opts;
  const out: Record<string, unknown> = { ...opts };
  for (const [key, value] of Object.entries(PRESETS[opts.preset])) {
    if (cmd.getOptionValueSource(key) !== "cli") out[key] = value;
  }
  return out as unknown as TheoryCliOptions;
}

const pct = (x: number | undefined) => (x === undefined ? "?" : `${Number((100 * x).toPrecision(2))}%`);

function registerTheory(train: Command): void {
  const d = QUICK_THEORY_RUN;
  const cmd = train
    .command("theory")
    .description(
      "Parametric GRPO on the theory task: a small transformer writes lists of fields (SU(3), SU(2), hypercharge) " +
        "under a grammar. The physics reward favours anomaly-free, non-trivial theories; the novelty reward pays for " +
        "valid theories the run has rarely produced, so that the policy finds many instead of repeating one.\n\n" +
        `With no flags this is the quick recipe: a tiny model, ${d.sftSteps} warm-start steps on demonstrations ` +
        `that contain no valid theory, then ${d.maxSteps} GRPO steps of ${d.numGenerations} samples. ${QUICK_RUN_MEASURED}\n\n` +
        "Writes history.jsonl, training_stats.json (initial and final success_rate, distinct_valid, novel_valid), " +
        "theories.json (every valid theory found), checkpoint-N/, best_model/ and final/ to --output-dir; " +
        "`grpo report <dir>` turns them into a page.",
    )
    .helpOption("-h, --help", "Show this help");
  addGrpoFlags(cmd, THEORY_GRPO_KEYS, d, {
    maxSteps: "GRPO steps; each samples --num-generations theories",
    beta: "Weight of the KL penalty to the frozen reference (k3 estimator)",
    epsilon: "PPO clip range ε of the importance ratio",
  });
  cmd
    .option(
      "--use-curriculum",
      "Three reward phases (length, then exotics, then anomalies), raised as the success rate passes 0.5",
    )
    .option(
      "--log-interval <n>",
      "Print a progress line every n steps",
      intFlag("--log-interval", 1),
      d.logInterval,
    )
    .option(
      "--save-interval <n>",
      "Write checkpoint-N every n steps (0: only final/)",
      intFlag("--save-interval", 0),
      d.saveInterval,
    )
    .option(
      "--eval-interval <n>",
      "Evaluate on held-out samples every n steps (0: only at the end)",
      intFlag("--eval-interval", 0),
      d.evalInterval,
    )
    .option(
      "--eval-samples <n>",
      "Theories sampled per evaluation",
      intFlag("--eval-samples", 1),
      d.evalSamples,
    )
    .option(
      "--checkpoint <dir>",
      "Start from this pretrained checkpoint (skips the warm start); with --eval, the one to evaluate",
    )
    .option(
      "--resume",
      "Continue the run in --output-dir from its newest checkpoint-N or final/ (weights, Adam, RNG, step, theories found)",
    )
    .option("--eval", "Only evaluate --checkpoint (default <output-dir>/final) and print the figures")
    .option("--output-dir <dir>", "Where results go", d.outputDir)
    .addOption(new Option("--backend <name>", "Tensor backend").choices(["wasm", "cpu"]).default("wasm"))
    .option(
      "--sft-steps <n>",
      "Supervised warm-start steps on demonstrations before GRPO",
      intFlag("--sft-steps", 0),
      d.sftSteps,
    )
    .option(
      "--demo-valid-share <x>",
      "Share of valid theories among the demonstrations (0: the policy must find every one itself)",
      floatFlag("--demo-valid-share", 0, 1),
      d.demoValidShare,
    )
    .addOption(
      new Option("--model-size <size>", "Policy size: tiny (d=32, 2 layers) or small (d=64, 4 layers)")
        .choices(["tiny", "small"])
        .default(d.modelSize),
    )
    .option(
      "--novelty-weight <x>",
      "Weight of the novelty reward: a valid theory earns x/√n, n = times the run has seen it (0: none)",
      floatFlag("--novelty-weight", 0),
      d.noveltyWeight,
    )
    .option(
      "--core-novelty-weight <x>",
      "Weight of the core novelty reward: a valid theory earns x/√n, n = times the run has seen its chiral core (0: none)",
      floatFlag("--core-novelty-weight", 0),
      d.coreNoveltyWeight,
    )
    .option(
      "--diversity-weight <x>",
      "Weight of the diversity reward: a valid theory written m times in a step earns −x·(1 − 1/m) (0: none)",
      floatFlag("--diversity-weight", 0),
      d.diversityWeight,
    )
    .option(
      "--content-diversity-weight <x>",
      "Weight of the content diversity reward: a valid theory whose field content (representations without hypercharges) m valid samples of the step share earns −x·(1 − 1/m) (0: none)",
      floatFlag("--content-diversity-weight", 0),
      d.contentDiversityWeight,
    )
    .option(
      "--content-novelty-weight <x>",
      "Weight of the content novelty reward: a non-trivial theory, anomaly-free or not, earns x·a⁴/√n, a its anomaly score (1: all cancel), n the training samples so far with its field content (0: none)",
      floatFlag("--content-novelty-weight", 0),
      d.contentNoveltyWeight,
    )
    .option(
      "--archive-replay <n>",
      "Valid theories of the run's archive, the rarely seen ones most likely, added to every group (0: none)",
      intFlag("--archive-replay", 0),
      d.archiveReplay,
    )
    .option(
      "--partial-credit <x>",
      "Scale of the positive reward of theories that are not anomaly-free and non-trivial (1: full credit)",
      floatFlag("--partial-credit", 0, 1),
      d.partialCredit,
    )
    .option(
      "--replay <n>",
      "Stored groups replayed per step, by |advantage| (0: none)",
      intFlag("--replay", 0),
      d.replay,
    )
    .option(
      "--downsample <n>",
      "Update on the n completions of a group whose rewards vary most (0, or n ≥ --num-generations: the whole group)",
      intFlag("--downsample", 0),
      d.downsample,
    )
    .addOption(
      new Option(
        "--preset <name>",
        "Settings to start from: quick (the first run), discovery (what bench/theory-learning measured), " +
          "learning (the earlier success-only run, which ends on one theory); flags given explicitly still win",
      )
        .choices(["quick", "discovery", "learning"])
        .default("quick"),
    )
    .addHelpText(
      "after",
      "\nExamples:\n" +
        `  grpo train theory                                  # the quick run (${QUICK_RUN_SECONDS})\n` +
        "  grpo report outputs/grpo_theory                    # its curves and the theories it found\n" +
        "  grpo train theory --preset discovery               # the bench configuration: 15 minutes, many theories\n" +
        "  grpo train theory --max-steps 300 --output-dir outputs/grpo_theory_300\n" +
        "  grpo train theory --resume --max-steps 400         # continue outputs/grpo_theory to step 400\n" +
        "  grpo train theory --eval --checkpoint outputs/grpo_theory/best_model",
    )
    .action(async (cliOpts: TheoryCliOptions, cmd: Command) => {
      const started = performance.now();
      const opts = applyPreset(cliOpts, cmd);
      // The engine loads only when the command runs, so that --help stays fast.
      const [
        { initBackend },
        { loadStartingModel },
        { measureTheories, prepareTheoryTrainer, showDemonstrations, theoryTaskFor },
      ] = await Promise.all([
        import("../../model/backend.ts"),
        import("../../rl/prepare.ts"),
        import("../../recipes/theory/run.ts"),
      ]);
      const backend = await initBackend(opts.backend);
      if (opts.eval) {
        const dir = opts.checkpoint ?? `${opts.outputDir}/final`;
        const task = theoryTaskFor(opts);
        const model = loadStartingModel(dir, opts.seed, { name: "theory", vocabSize: task.vocabSize });
        try {
          showDemonstrations(task, opts.seed);
          const m = measureTheories(model, task, opts.evalSamples, opts.seed, opts.temperature);
          console.log(
            `${dir}: anomaly-free & non-trivial ${(100 * m.validShare).toFixed(1)}% of ${opts.evalSamples}, ` +
              `${m.distinctValid} distinct (${m.novelValid} not among the demonstrations of seed ${opts.seed}), mean reward ${m.reward.toFixed(3)}`,
          );
          for (const e of m.examples) console.log(`  e.g. ${e}`);
        } finally {
          model.dispose();
        }
        return;
      }
      const progress = createProgress({ label: "grpo train theory", total: opts.maxSteps });
      const run: TheoryRunOptions = {
        ...opts,
        useCurriculum: Boolean(opts.useCurriculum),
        resume: Boolean(opts.resume),
        maskTruncatedCompletions: Boolean(opts.maskTruncatedCompletions),
        dynamicSampling: Boolean(opts.dynamicSampling),
      };
      const { trainer, task } = await prepareTheoryTrainer(run, { log: (l) => progress.log(l) });
      progress.log(
        `backend ${backend}; ${opts.maxSteps} steps × ${opts.numGenerations} samples → ${opts.outputDir}`,
      );
      const firstStep = trainer.step;
      if (firstStep > 0) progress.tick(firstStep);
      let since = 0;
      try {
        await trainer.train(opts.maxSteps, (r, e) => {
          since++;
          if (since < opts.logInterval && r.step !== opts.maxSteps) return;
          const fields: Record<string, number> = {
            reward: r.reward ?? 0,
            success: r.success_rate ?? 0,
            loss: r.loss ?? 0,
            kl: r.kl ?? 0,
            found: task.archive.distinct,
          };
          if (e) fields.eval_success = e.successRate;
          progress.tick(since, fields);
          since = 0;
        });
      } finally {
        progress.stop();
      }
      const seconds = (performance.now() - started) / 1000;
      const a = task.archive;
      const ofGrammar = a.validInGrammar
        ? `, ${pct(a.distinct / a.validInGrammar)} of the ${a.validInGrammar} the grammar allows`
        : "";
      printSummary({
        done: `${grpoSteps(trainer.step, firstStep)} in ${formatDuration(seconds)}`,
        results: opts.outputDir,
      });
      // The last line: what the run found, how the share moved, and where to look.
      console.log(
        `  found ${a.distinct} distinct anomaly-free, non-trivial theories (${a.novel} not in the demonstrations${ofGrammar}); ` +
          `share ${pct(trainer.initialEval?.successRate)} → ${pct(trainer.lastEval?.successRate)}; see: ${reportCommand(opts.outputDir)}`,
      );
      trainer.policy.dispose();
      trainer.dispose();
    });
  addFlagAliases(cmd, OLD_FLAG_NAMES);
}

/** `grpo train <recipe>`: parametric GRPO recipes, one sub-command each. */
export function register(program: Command): void {
  const train = program
    .command("train")
    .description("Parametric GRPO: train an in-process policy on a recipe")
    .addHelpText(
      "after",
      "\nExamples:\n" +
        `  grpo train theory                                  # the main job (${QUICK_RUN_SECONDS})\n` +
        "  grpo train email                                   # the tool-using email agent, masked mode\n" +
        "  grpo train theory --help                           # a recipe's own options",
    );
  registerTheory(train);
  registerEmail(train);
}
