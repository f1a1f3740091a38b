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
  groupSize: 4,
  promptsPerStep: 2,
  maxNewTokens: 4,
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
        for (let k = 0; k < req.groupSize; k++) {
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
      task.requests.map((q) => [q.split, q.count, q.groupSize]),
      [["train", 2, 4]],
    );
    // 8 rollouts × 3 trained tokens (the tool token and nothing after eos is masked).
    assert.equal(r.trainable_tokens, 24);
    assert.equal(r.completion_tokens, 32);
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
