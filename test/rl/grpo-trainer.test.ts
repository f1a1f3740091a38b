/**
 * GRPOTrainer, TRL's API, on a tiny random model written in the exact Hugging Face layout: the
 * reward functions' arguments, the weighted sum and the per-function metrics, learning, LoRA
 * checkpoints in PEFT's layout, resume, and the errors for bad input.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../../src/model/backend.ts";
import { loadModel } from "../../src/model/safetensors.ts";
import { GRPOTrainer, type RewardFuncArgs } from "../../src/rl/grpo-trainer.ts";
import { writeTinyChatModel } from "../helpers/tiny-chat-model.ts";
import { tempDirs } from "../helpers/tmp.ts";

const tmp = tempDirs("grpo-trl-");
let modelDir = "";

before(async () => {
  await initBackend("cpu");
  modelDir = join(tmp("model"), "tiny");
  writeTinyChatModel(modelDir, { seed: 3 });
});

const rows = [
  { prompt: [{ role: "user", content: "Say hello." }], target: "hello", level: 1 },
  { prompt: [{ role: "user", content: "Name a colour." }], target: "red", level: 2 },
  { prompt: [{ role: "user", content: "Count to three." }], target: "123", level: 3 },
];

function history(dir: string): Record<string, number>[] {
  return readFileSync(join(dir, "history.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

/** Low token ids: a dense reward the tiny model can learn within a few steps. */
function lowIds({ completionIds }: RewardFuncArgs): number[] {
  return completionIds.map((ids) => ids.filter((i) => i < 100).length / Math.max(1, ids.length));
}

