import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../../src/core/rng.ts";
import { LORA_TARGETS } from "../../src/model/gpt.ts";
import { saveModel } from "../../src/model/safetensors.ts";
import { loadStartingModel, resumeOrStartTrainer } from "../../src/rl/prepare.ts";
import { tempDirs } from "../helpers/tmp.ts";
import { TOY_TRAINER_CONFIG, tinyGpt, toyTask } from "./toy.ts";

await tf.setBackend("cpu");
const tmp = tempDirs("grpo-prepare-");
const hooks = { log: () => {} };
const config = TOY_TRAINER_CONFIG;

describe("resumeOrStartTrainer", () => {
  it("refuses a directory holding an earlier run before building a model", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "history.jsonl"), '{"step":1}\n');
    let built = 0;
    const run = { task: toyTask(), config, outputDir: dir, resume: false, runInfo: {} };
    await assert.rejects(
      resumeOrStartTrainer(run, hooks, () => {
        built++;
        return tinyGpt();
      }),
      /history\.jsonl exists: pass --resume/,
    );
    assert.equal(built, 0);
  });

  it("refuses an output directory that is a file before building a model, also on resume", async () => {
    const file = join(tmp(), "outputs");
    writeFileSync(file, "");
    let built = 0;
    for (const resume of [false, true]) {
      const run = { task: toyTask(), config, outputDir: file, resume, runInfo: {} };
      await assert.rejects(
        resumeOrStartTrainer(run, hooks, () => {
          built++;
          return tinyGpt();
        }),
        /--output-dir .*: is a file, not a directory/,
      );
    }
    assert.equal(built, 0);
  });

  it("starts on the built model, then resumes the same run at its checkpoint", async () => {
    const dir = tmp();
    const run = { task: toyTask(), config, outputDir: dir, resume: false, runInfo: { recipe: "toy" } };
    const model = tinyGpt(5);
    const trainer = await resumeOrStartTrainer(run, hooks, () => model);
    assert.equal(trainer.policy, model);
    trainer.trainStep();
    await trainer.saveCheckpoint(join(dir, "checkpoint-1"));
    const weights = Array.from(trainer.policy.namedWeights()["transformer.wte.weight"]!.dataSync());
    trainer.dispose();

    const lines: string[] = [];
    const resumed = await resumeOrStartTrainer(
      { ...run, resume: true },
      { log: (l) => lines.push(l) },
      () => {
        throw new Error("a resumed run builds no model");
      },
    );
    assert.equal(resumed.step, 1);
    assert.deepEqual(
      Array.from(resumed.policy.namedWeights()["transformer.wte.weight"]!.dataSync()),
      weights,
    );
    assert.ok(lines.includes(`resumed at step 1 from ${dir}`), lines.join("\n"));
    resumed.policy.dispose();
    resumed.dispose();
  });
});

describe("loadStartingModel", () => {
  it("names the config file when the vocabulary is another recipe's", () => {
    const dir = tmp();
    saveModel(dir, tinyGpt());
    assert.throws(
      () => loadStartingModel(dir, 1, { name: "email", vocabSize: 602 }),
      new RegExp(`${join(dir, "config.json")}: vocab_size 6 does not match the email recipe's \\(602\\)`),
    );
    const ok = loadStartingModel(dir, 1, { name: "toy", vocabSize: 6 });
    assert.equal(ok.config.vocabSize, 6);
    ok.dispose();
  });

  it("refuses an adapter only where the recipe adds its own", () => {
    const base = tmp();
    const model = tinyGpt();
    saveModel(base, model);
    model.enableLoRA({ r: 2, alpha: 4, targetModules: [...LORA_TARGETS] }, new Rng(2));
    const adapter = tmp();
    saveModel(adapter, model, { lora: true, baseModelPath: base });
    model.dispose();
    assert.throws(
      () => loadStartingModel(adapter, 1, { name: "email", vocabSize: 6, fullModel: true }),
      /holds a LoRA adapter/,
    );
    const withAdapter = loadStartingModel(adapter, 1, { name: "theory", vocabSize: 6 });
    assert.ok(withAdapter.loraConfig);
    withAdapter.dispose();
  });
});
