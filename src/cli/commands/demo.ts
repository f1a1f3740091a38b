import type { Command } from "commander";
import { METRICS } from "../../core/metrics.ts";
import { DEMO_DEFAULTS, type DemoOptions } from "../../recipes/demo/presets.ts";
import { type DemoResult, trainDemo } from "../../recipes/demo/run.ts";
import { DEMO_LENGTH, DEMO_TARGETS } from "../../recipes/demo/task.ts";
import { createProgress } from "../progress.ts";

function parseNumber(name: string, integer: boolean) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
      throw new RangeError(`${name}: expected ${integer ? "an integer" : "a number"}, got "${value}"`);
    }
    return n;
  };
}

export function register(program: Command): void {
  const d = DEMO_DEFAULTS;
  program
    .command("demo")
    .description(
      `Smallest end-to-end GRPO run (no model, no key, a few seconds): a tabular policy learns to write ` +
        `${DEMO_LENGTH} digits whose sum hits a target (${DEMO_TARGETS.join(", ")}), rewarded by distance.`,
    )
    .option("--steps <n>", "training steps", parseNumber("--steps", true), d.steps)
    .option("--group-size <n>", "completions per prompt (G)", parseNumber("--group-size", true), d.groupSize)
    .option(
      "--prompts-per-step <n>",
      "prompts (targets) per step",
      parseNumber("--prompts-per-step", true),
      d.promptsPerStep,
    )
    .option("--lr <x>", "Adam learning rate", parseNumber("--lr", false), d.lr)
    .option("--seed <n>", "random seed (same seed, same run)", parseNumber("--seed", true), d.seed)
    .option(
      "--beta <x>",
      "KL weight towards the initial (uniform) policy",
      parseNumber("--beta", false),
      d.beta,
    )
    .option("--loss-type <t>", "grpo | bnpo | dr_grpo | dapo", d.lossType)
    .option("--scale-rewards <s>", "group | batch | none", d.scaleRewards)
    .option(
      "--inner-steps <n>",
      "gradient steps per sampled batch",
      parseNumber("--inner-steps", true),
      d.innerSteps,
    )
    .option("--eps-low <x>", "lower clip range", parseNumber("--eps-low", false), d.epsLow)
    .option(
      "--eps-high <x>",
      "upper clip range (DAPO clip-higher: 0.28)",
      parseNumber("--eps-high", false),
      d.epsHigh,
    )
    .option("--importance-sampling <s>", "token | sequence (GSPO)", d.importanceSampling)
    .addHelpText(
      "after",
      "\nExample:\n  grpo demo --steps 80 --group-size 16 --loss-type dr_grpo --scale-rewards none --seed 7\n\n" +
        "Prints reward, reward_std, kl and clip ratios per step, then the mean reward of the first\n" +
        "and last 5 steps and the most likely digits for each target.",
    )
    .action((opts: Partial<DemoOptions>) => {
      const steps = opts.steps ?? d.steps;
      const progress = createProgress({ label: "demo", total: steps });
      let result: DemoResult;
      try {
        result = trainDemo(opts, (s) =>
          progress.tick(1, {
            [METRICS.reward]: s.reward,
            [METRICS.rewardStd]: s.rewardStd,
            [METRICS.kl]: s.kl,
            [METRICS.clipRatioLowMean]: s.clipRatioLow,
            [METRICS.clipRatioHighMean]: s.clipRatioHigh,
          }),
        );
      } finally {
        progress.stop();
      }
      for (const g of result.greedy) {
        const sum = g.digits.reduce((a, b) => a + b, 0);
        console.log(`target ${g.target}: ${g.digits.join(" ")} (sum ${sum}, reward ${g.reward.toFixed(2)})`);
      }
      console.log(`reward: ${result.initialReward.toFixed(2)} -> ${result.finalReward.toFixed(2)}`);
    });
}
