import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../../src/core/rng.ts";
import { LORA_TARGETS } from "../../src/model/gpt.ts";
import { saveModel } from "../../src/model/safetensors.ts";
import { loadPolicy } from "../../src/rl/checkpoint.ts";
import { DEFAULT_TRAINER_CONFIG, GrpoTrainer, type TrainerConfig } from "../../src/rl/trainer.ts";
import type { EpisodeRequest, RlTask, Rollout } from "../../src/rl/types.ts";
import { tempDirs } from "../helpers/tmp.ts";
import { EOS, tinyGpt, toyTask } from "./toy.ts";

await tf.setBackend("cpu");

const tmp = tempDirs("grpo-episodes-");

const config: TrainerConfig = {
  ...DEFAULT_TRAINER_CONFIG,
  numGenerations: 4,
  promptsPerStep: 2,
  maxCompletionLength: 4,
  beta: 0.05,
  entropyCoef: 0.01,
  learningRate: 1e-2,
  evalEvery: 1,
  evalSamples: 1,
  seed: 3,
};

/**
 * A task that runs its own "episodes": training rollouts have prompts of different lengths and
 * a tool mask; evaluation k reports the scripted accuracy `evalAccuracy[k]` (of 10 episodes).
 */
function episodeTask(evalAccuracy: number[]): RlTask & { requests: EpisodeRequest[] } {
  let evals = 0;
  const requests: EpisodeRequest[] = [];
  return {
    ...toyTask(),
    name: "scripted-episodes",
    requests,
    trainPrompts: () => {
      throw new Error("not used when the task runs its own rollouts");
    },
    rollouts(_policy, req): Rollout[] {
      requests.push(req);
      if (req.split === "eval") {
        const acc = evalAccuracy[Math.min(evals++, evalAccuracy.length - 1)]!;
        return Array.from({ length: 10 }, (_, i) => ({
          group: 0,
          prompt: [0],
          tokens: [2, EOS],
          finished: true,
          reward: i < acc * 10 ? 1 : 0,
          success: i < acc * 10,
        }));
      }
      const out: Rollout[] = [];
      for (let g = 0; g < req.count; g++) {
        for (let k = 0; k < req.numGenerations; k++) {
          const tokens = [2 + req.rng.int(4), 3, 2 + req.rng.int(4), EOS];
          out.push({
            group: g,
            prompt: g === 0 ? [0] : [0, 3],
            tokens,
            finished: true,
            toolMask: [1, 0, 1, 1],
            reward: tokens[0] === 2 ? 1 : 0,
            success: tokens[0] === 2,
          });
        }
      }
      return out;
    },
  };
}

describe("trainer with task-run episodes", () => {
  it("asks the task for grouped rollouts and trains on prompts of different lengths", () => {
    const task = episodeTask([0.5]);
    const t = new GrpoTrainer(tinyGpt(5), { task, config });
    const r = t.trainStep(false);
    assert.deepEqual(
      task.requests.map((q) => [q.split, q.count, q.numGenerations]),
      [["train", 2, 4]],
    );
    // 8 rollouts × 3 trained tokens (the tool token and nothing after eos is masked).
    assert.equal(r.trainable_tokens, 24);
    assert.equal(r.completion_tokens, 32);
    // One definition: the ratio is of these two counts, not of the padded batch's slots (24 / 40).
    assert.equal(r.trainable_tokens_ratio, 24 / 32);
    assert.ok(Number.isFinite(r.loss!));
    const e = t.evaluate();
    assert.deepEqual(e, { successRate: 0.5, reward: 0.5 });
    assert.equal(task.requests.at(-1)!.split, "eval");
    t.policy.dispose();
    t.dispose();
  });

  it("stops early once an evaluation reaches the target accuracy, and still writes final/", async () => {
    const out = tmp();
    const logs: string[] = [];
    const t = new GrpoTrainer(tinyGpt(6), {
      task: episodeTask([0.1, 0.5, 0.9, 1]),
      config: { ...config, targetAccuracy: 0.8 },
      outputDir: out,
      log: (l) => logs.push(l),
    });
    const records = await t.train(10);
    assert.equal(t.step, 3);
    assert.equal(records.length, 3);
    assert.ok(t.stoppedEarly);
    assert.ok(logs.some((l) => /reached the target 0.8; stopping/.test(l)));
    const meta = JSON.parse(readFileSync(join(out, "final", "metadata.json"), "utf8"));
    assert.equal(meta.step, 3);
    assert.equal(meta.accuracy, 0.9);
    t.policy.dispose();
    t.dispose();
  });

  it("does not stop when no evaluation reaches the target", async () => {
    const t = new GrpoTrainer(tinyGpt(6), {
      task: episodeTask([0.1, 0.5, 0.7]),
      config: { ...config, targetAccuracy: 0.8 },
    });
    await t.train(4);
    assert.equal(t.step, 4);
    assert.equal(t.stoppedEarly, false);
    t.policy.dispose();
    t.dispose();
  });

  it("keeps as best_model the policy of the best evaluation, saved as a LoRA adapter over its base", async () => {
    const out = tmp();
    const logs: string[] = [];
    const policy = tinyGpt(7);
    const baseDir = join(out, "base_model");
    saveModel(baseDir, policy);
    policy.enableLoRA({ r: 2, alpha: 4, targetModules: [...LORA_TARGETS] }, new Rng(1));
    const t = new GrpoTrainer(policy, {
      task: episodeTask([0.2, 0.6, 0.4, 0.6]),
      config,
      outputDir: out,
      log: (l) => logs.push(l),
      baseModelDir: baseDir,
    });
    const probe = tf.tensor2d([[0, 2, 3, 4, 5]], [1, 5], "int32");
    const logprobs = () => tf.tidy(() => Array.from(t.policy.tokenLogprobs(probe).logprobs.dataSync()));
    let atStep2: number[] = [];
    await t.train(4, (r) => {
      if (r.step === 2) atStep2 = logprobs();
    });
    // 0.6 again at step 4 is not better: the first policy to reach it stays.
    assert.deepEqual(t.best, { successRate: 0.6, reward: 0.6, step: 2 });
    assert.deepEqual(
      logs.filter((l) => l.startsWith("New best accuracy")),
      ["New best accuracy: 0.2000 (step 1)", "New best accuracy: 0.6000 (step 2)"],
    );
    const dir = join(out, "best_model");
    const meta = JSON.parse(readFileSync(join(dir, "metadata.json"), "utf8"));
    assert.equal(meta.step, 2);
    assert.equal(meta.accuracy, 0.6);
    assert.ok(existsSync(join(dir, "adapter_model.safetensors")));
    assert.ok(!existsSync(join(dir, "model.safetensors")), "the adapter points at the base; no copy");
    const adapterCfg = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
    assert.equal(adapterCfg.base_model_name_or_path, "../base_model");
    const best = loadPolicy(dir);
    const bestLp = tf.tidy(() => Array.from(best.tokenLogprobs(probe).logprobs.dataSync()));
    assert.ok(best.loraConfig !== null);
    const now = logprobs();
    assert.ok(
      atStep2.some((v, i) => Math.abs(v - now[i]!) > 1e-6),
      "the policy did not change after step 2; the test cannot tell steps apart",
    );
    for (const [i, v] of atStep2.entries()) assert.ok(Math.abs(v - bestLp[i]!) < 1e-5, `logprob ${i}`);
    // final/ is resumable from the adapter checkpoint.
    const resumed = await GrpoTrainer.resume({
      task: episodeTask([0.5]),
      config,
      checkpointDir: join(out, "final"),
      baseModelDir: baseDir,
    });
    assert.equal(resumed.step, 4);
    assert.ok(resumed.policy.loraConfig !== null);
    resumed.policy.dispose();
    resumed.dispose();
    best.dispose();
    probe.dispose();
    t.policy.dispose();
    t.dispose();
  });
});