describe("GRPOTrainer", () => {
  it("passes prompts, completions, ids and every column to each reward function, and logs rewards/<name>/mean and /std", async () => {
    const seen: RewardFuncArgs[] = [];
    function echo(args: RewardFuncArgs): number[] {
      seen.push(args);
      return args.completions.map((c) => (Array.isArray(c) ? c[0].content.length : -1));
    }
    const byLevel = ({ level }: RewardFuncArgs) => level.map((l) => Number(l));
    const out = tmp("run");
    const logs: Record<string, number>[] = [];
    const trainer = new GRPOTrainer({
      onLog: (e) => logs.push(e),
      model: modelDir,
      rewardFuncs: [echo, { name: "level", fn: byLevel }],
      trainDataset: rows,
      config: {
        numGenerations: 4,
        perDeviceTrainBatchSize: 8,
        maxCompletionLength: 6,
        maxSteps: 2,
        rewardWeights: [0.5, 2],
        saveSteps: 0,
        loggingSteps: 1,
        learningRate: 1e-3,
      },
      outputDir: out,
    });
    await trainer.train();
    // one call per reward function per step, over 2 prompts × 4 completions
    assert.equal(seen.length, 2);
    const a = seen[0]!;
    assert.equal(a.completions.length, 8);
    assert.equal(a.prompts.length, 8);
    assert.equal(a.completionIds.length, 8);
    // a group's 4 completions share their prompt and columns
    for (let g = 0; g < 2; g++) {
      for (let j = 1; j < 4; j++) {
        assert.deepEqual(a.prompts[4 * g + j], a.prompts[4 * g]);
        assert.equal(a.target![4 * g + j], a.target![4 * g]);
      }
      const row = rows.find((r) => r.target === a.target![4 * g])!;
      assert.deepEqual(a.prompts[4 * g], row.prompt);
      assert.equal(a.level![4 * g], row.level);
    }
    // chat prompts get assistant turns as completions, and the ids are what was decoded
    for (const c of a.completions) {
      assert.ok(Array.isArray(c) && c[0].role === "assistant");
    }
    for (const ids of a.completionIds) assert.ok(ids.length >= 1 && ids.length <= 6);

    const h = history(out);
    assert.equal(h.length, 2);
    const first = h[0]!;
    for (const k of ["rewards/echo/mean", "rewards/echo/std", "rewards/level/mean", "rewards/level/std"])
      assert.ok(typeof first[k] === "number", `${k} in ${JSON.stringify(first)}`);
    // the reward is the weighted sum of the functions' values: its mean is Σ w · mean
    const want = 0.5 * first["rewards/echo/mean"]! + 2 * first["rewards/level/mean"]!;
    assert.ok(Math.abs(first.reward! - want) < 1e-9, `${first.reward} vs ${want}`);
    // the per-function std is that function's own (level: the two groups' levels, 4 each)
    const levels = (a.level as number[]).map(Number);
    const mu = levels.reduce((x, y) => x + y, 0) / 8;
    const sd = Math.sqrt(levels.reduce((x, y) => x + (y - mu) ** 2, 0) / 8);
    assert.ok(Math.abs(first["rewards/level/std"]! - sd) < 1e-9);
    for (const k of [
      "loss",
      "kl",
      "entropy",
      "clip_ratio/low_mean",
      "completions/mean_length",
      "frac_reward_zero_std",
    ])
      assert.ok(k in first, k);
    // logging every step: epoch counts rows seen, the learning rate is reported as TRL does
    assert.equal(logs.length, 2);
    assert.equal(logs[1]!.step, 2);
    assert.ok(Math.abs(logs[1]!.epoch! - 4 / 3) < 1e-12);
    assert.equal(logs[1]!.learning_rate, 1e-3);
    // no eval dataset: no evaluation, no best_model/, but final/ and the stats
    assert.ok(!existsSync(join(out, "best_model")));
    assert.ok(existsSync(join(out, "final", "model.safetensors")));
    assert.ok(
      existsSync(join(out, "final", "tokenizer.json")),
      "a full fine-tune's final/ carries the tokenizer",
    );
    assert.ok(existsSync(join(out, "training_stats.json")));
    trainer.dispose();
  });

  it("learns: the reward rises on a dense reward within a few steps", async () => {
    const trainer = new GRPOTrainer({
      model: modelDir,
      rewardFuncs: lowIds,
      trainDataset: rows,
      config: {
        numGenerations: 8,
        perDeviceTrainBatchSize: 16,
        maxCompletionLength: 8,
        maxSteps: 12,
        learningRate: 5e-2,
        saveSteps: 0,
        lossType: "dapo",
        seed: 5,
      },
      outputDir: tmp("learn"),
    });
    await trainer.train();
    const h = history(trainer.outputDir).map((r) => r.reward!);
    const start = (h[0]! + h[1]! + h[2]!) / 3;
    const end = (h.at(-1)! + h.at(-2)! + h.at(-3)!) / 3;
    assert.ok(end > start + 0.3, `reward ${h.map((r) => r.toFixed(2)).join(" ")}`);
    trainer.dispose();
  });

  it("LoRA: checkpoints hold a PEFT adapter over the model directory, and final/ loads back as the trained policy", async () => {
    const out = tmp("lora");
    const trainer = new GRPOTrainer({
      model: modelDir,
      rewardFuncs: lowIds,
      trainDataset: rows,
      evalDataset: rows.slice(0, 2),
      config: {
        numGenerations: 4,
        perDeviceTrainBatchSize: 4,
        maxCompletionLength: 5,
        maxSteps: 2,
        saveSteps: 1,
        evalSteps: 2,
        numGenerationsEval: 2,
        learningRate: 1e-2,
        beta: 0.04,
        lossType: "cispo",
        lora: { r: 4, loraAlpha: 8, loraDropout: 0, targetModules: ["q_proj", "v_proj", "down_proj"] },
      },
      outputDir: out,
    });
    await trainer.train();
    for (const d of ["checkpoint-1", "checkpoint-2", "final", "best_model"]) {
      const cfg = JSON.parse(readFileSync(join(out, d, "adapter_config.json"), "utf8"));
      assert.equal(cfg.peft_type, "LORA");
      assert.equal(cfg.r, 4);
      assert.equal(cfg.lora_alpha, 8);
      assert.deepEqual([...cfg.target_modules].sort(), ["down_proj", "q_proj", "v_proj"]);
      assert.equal(join(out, d, cfg.base_model_name_or_path), modelDir, d);
      assert.ok(!existsSync(join(out, d, "model.safetensors")), `${d} holds only the adapter`);
    }
    // β > 0: the frozen reference is stored as its own adapter over the same base, not as full weights
    assert.ok(existsSync(join(out, "checkpoint-2", "trainer_state", "reference", "adapter_config.json")));
    const h = history(out);
    assert.ok(typeof h[1]!.eval_reward === "number", JSON.stringify(h[1]));
    const ids = tf.tensor2d([[335, 20, 40, 60, 80, 336]], undefined, "int32");
    const mine = trainer.model!.tokenLogprobs(ids).logprobs;
    const back = loadModel(join(out, "final"));
    const theirs = back.tokenLogprobs(ids).logprobs;
    const diff = tf.max(tf.abs(tf.sub(mine, theirs))).dataSync()[0]!;
    assert.ok(diff < 1e-5, `final/ logprobs differ by ${diff}`);
    // and the adapter did move the policy off its base
    const base = loadModel(modelDir);
    const moved = tf.max(tf.abs(tf.sub(mine, base.tokenLogprobs(ids).logprobs))).dataSync()[0]!;
    assert.ok(moved > 1e-4, `adapter changed nothing (${moved})`);
    tf.dispose([ids, mine, theirs]);
    back.dispose();
    base.dispose();
    const evalMetrics = await trainer.evaluate();
    assert.ok(typeof evalMetrics["eval_rewards/lowIds/mean"] === "number", JSON.stringify(evalMetrics));
    trainer.dispose();
  });

  it("resumes bit for bit: 2 steps, then 2 more from checkpoint-2, equal a 4-step run", async () => {
    const cfg = {
      numGenerations: 4,
      perDeviceTrainBatchSize: 8,
      maxCompletionLength: 5,
      learningRate: 1e-2,
      saveSteps: 2,
      lora: { r: 2, loraAlpha: 4, loraDropout: 0, targetModules: ["q_proj", "o_proj"] },
    };
    const whole = new GRPOTrainer({
      model: modelDir,
      rewardFuncs: lowIds,
      trainDataset: rows,
      config: { ...cfg, maxSteps: 4 },
      outputDir: tmp("whole"),
    });
    await whole.train();
    whole.dispose();
    const split = tmp("split");
    const a = new GRPOTrainer({
      model: modelDir,
      rewardFuncs: lowIds,
      trainDataset: rows,
      config: { ...cfg, maxSteps: 2 },
      outputDir: split,
    });
    await a.train();
    a.dispose();
    const b = new GRPOTrainer({
      model: modelDir,
      rewardFuncs: lowIds,
      trainDataset: rows,
      config: { ...cfg, maxSteps: 4 },
      outputDir: split,
    });
    const res = await b.train({ resumeFromCheckpoint: true });
    assert.equal(res.globalStep, 4);
    b.dispose();
    const strip = (h: Record<string, number>[]) => h.map(({ step_time: _, ...r }) => r);
    assert.deepEqual(strip(history(split)), strip(history(whole.outputDir)));
  });

  it("rejects bad input with the file, line, row and field", () => {
    const base = { model: modelDir, rewardFuncs: lowIds, outputDir: tmp("bad") };
    assert.throws(
      () => new GRPOTrainer({ ...base, trainDataset: [{ prompt: "a" }, { question: "b" }] as never }),
      /trainDataset: row 1 \(field prompt\)/,
    );
    assert.throws(
      () => new GRPOTrainer({ ...base, trainDataset: [{ prompt: [{ role: "user" }] }] as never }),
      /trainDataset: row 0 \(field prompt/,
    );
    const file = join(tmp("files"), "train.jsonl");
    writeFileSync(file, '{"prompt": "ok"}\n{"prompt": 3}\n');
    assert.throws(() => new GRPOTrainer({ ...base, trainDataset: file }), /train\.jsonl:2 \(field prompt\)/);
    assert.throws(
      () => new GRPOTrainer({ ...base, trainDataset: rows, config: { numGenerations: 3 } }),
      /perDeviceTrainBatchSize \(8\) must be a multiple of numGenerations \(3\)/,
    );
    assert.throws(
      () => new GRPOTrainer({ ...base, trainDataset: rows, config: { rewardWeights: [1, 2] } }),
      /rewardWeights has 2 weights for 1 reward functions/,
    );
    assert.throws(
      () => new GRPOTrainer({ ...base, rewardFuncs: [], trainDataset: rows }),
      /rewardFuncs is empty/,
    );
  });

  it("a reward function that returns the wrong number of values is an error naming it", async () => {
    const short = (_: RewardFuncArgs) => [1];
    const trainer = new GRPOTrainer({
      model: modelDir,
      rewardFuncs: short,
      trainDataset: rows,
      config: { numGenerations: 2, perDeviceTrainBatchSize: 2, maxCompletionLength: 3, maxSteps: 1 },
      outputDir: tmp("short"),
    });
    await assert.rejects(trainer.train(), /reward "short" returned 1 values for 2 completions/);
    trainer.dispose();
  });
});
