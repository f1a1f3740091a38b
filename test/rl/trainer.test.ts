import assert from "node:assert/strict";
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import { computeAdvantages } from "../../src/core/advantages.ts";
import { GRPO_DEFAULTS } from "../../src/core/config.ts";
import { resolveLossConfig } from "../../src/core/loss.ts";
import { readJsonl } from "../../src/io/files.ts";
import type { GPT } from "../../src/model/gpt.ts";
import { DEFAULT_TRAINER_CONFIG, GrpoTrainer } from "../../src/rl/trainer.ts";
import type { SampleFn } from "../../src/rl/types.ts";
import { tempDirs } from "../helpers/tmp.ts";
import { EOS, TARGET, TOY_TRAINER_CONFIG, tinyGpt, toyTask } from "./toy.ts";

function close(actual: number, expected: number, tol = 1e-5): void {
  assert.ok(Math.abs(actual - expected) <= tol * (1 + Math.abs(expected)), `${actual} vs ${expected}`);
}

await tf.setBackend("cpu");

const tmp = tempDirs("grpo-rl-");

const config = TOY_TRAINER_CONFIG;

function weightsOf(t: GrpoTrainer): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [k, v] of Object.entries(t.policy.namedWeights())) out[k] = Array.from(v.dataSync());
  return out;
}

function historyWithoutTimes(dir: string) {
  return readJsonl(join(dir, "history.jsonl")).records.map((r) => {
    const { step_time: _t, ...rest } = r.value as Record<string, unknown>;
    return rest;
  });
}

