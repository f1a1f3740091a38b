import { type Command, Option } from "commander";
import { pickGrpo } from "../../core/config.ts";
import type { BackendName } from "../../model/backend.ts";
import {
  EMAIL_TRAINING_FIELDS,
  type EmailTrainingConfig,
  emailFlag,
  parseEmailTrainingEnv,
} from "../../recipes/email/config.ts";
import {
  EMAIL_GRPO_KEYS,
  EMAIL_MODES,
  EMAIL_RECIPE_DEFAULTS,
  type EmailRunOptions,
  emailDefaults,
} from "../../recipes/email/presets.ts";
import { floatFlag, intFlag } from "../flags.ts";
import { addFlagAliases, addGrpoFlags } from "../grpo-flags.ts";
import { createProgress } from "../progress.ts";

const DESCRIPTIONS: Record<keyof EmailTrainingConfig, string> = {
  trainDatasetSize: "training questions",
  evalDatasetSize: "held-out questions (from other inboxes)",
  maxSteps: "GRPO steps",
  learningRate: "Adam learning rate of the LoRA adapters",
  perDeviceTrainBatchSize: "questions per step",
  numGenerations: "episodes per question (G); advantages are relative to the group",
  beta: "weight of the KL penalty to the warm-started model",
  maxTurns: "tool calls per episode",
  maxTokens: "policy tokens per episode (the completion length)",
  outputDir: "where results go (default outputs/grpo_<mode>)",
};

type GrpoPart = Pick<EmailRunOptions, (typeof EMAIL_GRPO_KEYS)[number]>;

/**
 * What commander hands the action: the environment-variable settings as raw strings (parsed
 * with the environment so that errors name the flag), the other options as parsed.
 */
type EmailCliOptions = Partial<Record<keyof EmailTrainingConfig, string>> &
  Partial<GrpoPart> &
  Omit<EmailRunOptions, keyof EmailTrainingConfig | keyof GrpoPart | "resume"> & {
    resume?: boolean;
    backend: BackendName;
  };

/** Environment and flags → run options; flags win, and errors name the variable or the flag. */
export function emailRunOptions(opts: EmailCliOptions, env: NodeJS.ProcessEnv): EmailRunOptions {
  const flags: Partial<Record<keyof EmailTrainingConfig, string>> = {};
  for (const f of EMAIL_TRAINING_FIELDS) if (opts[f.key] !== undefined) flags[f.key] = opts[f.key];
  const settings = parseEmailTrainingEnv(
    env,
    emailDefaults(opts.mode),
    flags as Partial<EmailTrainingConfig>,
    emailFlag,
  );
  return {
    ...settings,
    ...pickGrpo(EMAIL_RECIPE_DEFAULTS, EMAIL_GRPO_KEYS),
    ...pickGrpo(opts, EMAIL_GRPO_KEYS),
    maskTruncatedCompletions: Boolean(opts.maskTruncatedCompletions),
    dynamicSampling: Boolean(opts.dynamicSampling),
    mode: opts.mode,
    sftSteps: opts.sftSteps,
    sftNoise: opts.sftNoise,
    baseModel: opts.baseModel,
    evalEvery: opts.evalEvery,
    saveEvery: opts.saveEvery,
    targetAccuracy: opts.targetAccuracy,
    evalTemperature: opts.evalTemperature,
    maxTurnTokens: opts.maxTurnTokens,
    loraRank: opts.loraRank,
    resume: Boolean(opts.resume),
  };
}

