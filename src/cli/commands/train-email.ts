import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Command, Option } from "commander";
import { pickGrpo } from "../../core/config.ts";
import { readJsonFile, writeJsonAtomic } from "../../io/files.ts";
import type { BackendName } from "../../model/backend.ts";
import {
  EMAIL_TRAINING_FIELDS,
  type EmailTrainingConfig,
  emailFlag,
  parseEmailTrainingEnv,
} from "../../recipes/email/config.ts";
import {
  FINAL_EVAL_FILE,
  type HeldOutFigures,
  heldOutFigures,
  WARM_START_EVAL_FILE,
} from "../../recipes/email/held-out.ts";
import {
  AGENT_EXAMPLE,
  EMAIL_GRPO_KEYS,
  EMAIL_MODES,
  EMAIL_RECIPE_DEFAULTS,
  type EmailRunOptions,
  emailDefaults,
} from "../../recipes/email/presets.ts";
import { floatFlag, intFlag } from "../flags.ts";
import { addFlagAliases, addGrpoFlags } from "../grpo-flags.ts";
import { createProgress } from "../progress.ts";
import { grpoSteps } from "../summary.ts";

const DESCRIPTIONS: Record<keyof EmailTrainingConfig, string> = {
  trainDatasetSize: "Training questions",
  evalDatasetSize: "Held-out questions, from inboxes never trained on",
  maxSteps: "GRPO steps",
  learningRate: "Adam learning rate of the LoRA adapters",
  perDeviceTrainBatchSize: "Questions per step",
  numGenerations: "Episodes per question (G); advantages are relative to the group",
  beta: "Weight of the KL penalty to the warm-started model",
  maxTurns: "Tool calls per episode",
  maxTokens: "Policy tokens per episode (the completion length)",
  outputDir: "Where results go (default outputs/grpo_<mode>)",
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
    sftDemos: opts.sftDemos,
    baseModel: opts.baseModel,
    evalEvery: opts.evalEvery,
    saveEvery: opts.saveEvery,
    targetAccuracy: opts.targetAccuracy,
    evalTemperature: opts.evalTemperature,
    maxTurnTokens: opts.maxTurnTokens,
    loraRank: opts.loraRank,
    answerPartsWeight: opts.answerPartsWeight,
    resume: Boolean(opts.resume),
  };
}