describe("GRPO trainer on a toy task", () => {
  it("takes its defaults from GrpoConfig, loss options included", () => {
    const { maxCompletionLength, ...trainerLoss } = resolveLossConfig(DEFAULT_TRAINER_CONFIG);
    const { maxCompletionLength: _none, ...bare } = resolveLossConfig();
    assert.deepEqual(trainerLoss, bare);
    assert.equal(maxCompletionLength, GRPO_DEFAULTS.maxCompletionLength);
    for (const [k, v] of Object.entries(GRPO_DEFAULTS))
      assert.equal(DEFAULT_TRAINER_CONFIG[k as keyof typeof GRPO_DEFAULTS], v, k);
  });

  it("dr_grpo divides by G × maxCompletionLength, not by the batch width, when completions stop early", () => {
    const L = 6;
    // Scripted completions that all end with eos well before the limit: the batch is 4 wide.
    const scripted = [
      [TARGET, EOS],
      [3, TARGET, EOS],
      [TARGET, TARGET, TARGET, EOS],
      [4, EOS],
    ];
    const sample: SampleFn<GPT> = (_model, prompts) => ({
      tokens: prompts.map((_, i) => scripted[i % scripted.length]!),
      logprobs: prompts.map((_, i) => scripted[i % scripted.length]!.map(() => -1)),
      finished: prompts.map(() => true),
    });
    const cfg = {
      ...config,
      numGenerations: 4,
      promptsPerStep: 1,
      maxCompletionLength: L,
      lossType: "dr_grpo" as const,
      beta: 0,
      entropyCoef: 0,
    };
    const t = new GrpoTrainer(tinyGpt(4), { task: toyTask(), config: cfg, sample });
    const r = t.trainStep(false);
    const task = toyTask();
    const rewards = scripted.map((tokens) => task.reward(tokens, 1).total);
    const A = computeAdvantages([rewards]).advantages[0]!;
    // One pass: ρ = 1 on every token, so each trained token contributes −A of its row.
    const sum = scripted.reduce((s, tokens, i) => s - tokens.length * A[i]!, 0);
    close(r.policy_loss!, sum / (4 * L));
    close(r.loss!, sum / (4 * L));
    assert.ok(Math.abs(sum / (4 * L) - sum / (4 * 4)) > 1e-3, "the two normalisers must differ here");
    t.policy.dispose();
    t.dispose();
  });

  it("raises the reward in a few steps (a sign error would lower it)", () => {
    const t = new GrpoTrainer(tinyGpt(), { task: toyTask(), config });
    const before = t.evaluate();
    const rewards: number[] = [];
    for (let i = 0; i < 8; i++) rewards.push(t.trainStep().reward!);
    const after = t.evaluate();
    // Untrained, a token is the target ~1/6 of the time.
    assert.ok(before.reward < 0.35, `start reward ${before.reward}`);
    assert.ok(after.reward > before.reward + 0.3, `eval reward ${before.reward} → ${after.reward}`);
    assert.ok(rewards.at(-1)! > rewards[0]! + 0.3, `train rewards ${rewards.map((r) => r.toFixed(2))}`);
    t.policy.dispose();
    t.dispose();
  });

  it("takes each Adam step at the scheduled learning rate (linear: half of it halfway)", () => {
    const run = (lrSchedulerType: "constant" | "linear") =>
      new GrpoTrainer(tinyGpt(), { task: toyTask(), config: { ...config, maxSteps: 2, lrSchedulerType } });
    const constant = run("constant");
    const linear = run("linear");
    const first = [constant.trainStep(false), linear.trainStep(false)];
    const afterFirst = weightsOf(constant);
    assert.deepEqual(weightsOf(linear), afterFirst);
    const second = [constant.trainStep(false), linear.trainStep(false)];
    assert.deepEqual(
      [...first, ...second].map((r) => r.learning_rate),
      [3e-2, 3e-2, 3e-2, 1.5e-2],
    );
    // The same samples and Adam moments (the first steps were equal): the second step is half as long.
    const c = weightsOf(constant);
    const l = weightsOf(linear);
    let longest = 0;
    for (const [name, w1] of Object.entries(afterFirst)) {
      w1.forEach((w, i) => {
        const full = c[name]![i]! - w;
        const half = l[name]![i]! - w;
        longest = Math.max(longest, Math.abs(full));
        assert.ok(
          Math.abs(half - full / 2) <= 1e-6 + 1e-3 * Math.abs(full),
          `${name}[${i}]: ${half} vs ${full}`,
        );
      });
    }
    assert.ok(longest > 1e-3, `the second step moved the weights by at most ${longest}`);
    for (const t of [constant, linear]) {
      t.policy.dispose();
      t.dispose();
    }
  });

  it("does not leak tensors: the count is stable after warm-up", () => {
    const t = new GrpoTrainer(tinyGpt(2), { task: toyTask(), config });
    // The model keeps one causal mask per sequence length it has seen; visit them all first.
    for (const m of [t.policy, t.reference]) {
      if (!m) continue;
      for (let T = 2; T <= 8; T++)
        tf.tidy(() => m.tokenLogprobs(tf.zeros([1, T], "int32") as tf.Tensor2D).logprobs);
    }
    t.trainStep();
    t.trainStep();
    const warm = tf.memory().numTensors;
    for (let i = 0; i < 4; i++) t.trainStep();
    t.evaluate(8);
    assert.equal(tf.memory().numTensors, warm);
    t.policy.dispose();
    t.dispose();
  });

  it("writes history, checkpoints, best_model, final and training_stats", async () => {
    const out = tmp();
    const t = new GrpoTrainer(tinyGpt(3), {
      task: { ...toyTask(), describe: (tokens: number[]) => tokens.join(",") },
      config: { ...config, evalEvery: 2, saveEvery: 2 },
      outputDir: out,
    });
    await t.train(4);
    // samples.jsonl: best and worst of a group at step 1 and every evalEvery steps, for the report.
    const samples = readJsonl(join(out, "samples.jsonl")).records.map(
      (r) => r.value as { step: number; best: { text: string; reward: number }; worst: { reward: number } },
    );
    assert.deepEqual(
      samples.map((s) => s.step),
      [1, 2, 4],
    );
    for (const s of samples) {
      assert.ok(s.best.reward >= s.worst.reward);
      assert.match(s.best.text, /^\d+(,\d+)*$|^$/);
    }
    for (const d of ["checkpoint-2", "checkpoint-4", "best_model", "final"]) {
      assert.ok(existsSync(join(out, d, "model.safetensors")), `${d}/model.safetensors`);
      const meta = JSON.parse(readFileSync(join(out, d, "metadata.json"), "utf8"));
      assert.equal(typeof meta.step, "number");
      assert.ok("accuracy" in meta && "reward" in meta && "config" in meta);
    }
    const hist = readJsonl(join(out, "history.jsonl")).records.map((r) => r.value as Record<string, number>);
    assert.deepEqual(
      hist.map((h) => h.step),
      [1, 2, 3, 4],
    );
    for (const k of [
      "reward",
      "reward_std",
      "frac_reward_zero_std",
      "kl",
      "entropy",
      "clip_ratio/low_mean",
      "clip_ratio/high_mean",
      "completions/mean_length",
      "completions/clipped_ratio",
      "trainable_tokens_ratio",
      "step_time",
      "loss",
      "success_rate",
    ]) {
      assert.equal(typeof hist[0]![k], "number", k);
    }
    assert.equal(typeof hist[1]!.eval_success_rate, "number");
    const stats = JSON.parse(readFileSync(join(out, "training_stats.json"), "utf8"));
    assert.equal(stats.steps, 4);
    t.policy.dispose();
    t.dispose();
  });

  it("logs each named reward function as rewards/<name>/mean and /std over the step's completions", () => {
    const base = toyTask();
    // Two named parts: the task's own reward and a constant bonus, so both statistics are known.
    const task = {
      ...base,
      reward(tokens: number[], phase: number) {
        const r = base.reward(tokens, phase);
        return { ...r, total: r.total + 0.5, components: { hits: r.total, bonus: 0.5 } };
      },
    };
    const t = new GrpoTrainer(tinyGpt(4), { task, config });
    const rec = t.trainStep(false);
    assert.equal(rec["rewards/bonus/mean"], 0.5);
    assert.equal(rec["rewards/bonus/std"], 0);
    close(rec["rewards/hits/mean"]!, rec.reward! - 0.5);
    assert.ok(rec["rewards/hits/std"]! >= 0);
    t.policy.dispose();
    t.dispose();
  });

  it("announces a new best only when the success rate rises, and names the measure otherwise", async () => {
    const lines: string[] = [];
    const t = new GrpoTrainer(tinyGpt(5), {
      task: { ...toyTask(), successLabel: "success" },
      config,
      outputDir: tmp(),
      log: (l) => lines.push(l),
    });
    // Scripted evaluations: the first sets the best, an equal rate with a higher reward only
    // updates the model, an equal rate with a lower reward changes nothing, a higher rate is news.
    const evals = [
      { successRate: 0.25, reward: 0.1 },
      { successRate: 0.25, reward: 0.2 },
      { successRate: 0.25, reward: 0.15 },
      { successRate: 0.5, reward: 0.0 },
    ];
    t.evaluate = () => evals.shift()!;
    for (let i = 0; i < 4; i++) await t.evaluateAndTrack();
    assert.equal(lines.length, 3, lines.join("\n"));
    assert.match(lines[0]!, /^New best success: 0\.2500/);
    assert.match(lines[1]!, /^Best model updated: eval reward 0\.1000 → 0\.2000 at equal success 0\.2500/);
    assert.match(lines[2]!, /^New best success: 0\.5000/);
    assert.deepEqual(t.best, { successRate: 0.5, reward: 0, step: 0 });
    t.policy.dispose();
    t.dispose();
  });

  it("resume continues bit-for-bit: 4 steps == 2 steps, save, reload, 2 more", async () => {
    const cfg = {
      ...config,
      saveEvery: 2,
      replay: { capacity: 8, perStep: 1 },
      curriculum: { phases: 2, threshold: 0.5, window: 1 },
    };
    const a = tmp();
    const full = new GrpoTrainer(tinyGpt(4), { task: toyTask(), config: cfg, outputDir: a });
    await full.train(4);
    const wFull = weightsOf(full);

    const b = tmp();
    const first = new GrpoTrainer(tinyGpt(4), { task: toyTask(), config: cfg, outputDir: b });
    await first.train(2);
    // A third step that the resumed run must discard from the history.
    first.trainStep();
    first.policy.dispose();
    first.dispose();
    const resumed = await GrpoTrainer.resume({ task: toyTask(), config: cfg, outputDir: b });
    assert.equal(resumed.step, 2);
    await resumed.train(4);
    assert.deepEqual(weightsOf(resumed), wFull);
    assert.deepEqual(historyWithoutTimes(b), historyWithoutTimes(a));
    for (const t of [full, resumed]) {
      t.policy.dispose();
      t.dispose();
    }
  });
});