/** Group g's rewards are `rewards[g]` (one per rollout), each rollout 3 trained tokens of 4. */
function fixedRewardTask(rewards: number[][]): RlTask {
  return {
    ...toyTask(),
    name: "fixed-rewards",
    rollouts(_policy, req): Rollout[] {
      return rewards
        .flatMap((group, g) =>
          group.map((reward) => ({
            group: g,
            prompt: [0],
            tokens: [2, 3, 2, EOS],
            finished: true,
            toolMask: [1, 0, 1, 1],
            reward,
            success: reward > 0,
          })),
        )
        .slice(0, req.count * req.numGenerations);
    },
  };
}

function weights(t: GrpoTrainer): number[] {
  return Object.values(t.policy.namedWeights()).flatMap((w) => Array.from(w.dataSync()));
}

describe("dynamic sampling (DAPO)", () => {
  const cfg = { ...config, dynamicSampling: true };

  it("drops the groups whose rewards are all equal from the update and counts them", () => {
    const rewards = [
      [1, 1, 1, 1],
      [1, 0, 0, 1],
    ];
    const t = new GrpoTrainer(tinyGpt(8), { task: fixedRewardTask(rewards), config: cfg });
    const r = t.trainStep(false);
    assert.equal(r.dropped_groups, 1);
    // The statistics still see both groups; the update only the second: 4 rows × 3 trained tokens.
    assert.equal(r.frac_reward_zero_std, 0.5);
    assert.equal(r.trainable_tokens, 12);
    assert.equal(r.completion_tokens, 16);
    assert.ok(Number.isFinite(r.loss!));
    // Without the option both groups are in the batch, and no count is written.
    const plain = new GrpoTrainer(tinyGpt(8), { task: fixedRewardTask(rewards), config });
    const p = plain.trainStep(false);
    assert.equal(p.trainable_tokens, 24);
    assert.equal(p.dropped_groups, undefined);
    for (const x of [t, plain]) {
      x.policy.dispose();
      x.dispose();
    }
  });

  it("takes no step when every group is dropped, and says so", () => {
    const t = new GrpoTrainer(tinyGpt(9), {
      task: fixedRewardTask([
        [0, 0, 0, 0],
        [1, 1, 1, 1],
      ]),
      config: cfg,
    });
    const before = weights(t);
    const r = t.trainStep(false);
    assert.equal(r.dropped_groups, 2);
    assert.equal(r.loss, null);
    assert.equal(r.kl, null);
    assert.equal(r.trainable_tokens, 0);
    assert.equal(r.step, 1);
    assert.deepEqual(weights(t), before);
    t.policy.dispose();
    t.dispose();
  });
});