export function registerEmail(train: Command): void {
  const d = EMAIL_RECIPE_DEFAULTS;
  const masked = emailDefaults("masked");
  const cmd = train
    .command("email")
    .description(
      "GRPO for a tool-using email agent: a small transformer, whose tokens are the inbox's words and " +
        "numbers (each with the space or separator before it) and single characters for the rest, answers " +
        "questions about a synthetic inbox by writing search_emails / read_email / answer calls, one per turn.\n\n" +
        "Modes:\n" +
        "  masked   multi-turn episodes; the loss covers the policy's own tokens only (the correct one)\n" +
        "  rollout  multi-turn episodes; the loss also covers the tool results in the context\n" +
        "  simple   no environment: the first tool call of each question, proxy reward (fast smoke test)\n\n" +
        `The agent is first warm-started by ${d.sftSteps} supervised steps on noisy scripted demonstrations ` +
        `(saved as <output>/base_model/), then LoRA adapters (rank ${d.loraRank}) are trained with GRPO. ` +
        "Every --eval-every steps the held-out accuracy is measured on whole episodes (in every mode); a " +
        "better one saves best_model/ (adapter + metadata.json). The run ends with the held-out accuracy " +
        "after the warm start and at the end, and the wrong answers of each by cause. Also written: " +
        "history.jsonl, samples.jsonl, checkpoint-N/, final/, training_stats.json, warm_start_eval.json, final_eval.json.\n\n" +
        "Settings come from environment variables, overridden by the flags of the same name:\n" +
        EMAIL_TRAINING_FIELDS.map(
          (f) =>
            `  ${f.env.padEnd(28)} ${emailFlag(f).padEnd(30)} default ${f.key === "outputDir" ? "outputs/grpo_<mode>" : masked[f.key]}`,
        ).join("\n"),
    )
    .addOption(
      new Option("--mode <mode>", "What the loss covers (see above)")
        .choices([...EMAIL_MODES])
        .default("masked"),
    );
  for (const f of EMAIL_TRAINING_FIELDS)
    cmd.option(`${emailFlag(f)} <value>`, `${DESCRIPTIONS[f.key]} (${f.env})`);
  addGrpoFlags(cmd, EMAIL_GRPO_KEYS, d, {
    seed: "Random seed: dataset, warm start and sampling",
    temperature: "Sampling temperature in training",
  });
  cmd
    .option("--sft-steps <n>", "Warm-start steps on demonstrations", intFlag("--sft-steps", 0), d.sftSteps)
    .option("--sft-noise <p>", "Noise of the demonstrations", floatFlag("--sft-noise", 0, 1), d.sftNoise)
    .option(
      "--sft-demos <n>",
      "Demonstration questions, from inboxes of their own (0: one per training question)",
      intFlag("--sft-demos", 0),
      d.sftDemos,
    )
    .option(
      "--base-model <dir>",
      "Start from this warm-started model instead (a run's base_model/; skips the warm start), or from a Hugging Face chat model directory (LoRA; its chat template renders the episodes)",
    )
    .option(
      "--eval-every <n>",
      "Evaluate every n steps (0: only at the end)",
      intFlag("--eval-every", 0),
      d.evalEvery,
    )
    .option(
      "--save-every <n>",
      "Write checkpoint-N every n steps (0: never)",
      intFlag("--save-every", 0),
      d.saveEvery,
    )
    .option(
      "--target-accuracy <acc>",
      "Stop early once held-out accuracy reaches it",
      floatFlag("--target-accuracy", 0, 1, true),
    )
    .option(
      "--eval-temperature <t>",
      "Sampling temperature at evaluation (0: greedy)",
      floatFlag("--eval-temperature", 0, 5),
      d.evalTemperature,
    )
    .option(
      "--max-turn-tokens <n>",
      "Tokens one tool call may take",
      intFlag("--max-turn-tokens", 1),
      d.maxTurnTokens,
    )
    .option("--lora-rank <r>", "Rank of the LoRA adapters", intFlag("--lora-rank", 1), d.loraRank)
    .option(
      "--answer-parts-weight <w>",
      "Weight of the answer_parts shaping term: the share of the answer's parts (a date's day, a name's words) stated right (0: off)",
      floatFlag("--answer-parts-weight", 0),
      d.answerPartsWeight,
    )
    .option("--resume", "Continue the run in the output directory from its newest checkpoint-N or final/")
    .addOption(new Option("--backend <name>", "Tensor backend").choices(["wasm", "cpu"]).default("wasm"))
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  grpo train email                                   # masked mode → outputs/grpo_masked\n" +
        "  grpo train email --sft-steps 100 --max-steps 5 --eval-dataset-size 16 --output-dir outputs/email_try   # a quick look\n" +
        "  grpo train email --mode simple --base-model outputs/grpo_masked/base_model   # reuse a warm start\n" +
        "  grpo train email --base-model SmolLM2-135M-Instruct --max-steps 20   # a Hugging Face chat model, LoRA\n" +
        "  MAX_STEPS=100 NUM_GENERATIONS=8 grpo train email --mode rollout\n" +
        `  grpo agent --model outputs/grpo_masked/best_model --seed ${AGENT_EXAMPLE.seed} --question "${AGENT_EXAMPLE.question}"`,
    )
    .action(async (opts: EmailCliOptions) => {
      const run = emailRunOptions(opts, process.env);
      // The engine loads only when the command runs, so that --help stays fast.
      const [{ initBackend }, { prepareEmailTrainer }, log, chat] = await Promise.all([
        import("../../model/backend.ts"),
        import("../../recipes/email/run.ts"),
        import("../../recipes/email/log.ts"),
        import("../../recipes/email/chat-template.ts"),
      ]);
      const backend = await initBackend(opts.backend);
      const progress = createProgress({ label: `grpo train email --mode ${run.mode}`, total: run.maxSteps });
      // The trainer announces a new best while it evaluates, before the step's own lines are out;
      // held back, its lines follow the evaluation block as in the seed's output.
      const held: string[] = [];
      let holding = false;
      const print = (line: string) => progress.log(line);
      const flush = () => held.splice(0).forEach(print);
      const hooks = { log: (line: string) => (holding ? held.push(line) : print(line)) };
      const { trainer, task } =
        run.baseModel !== undefined && chat.isPretrainedModelDir(run.baseModel)
          ? await chat.prepareEmailChatTrainer(run, hooks)
          : await prepareEmailTrainer(run, hooks);
      const bestDir = join(run.outputDir, "best_model");
      let best = trainer.best;
      const evalBlock = (e: { reward: number; successRate: number }) => {
        for (const line of log.evalLines(e)) print(line);
        flush();
        if (trainer.best !== best) print(`Model saved to: ${bestDir}`);
        best = trainer.best;
      };
      print(
        `backend ${backend}; ${run.maxSteps} steps × ${run.perDeviceTrainBatchSize} questions × ${run.numGenerations} episodes → ${run.outputDir}`,
      );
      const warmStartFile = join(run.outputDir, WARM_START_EVAL_FILE);
      if (trainer.step === 0) {
        holding = true;
        const e = await trainer.evaluateAndTrack();
        print(`Warm start, before any GRPO step (${task.dataset.eval.length} held-out questions):`);
        evalBlock(e);
        if (task.lastHeldOut) writeJsonAtomic(warmStartFile, heldOutFigures(task.lastHeldOut));
      } else progress.tick(trainer.step);
      const firstStep = trainer.step;
      const t0 = performance.now();
      try {
        holding = true;
        await trainer.train(run.maxSteps, (r, e) => {
          print(log.stepLine(r, run.maxSteps));
          if (e) evalBlock(e);
          flush();
          progress.tick(1, { reward: r.reward ?? 0, acc: r.success_rate ?? 0 });
        });
        holding = false;
        // The end-of-run evaluation (when the last step had none) and the final save.
        flush();
      } finally {
        progress.stop();
      }
      const minutes = (performance.now() - t0) / 60_000;
      console.log(
        `done: ${grpoSteps(trainer.step, firstStep)}${trainer.stoppedEarly ? " (target accuracy reached)" : ""} in ${minutes.toFixed(1)} min`,
      );
      const end = task.lastHeldOut;
      const start = existsSync(warmStartFile) ? (readJsonFile(warmStartFile) as HeldOutFigures) : null;
      if (end && start) {
        writeJsonAtomic(join(run.outputDir, FINAL_EVAL_FILE), heldOutFigures(end));
        for (const line of log.learningSummary(start, end, end.episodes.length)) console.log(`  ${line}`);
      }
      if (trainer.best)
        console.log(
          `  best held-out accuracy ${log.percentOf(trainer.best.successRate, task.dataset.eval.length)} at step ${trainer.best.step} (${bestDir})`,
        );
      console.log(`  results in ${run.outputDir}`);
      console.log(`  see them: npx grpo report ${run.outputDir}`);
      trainer.policy.dispose();
      trainer.dispose();
    });
  // TRL's name of the completion length, which MAX_TOKENS is here.
  addFlagAliases(cmd, { "--max-completion-length": "maxTokens" });
}
