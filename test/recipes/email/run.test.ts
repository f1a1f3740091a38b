import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import type { GPT } from "../../../src/model/gpt.ts";
import {
  BASE_MODEL_DIR,
  EMAIL_RECIPE_DEFAULTS,
  type EmailRunOptions,
  emailDefaults,
} from "../../../src/recipes/email/presets.ts";
import { prepareEmailTrainer } from "../../../src/recipes/email/run.ts";
import { tempDirs } from "../../helpers/tmp.ts";

await tf.setBackend("cpu");
const tmp = tempDirs("grpo-email-run-");
const hooks = { log: () => {} };

function options(outputDir: string, more: Partial<EmailRunOptions> = {}): EmailRunOptions {
  return {
    ...emailDefaults("masked"),
    ...EMAIL_RECIPE_DEFAULTS,
    mode: "masked",
    seed: 5,
    sftSteps: 1,
    trainDatasetSize: 6,
    evalDatasetSize: 2,
    perDeviceTrainBatchSize: 1,
    numGenerations: 2,
    maxTurns: 2,
    maxTokens: 24,
    outputDir,
    resume: false,
    ...more,
  };
}

function weights(model: GPT): Record<string, number[]> {
  return Object.fromEntries(
    Object.entries(model.namedWeights()).map(([name, t]) => [name, Array.from(t.dataSync())]),
  );
}

describe("grpo train email's trainer", () => {
  it("starts from a saved warm start (--base-model) with the policy the run that made it trained", async () => {
    const fullDir = tmp();
    const full = await prepareEmailTrainer(options(fullDir), hooks);
    const baseModel = join(fullDir, BASE_MODEL_DIR);
    const fromBase = await prepareEmailTrainer(options(tmp(), { baseModel }), hooks);
    // The warm-started weights and the adapters' random initial ones alike.
    const got = weights(fromBase.trainer.policy);
    assert.ok(Object.keys(got).some((name) => name.endsWith("lora_A.weight")));
    assert.deepEqual(got, weights(full.trainer.policy));
    for (const { trainer } of [full, fromBase]) {
      trainer.policy.dispose();
      trainer.dispose();
    }
  });
});