describe("resume from final/", () => {
  it("continues a run that ended between checkpoints from final/, as if it had not stopped", async () => {
    const cfg = { ...config, saveEvery: 3 };
    const a = tmp();
    const full = new GrpoTrainer(tinyGpt(6), { task: toyTask(), config: cfg, outputDir: a });
    await full.train(4);
    const b = tmp();
    const first = new GrpoTrainer(tinyGpt(6), { task: toyTask(), config: cfg, outputDir: b });
    await first.train(2);
    first.policy.dispose();
    first.dispose();
    assert.ok(!existsSync(join(b, "checkpoint-3")) && existsSync(join(b, "final")));
    const resumed = await GrpoTrainer.resume({ task: toyTask(), config: cfg, outputDir: b });
    assert.equal(resumed.step, 2, "final/ (step 2) is the newest state: no checkpoint-N yet");
    await resumed.train(4);
    assert.deepEqual(weightsOf(resumed), weightsOf(full));
    resumed.policy.dispose();
    resumed.dispose();
    // Now checkpoint-3 and final/ at step 4: the newer one is taken.
    assert.ok(existsSync(join(b, "checkpoint-3")));
    const again = await GrpoTrainer.resume({ task: toyTask(), config: cfg, outputDir: b });
    assert.equal(again.step, 4);
    // A run resumed from final/ and stopped after its next checkpoint: that checkpoint is newer.
    await again.train(7);
    again.policy.dispose();
    again.dispose();
    rmSync(join(b, "final"), { recursive: true });
    cpSync(join(b, "checkpoint-3"), join(b, "final"), { recursive: true });
    const later = await GrpoTrainer.resume({ task: toyTask(), config: cfg, outputDir: b });
    assert.equal(later.step, 6, "checkpoint-6, not final/ at step 3");
    later.policy.dispose();
    later.dispose();
    full.policy.dispose();
    full.dispose();
  });
});

