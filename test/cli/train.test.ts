import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDirs } from "../helpers/tmp.ts";

const root = join(import.meta.dirname, "..", "..");
const out = tempDirs("grpo-cli-train-")();

function grpo(...args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(root, "src/cli/main.ts"), ...args], {
    cwd: root,
    encoding: "utf8",
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const small = [
  "--group-size",
  "4",
  "--sft-steps",
  "2",
  "--eval-samples",
  "4",
  "--eval-interval",
  "0",
  "--backend",
  "cpu",
  "--seed",
  "3",
];

describe("grpo train theory", () => {
  it("trains, resumes and evaluates through the CLI", () => {
    const dir = join(out, "run");
    const first = grpo(
      "train",
      "theory",
      "--num-episodes",
      "2",
      "--save-interval",
      "2",
      "--output-dir",
      dir,
      ...small,
    );
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /done: 2 steps/);
    for (const f of [
      "history.jsonl",
      "training_stats.json",
      "checkpoint-2/model.safetensors",
      "final/metadata.json",
      "best_model/model.safetensors",
    ]) {
      assert.ok(existsSync(join(dir, f)), f);
    }
    const again = grpo("train", "theory", "--num-episodes", "3", "--output-dir", dir, ...small);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /history\.jsonl exists: pass --resume/);

    const resumed = grpo(
      "train",
      "theory",
      "--num-episodes",
      "3",
      "--resume",
      "--save-interval",
      "0",
      "--output-dir",
      dir,
      ...small,
    );
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /resumed at step 2/);
    const steps = readFileSync(join(dir, "history.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).step);
    assert.deepEqual(steps, [1, 2, 3]);

    const ev = grpo(
      "train",
      "theory",
      "--eval",
      "--checkpoint",
      join(dir, "final"),
      "--eval-samples",
      "8",
      "--backend",
      "cpu",
    );
    assert.equal(ev.code, 0, ev.stderr);
    assert.match(ev.stdout, /anomaly-free & non-trivial [\d.]+% of 8/);
  });

  it("--preset learning fills the options left at their defaults; explicit flags win", () => {
    const dir = join(out, "preset");
    const r = grpo(
      "train",
      "theory",
      "--preset",
      "learning",
      "--num-episodes",
      "1",
      "--downsample",
      "2",
      "--save-interval",
      "0",
      "--output-dir",
      dir,
      ...small,
    );
    assert.equal(r.code, 0, r.stderr);
    const stats = JSON.parse(readFileSync(join(dir, "training_stats.json"), "utf8"));
    // From the command line.
    assert.equal(stats.config.numGenerations, 4);
    assert.equal(stats.config.downsample, 2);
    assert.equal(stats.sft_steps, 2);
    // From the preset.
    assert.equal(stats.config.learningRate, 5e-4);
    assert.equal(stats.config.beta, 0.01);
    assert.deepEqual(stats.config.replay, { capacity: 64, perStep: 2 });
    assert.ok(stats.config.curriculum, "the preset turns the curriculum on");
    assert.equal(stats.partial_credit, 0);
  });

  it("names the missing file for a bad checkpoint", () => {
    const r = grpo("train", "theory", "--eval", "--checkpoint", join(out, "nope"), "--backend", "cpu");
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /nope/);
  });

  it("documents every flag and gives an example", () => {
    const r = grpo("train", "theory", "--help");
    assert.equal(r.code, 0);
    for (const flag of [
      "--num-episodes",
      "--group-size",
      "--learning-rate",
      "--kl-coef",
      "--clip-range",
      "--entropy-coef",
      "--use-curriculum",
      "--resume",
      "--eval",
      "--backend",
      "--sft-steps",
      "--model-size",
    ]) {
      assert.ok(r.stdout.includes(flag), flag);
    }
    assert.match(r.stdout, /Examples:/);
  });
});