export function registerEmail(train: Command): void {
  const d = EMAIL_RECIPE_DEFAULTS;
  const masked = emailDefaults("masked");
  const cmd = train
    .command("email")
    .description(
      "GRPO for a tool-using email agent: a tiny character-level transformer answers questions about a synthetic " +
        "inbox by writing search_emails / read_email / answer calls, one per turn.\n\n" +
        "Modes:\n" +
        "  masked   multi-turn episodes; the loss covers the policy's own tokens only (the correct one)\n" +
        "  rollout  multi-turn episodes; the loss also covers the tool results in the context\n" +
        "  simple   no environment: the first tool call of each question, proxy reward (fast smoke test)\n\n" +
        `The agent is first warm-started by ${d.sftSteps} supervised steps on noisy scripted demonstrations ` +
        `(saved as <output>/base_model/), then LoRA adapters (rank ${d.loraRank}) are trained with GRPO. ` +
        "Every --eval-every steps the held-out accuracy is measured; a better one saves best_model/ " +
        "(adapter + metadata.json). Also written: history.jsonl, samples.jsonl, checkpoint-N/, final/, training_stats.json.\n\n" +
        "Settings come from environment variables, overridden by the flags of the same name:\n" +
        EMAIL_TRAINING_FIELDS.map(
          (f) =>
            `  ${f.env.padEnd(28)} ${emailFlag(f).padEnd(30)} default ${f.key === "outputDir" ? "outputs/grpo_<mode>" : masked[f.key]}`,
        ).join("\n"),
    )
    .addOption(
      new Option("--mode <mode>", "what the loss covers (see above)")
        .choices([...EMAIL_MODES])
        .default("masked"),
    );
  for (const f of EMAIL_TRAINING_FIELDS)
    cmd.option(`${emailFlag(f)} <value>`, `${DESCRIPTIONS[f.key]} (${f.env})`);
  addGrpoFlags(cmd, EMAIL_GRPO_KEYS, d, {
    seed: "random seed: dataset, warm start and sampling",
    temperature: "sampling temperature in training",
  });
  cmd
    .option("--sft-steps <n>", "warm-start steps on demonstrations", intFlag("--sft-steps", 0), d.sftSteps)
    .option("--sft-noise <p>", "noise of the demonstrations", floatFlag("--sft-noise", 0, 1), d.sftNoise)
    .option(
      "--base-model <dir>",
      "start from this warm-started checkpoint instead (skips the warm start), or from a Hugging Face chat model directory (its chat template renders the episodes)",
    )
    .option(
      "--eval-every <n>",
      "evaluate every n steps (0: only at the end)",
      intFlag("--eval-every", 0),
      d.evalEvery,
    )
    .option(
      "--save-every <n>",
      "write checkpoint-N every n steps (0: never)",
      intFlag("--save-every", 0),
      d.saveEvery,
    )
    .option(
      "--target-accuracy <acc>",
      "stop early once held-out accuracy reaches it",
      floatFlag("--target-accuracy", 0, 1, true),
    )
    .option(
      "--eval-temperature <t>",
      "sampling temperature at evaluation (0: greedy)",
      floatFlag("--eval-temperature", 0, 5),
      d.evalTemperature,
    )
    .option(
      "--max-turn-tokens <n>",
      "tokens one tool call may take",
      intFlag("--max-turn-tokens", 1),
      d.maxTurnTokens,
    )
    .option("--lora-rank <r>", "rank of the LoRA adapters", intFlag("--lora-rank", 1), d.loraRank)
    .option("--resume", "continue the run in the output directory from its newest checkpoint-N")
    .addOption(new Option("--backend <name>", "tensor backend").choices(["wasm", "cpu"]).default("wasm"))
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  grpo train email                                   # masked mode → outputs/grpo_masked\n" +
        "  grpo train email --mode simple --base-model outputs/grpo_masked/base_model   # reuse a warm start\n" +
        "  grpo train email --base-model SmolLM2-135M-Instruct --max-steps 20   # a Hugging Face chat model, LoRA\n" +
        "  MAX_STEPS=100 NUM_GENERATIONS=8 grpo train email --mode rollout\n" +
        "  grpo train email --target-accuracy 0.8 --eval-every 5\n" +
        '  grpo agent --model outputs/grpo_masked/best_model --question "When is the Apollo kickoff meeting?"',
    )
    .action(async (opts: EmailCliOptions) => {
      const run = emailRunOptions(opts, process.env);
      // The engine loads only when the command runs, so that --help stays fast.
      const [{ initBackend }, { prepareEmailTrainer, stepLine }, chat] = await Promise.all([
        import("../../model/backend.ts"),
        import("../../recipes/email/run.ts"),
        import("../../recipes/email/chat-template.ts"),
      ]);
      const backend = await initBackend(opts.backend);
      const progress = createProgress({ label: `grpo train email --mode ${run.mode}`, total: run.maxSteps });
      const hooks = { log: (l: string) => progress.log(l) };
      const { trainer } =
        run.baseModel !== undefined && chat.isPretrainedModelDir(run.baseModel)
          ? await chat.prepareEmailChatTrainer(run, hooks)
          : await prepareEmailTrainer(run, hooks);
      progress.log(
        `backend ${backend}; ${run.maxSteps} steps × ${run.perDeviceTrainBatchSize} questions × ${run.numGenerations} episodes → ${run.outputDir}`,
      );
      if (trainer.step === 0) {
        const e = await trainer.evaluateAndTrack();
        progress.log(`before GRPO: eval reward ${e.reward.toFixed(3)}, accuracy ${e.successRate.toFixed(3)}`);
      } else progress.tick(trainer.step);
      try {
        await trainer.train(run.maxSteps, (r, e) => {
          progress.log(stepLine(r, run.maxSteps));
          if (e)
            progress.log(
              `Eval at step ${r.step}: reward ${e.reward.toFixed(3)}, accuracy ${e.successRate.toFixed(3)}`,
            );
          progress.tick(1, { reward: r.reward ?? 0, acc: r.success_rate ?? 0 });
        });
      } finally {
        progress.stop();
      }
      const best = trainer.best;
      console.log(
        `done: ${trainer.step} steps${trainer.stoppedEarly ? " (target accuracy reached)" : ""}; ` +
          `last eval accuracy ${(trainer.lastEval?.successRate ?? 0).toFixed(3)}` +
          (best ? `, best ${best.successRate.toFixed(3)} at step ${best.step}` : "") +
          `; results in ${run.outputDir}`,
      );
      trainer.policy.dispose();
      trainer.dispose();
    });
  // TRL's name of the completion length, which MAX_TOKENS is here.
  addFlagAliases(cmd, { "--max-completion-length": "maxTokens" });
}