describe("checkpoint errors name the file", () => {
  async function saved(): Promise<string> {
    const out = tmp();
    const t = new GrpoTrainer(tinyGpt(5), {
      task: toyTask(),
      config: { ...config, saveEvery: 1 },
      outputDir: out,
    });
    await t.train(1);
    t.policy.dispose();
    t.dispose();
    return out;
  }

  it("truncated model weights", async () => {
    const out = await saved();
    const f = join(out, "checkpoint-1", "model.safetensors");
    writeFileSync(f, readFileSync(f).subarray(0, 40));
    await assert.rejects(GrpoTrainer.resume({ task: toyTask(), config, outputDir: out }), (e: Error) =>
      e.message.includes(f),
    );
  });

  it("weights that do not match config.json", async () => {
    const out = await saved();
    const f = join(out, "checkpoint-1", "config.json");
    const c = JSON.parse(readFileSync(f, "utf8"));
    c.n_embd = 32;
    writeFileSync(f, JSON.stringify(c));
    await assert.rejects(
      GrpoTrainer.resume({ task: toyTask(), config, outputDir: out }),
      (e: Error) => e.message.includes("model.safetensors") || e.message.includes("config.json"),
    );
  });

  it("corrupt optimizer state", async () => {
    const out = await saved();
    const f = join(out, "checkpoint-1", "trainer_state", "optimizer.safetensors");
    writeFileSync(f, Buffer.from("not a safetensors file at all"));
    await assert.rejects(GrpoTrainer.resume({ task: toyTask(), config, outputDir: out }), (e: Error) =>
      e.message.includes(f),
    );
  });

  it("a state.json field of the wrong type", async () => {
    const out = await saved();
    const f = join(out, "checkpoint-1", "trainer_state", "state.json");
    const s = JSON.parse(readFileSync(f, "utf8"));
    s.step = "two";
    writeFileSync(f, JSON.stringify(s));
    await assert.rejects(
      GrpoTrainer.resume({ task: toyTask(), config, outputDir: out }),
      (e: Error) => e.message.includes(f) && e.message.includes("step"),
    );
  });

  it("no resumable checkpoint", async () => {
    await assert.rejects(
      GrpoTrainer.resume({ task: toyTask(), config, outputDir: tmp() }),
      /no resumable checkpoint-N or final\/ directory in /,
    );
  });
});
