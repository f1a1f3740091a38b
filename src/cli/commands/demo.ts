import type { Command } from "commander";
import { pickGrpo } from "../../core/config.ts";
import { METRICS } from "../../core/metrics.ts";
import { DEMO_GRPO_KEYS, DEMO_PRESET, type DemoOptions } from "../../recipes/demo/presets.ts";
import { type DemoResult, trainDemo } from "../../recipes/demo/run.ts";
import { DEMO_LENGTH, DEMO_TARGETS } from "../../recipes/demo/task.ts";
import { intFlag } from "../flags.ts";
import { addFlagAliases, addGrpoFlags } from "../grpo-flags.ts";
import { createProgress, formatDuration, stepLine } from "../progress.ts";
import { change, printSummary } from "../summary.ts";

/** The demo's flags before they took GrpoConfig's names. */
const DEMO_OLD_FLAGS = {
  "--steps": "maxSteps",
  "--group-size": "numGenerations",
  "--lr": "learningRate",
  "--inner-steps": "numIterations",
  "--eps-low": "epsilon",
  "--eps-high": "epsilonHigh",
  "--importance-sampling": "importanceSamplingLevel",
} as const;

export function register(program: Command): void {
  const d = DEMO_PRESET;
  const cmd = program
    .command("demo")
    .description(
      `Smallest end-to-end GRPO run (no model, no key, a few seconds): a tabular policy learns to write ` +
        `${DEMO_LENGTH} digits whose sum hits a target (${DEMO_TARGETS.join(", ")}), rewarded by distance.`,
    );
  addGrpoFlags(cmd, DEMO_GRPO_KEYS, d, {
    beta: "KL weight towards the initial (uniform) policy",
    numIterations: "gradient steps per sampled batch",
  });
  cmd
    .option(
      "--prompts-per-step <n>",
      "prompts (targets) per step",
      intFlag("--prompts-per-step", 1),
      d.promptsPerStep,
    )
    .addHelpText(
      "after",
      "\nExample:\n  grpo demo --max-steps 80 --num-generations 16 --loss-type dr_grpo --scale-rewards none --seed 7\n\n" +
        "Prints reward, reward_std, kl and clip ratios per step, then the mean reward of the first\n" +
        "and last 5 steps and the most likely digits for each target.",
    )
    .action((opts: DemoOptions) => {
      const progress = createProgress({ label: "demo", total: opts.maxSteps });
      const started = Date.now();
      let result: DemoResult;
      try {
        const options = { ...pickGrpo(opts, DEMO_GRPO_KEYS), promptsPerStep: opts.promptsPerStep };
        result = trainDemo(options, (s) => {
          const fields = {
            [METRICS.reward]: s.reward,
            [METRICS.rewardStd]: s.rewardStd,
            [METRICS.kl]: s.kl,
            [METRICS.clipRatioLowMean]: s.clipRatioLow,
            [METRICS.clipRatioHighMean]: s.clipRatioHigh,
          };
          progress.logStep(stepLine(s.step, opts.maxSteps, fields), 1, { reward: s.reward });
        });
      } finally {
        progress.stop();
      }
      for (const g of result.greedy) {
        const sum = g.digits.reduce((a, b) => a + b, 0);
        console.log(`target ${g.target}: ${g.digits.join(" ")} (sum ${sum}, reward ${g.reward.toFixed(2)})`);
      }
      const window = Math.min(5, result.history.length);
      printSummary({
        done: `${result.history.length} GRPO steps in ${formatDuration((Date.now() - started) / 1000)}`,
        changes: [
          `${change("reward", result.initialReward, result.finalReward, 2)} (mean of the first and last ${window} steps)`,
        ],
      });
    });
  addFlagAliases(cmd, DEMO_OLD_FLAGS);
}
