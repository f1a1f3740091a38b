import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { emailRunOptions } from "../../src/cli/commands/train-email.ts";
import { GRPO_DEFAULTS } from "../../src/core/config.ts";
import { readJsonl } from "../../src/io/files.ts";
import { emailDefaults } from "../../src/recipes/email/presets.ts";
import { emailTrainerConfig } from "../../src/recipes/email/run.ts";
import { emailVocab } from "../../src/recipes/email/tokenizer.ts";
import { tempDirs } from "../helpers/tmp.ts";

const root = join(import.meta.dirname, "..", "..");
const out = tempDirs("grpo-cli-email-")();

function grpo(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(root, "src/cli/main.ts"), ...args], {
    cwd: root,
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const cli = {
  mode: "masked" as const,
  seed: 1,
  sftSteps: 0,
  sftNoise: 0.3,
  sftDemos: 0,
  evalEvery: 1,
  saveEvery: 0,
  temperature: 1,
  evalTemperature: 0,
  maxTurnTokens: 20,
  loraRank: 2,
  answerPartsWeight: 0,
  backend: "cpu" as const,
};

describe("grpo train email settings", () => {
  it("reads the environment, lets flags win, and defaults the output to outputs/grpo_<mode>", () => {
    const o = emailRunOptions(
      { ...cli, mode: "rollout", maxSteps: "2" },
      { MAX_STEPS: "5", NUM_GENERATIONS: "3", BETA: "0", MAX_TOKENS: "" },
    );
    assert.equal(o.maxSteps, 2);
    assert.equal(o.numGenerations, 3);
    assert.equal(o.beta, 0);
    assert.equal(o.outputDir, "outputs/grpo_rollout");
    assert.equal(o.mode, "rollout");
    assert.equal(emailRunOptions(cli, { OUTPUT_DIR: "elsewhere" }).outputDir, "elsewhere");
    assert.equal(emailRunOptions({ ...cli, outputDir: "flag" }, { OUTPUT_DIR: "env" }).outputDir, "flag");
  });

  it("takes GrpoConfig's other knobs from flags, GrpoConfig's defaults otherwise, into the trainer's config", () => {
    const o = emailRunOptions(
      { ...cli, epsilon: 0.3, lossType: "dr_grpo", dynamicSampling: true },
      { MAX_TOKENS: "77", PER_DEVICE_TRAIN_BATCH_SIZE: "3", NUM_GENERATIONS: "5", BETA: "0.02" },
    );
    assert.equal(o.epsilon, 0.3);
    assert.equal(o.lossType, "dr_grpo");
    assert.equal(o.dynamicSampling, true);
    assert.equal(o.klEstimator, GRPO_DEFAULTS.klEstimator);
    assert.equal(o.numIterations, GRPO_DEFAULTS.numIterations);
    assert.equal(o.maskTruncatedCompletions, false);
    const c = emailTrainerConfig(o);
    assert.equal(c.maxCompletionLength, 77);
    assert.equal(c.promptsPerStep, 3);
    assert.equal(c.numGenerations, 5);
    assert.equal(c.beta, 0.02);
    assert.equal(c.epsilon, 0.3);
    assert.equal(c.lossType, "dr_grpo");
    assert.equal(c.dynamicSampling, true);
    assert.equal(c.seed, 1);
    // The recipe's one set of defaults, whatever the mode.
    const d = emailRunOptions(cli, {});
    assert.deepEqual(
      { ...d, outputDir: "" },
      { ...emailRunOptions({ ...cli, mode: "simple" }, {}), mode: "masked", outputDir: "" },
    );
    assert.equal(d.numGenerations, emailDefaults("masked").numGenerations);
  });

  it("names the variable or the flag of an invalid value", () => {
    assert.throws(
      () => emailRunOptions(cli, { MAX_TURNS: "many" }),
      /^Error: MAX_TURNS must be a positive integer, got "many"$/,
    );
    assert.throws(
      () => emailRunOptions({ ...cli, maxSteps: "0" }, {}),
      /^Error: --max-steps must be a positive integer, got "0"$/,
    );
    assert.throws(
      () => emailRunOptions({ ...cli, learningRate: "fast" }, { LEARNING_RATE: "0.1" }),
      /--learning-rate must be a positive number/,
    );
  });
});

describe("grpo train email and grpo agent", () => {
  it("trains the simple mode from the environment and flags, and runs the agent on best_model", () => {
    const dir = join(out, "simple");
    const r = grpo(
      [
        "train",
        "email",
        "--mode",
        "simple",
        "--max-steps",
        "2",
        "--sft-steps",
        "0",
        "--eval-every",
        "1",
        "--save-every",
        "2",
        "--max-turn-tokens",
        "24",
        "--lora-rank",
        "2",
        "--backend",
        "wasm",
        "--output-dir",
        dir,
      ],
      {
        MAX_STEPS: "9",
        NUM_GENERATIONS: "2",
        PER_DEVICE_TRAIN_BATCH_SIZE: "1",
        TRAIN_DATASET_SIZE: "8",
        EVAL_DATASET_SIZE: "2",
      },
    );
    assert.equal(r.code, 0, r.stderr);
    // Lines as the seed prints them (a progress prefix, where the output is not a terminal, aside).
    const lines = r.stdout.split("\n").map((l) => l.replace(/^\[grpo train email[^\]]*\] /, ""));
    const step1 = lines.findIndex((l) =>
      /^Step 1\/2 \| Loss: -?\d+\.\d{4} \| Policy: -?\d+\.\d{4} \| KL: -?\d+\.\d{4} \| Reward: -?\d+\.\d{3} \| Acc: \d+\.\d% \| Trainable tokens: \d+\/\d+ \(\d+\.\d%\)$/.test(
        l,
      ),
    );
    assert.ok(step1 >= 0, r.stdout);
    assert.doesNotMatch(r.stdout, /-0\.0+\b/);
    // The evaluation block follows its step line.
    assert.match(lines[step1 + 1]!, /^Eval reward: -?\d+\.\d{4}$/);
    assert.match(lines[step1 + 2]!, /^Eval accuracy: \d\.\d{4}$/);
    assert.ok(lines.some((l) => /^Step 2\/2 \| Loss: /.test(l)));
    assert.ok(!lines.some((l) => /^Step 3\//.test(l)));
    // Before any GRPO step: the warm start's evaluation, the first best, and where it went.
    const warm = lines.findIndex((l) => l.startsWith("Warm start, before any GRPO step"));
    assert.match(lines[warm + 1]!, /^Eval reward: /);
    assert.match(lines[warm + 3]!, /^New best accuracy: \d\.\d{4} \(step 0\)$/);
    assert.equal(lines[warm + 4], `Model saved to: ${join(dir, "best_model")}`);
    // "New best" only when the accuracy rose: never twice for one value.
    const bests = lines.filter((l) => l.startsWith("New best accuracy")).map((l) => l.split(" ")[3]);
    assert.equal(new Set(bests).size, bests.length, bests.join(", "));
    // The closing lines: accuracy after the warm start and at the end, and their difference.
    assert.match(
      r.stdout,
      /held-out accuracy on 2 questions: \d+\.\d% \(\d\/2\) after the warm start → \d+\.\d% \(\d\/2\) after GRPO \([+-]\d+\.\d points\)/,
    );
    assert.match(r.stdout, /wrong held-out answers by cause, warm start → end: /);
    for (const f of [
      "base_model/model.safetensors",
      "best_model/adapter_model.safetensors",
      "best_model/adapter_config.json",
      "best_model/metadata.json",
      "final/adapter_model.safetensors",
      "checkpoint-2/trainer_state/state.json",
      "history.jsonl",
      "training_stats.json",
      "warm_start_eval.json",
      "final_eval.json",
    ]) {
      assert.ok(existsSync(join(dir, f)), f);
    }
    const hist = readJsonl(join(dir, "history.jsonl")).records.map((x) => x.value as Record<string, number>);
    assert.deepEqual(
      hist.map((h) => h.step),
      [1, 2],
    );
    // simple mode: one line per completion, all of it trained.
    for (const h of hist) assert.equal(h.trainable_tokens, h.completion_tokens);
    const meta = JSON.parse(readFileSync(join(dir, "best_model", "metadata.json"), "utf8"));
    assert.equal(meta.config.mode, "simple");

    const a = grpo(["agent", "--model", join(dir, "best_model"), "--seed", "2", "--backend", "wasm"]);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stdout, /^Inbox inbox-2\nQuestion: .+\?\n/);
    assert.match(a.stdout, /Turn 1: /);
    assert.match(a.stdout, /Verdict: \w+ \(expected .+; reward -?\d\.\d{3}\)/);

    // A model of another recipe (the theory grammar's vocabulary) is refused by name.
    const theory = join(out, "theory");
    const t = grpo([
      "train",
      "theory",
      "--num-episodes",
      "1",
      "--sft-steps",
      "0",
      "--output-dir",
      theory,
      "--backend",
      "cpu",
    ]);
    assert.equal(t.code, 0, t.stderr);
    const wrong = grpo(["agent", "--model", join(theory, "final"), "--backend", "cpu"]);
    assert.equal(wrong.code, 1);
    assert.match(
      wrong.stderr,
      new RegExp(
        `final/config\\.json: vocab_size \\d+ does not match the email recipe's \\(${emailVocab().size}\\)`,
      ),
    );
  });

  it("fails on an invalid environment variable, naming it", () => {
    const r = grpo(["train", "email", "--output-dir", join(out, "bad")], { MAX_TURNS: "2.5" });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /MAX_TURNS must be a positive integer, got "2.5"/);
    assert.ok(!existsSync(join(out, "bad")));
  });
});
