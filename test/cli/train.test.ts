import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { QUICK_THEORY_RUN } from "../../src/recipes/theory/presets.ts";
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
    assert.match(first.stdout, /^done: 2 GRPO steps in [\dhms.]+$/m);
    // The last line says what was found and where to look.
    const last = first.stdout.trimEnd().split("\n").at(-1)!;
    assert.match(
      last,
      /^ {2}found \d+ distinct anomaly-free, non-trivial theories \(\d+ not in the demonstrations, [\d.e-]+% of the 37706 the grammar allows\); share [\d.]+% → [\d.]+%; see: npx grpo report /,
    );
    const stats1 = JSON.parse(readFileSync(join(dir, "training_stats.json"), "utf8"));
    // Every setting of the quick recipe reaches the run, the exploration terms included.
    assert.equal(stats1.novelty_weight, QUICK_THEORY_RUN.noveltyWeight);
    assert.equal(stats1.diversity_weight, QUICK_THEORY_RUN.diversityWeight);
    assert.equal(stats1.archive_replay, QUICK_THEORY_RUN.archiveReplay);
    assert.equal(stats1.demo_valid_share, QUICK_THEORY_RUN.demoValidShare);
    for (const when of ["initial", "final"]) {
      for (const k of ["success_rate", "distinct_valid", "novel_valid", "distinct_valid_cumulative"]) {
        assert.equal(typeof stats1[when][k], "number", `${when}.${k}`);
      }
    }
    for (const f of [
      "history.jsonl",
      "training_stats.json",
      "theories.json",
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
    assert.match(resumed.stdout, /^done: 3 GRPO steps \(1 since the resume\) in [\dhms.]+$/m);
    const steps = readFileSync(join(dir, "history.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).step);
    assert.deepEqual(steps, [1, 2, 3]);
    // The evaluation before step 1 and the theories found came back with the checkpoint.
    const stats2 = JSON.parse(readFileSync(join(dir, "training_stats.json"), "utf8"));
    assert.deepEqual(stats2.initial, stats1.initial);
    assert.ok(stats2.final.distinct_valid_cumulative >= stats1.final.distinct_valid_cumulative);

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
    assert.match(
      ev.stdout,
      /anomaly-free & non-trivial [\d.]+% of 8, \d+ distinct \(\d+ not among the demonstrations/,
    );
  });

  it("--preset learning fills the options left at their defaults; explicit flags win", () => {
    // The learning preset differs from the quick default in its demonstrations, the curriculum
    // and the absence of exploration terms.
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
      "--content-diversity-weight",
      "0.25",
      "--content-novelty-weight",
      "0.75",
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
    assert.equal(stats.content_diversity_weight, 0.25);
    assert.equal(stats.content_novelty_weight, 0.75);
    // From the preset.
    assert.ok(stats.config.curriculum, "the preset turns the curriculum on");
    assert.equal(stats.demo_valid_share, 0.1);
    assert.equal(stats.novelty_weight, 0);
    assert.equal(stats.archive_replay, 0);
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
    // Every option's description starts with a capital letter.
    const options = r.stdout.split("Options:")[1]!.split("Examples:")[0]!;
    const described = [...options.matchAll(/^ {2}(-[^\n]*?) {2,}(\S)/gm)];
    assert.ok(described.length > 20, `${described.length} options`);
    for (const [, flag, first] of described) assert.match(first!, /[A-Z]/, `${flag!.trim()}: "${first}"`);
    // The examples use only flags that exist.
    const examples = r.stdout.split("Examples:")[1]!;
    for (const [flag] of examples.matchAll(/--[a-z-]+/g)) assert.ok(options.includes(flag), flag);
  });
});
