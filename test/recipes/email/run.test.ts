import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
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
    maxSteps: 2,
    lrSchedulerType: "linear",
    outputDir,
    resume: false,
    ...more,
  };
}

describe("grpo train email's trainer", () => {
  it("trains from a saved warm start (--base-model) exactly as the run that made it", async () => {
    const fullDir = tmp();
    const full = await prepareEmailTrainer(options(fullDir), hooks);
    const baseModel = join(fullDir, BASE_MODEL_DIR);
    const fromBase = await prepareEmailTrainer(options(tmp(), { baseModel }), hooks);
    const strip = ({ step_time: _, ...r }: Record<string, number | null>) => r;
    // The learning rate changes between the two steps, so the schedule is compared too.
    for (let s = 0; s < 2; s++) {
      assert.deepEqual(strip(fromBase.trainer.trainStep(false)), strip(full.trainer.trainStep(false)));
    }
    for (const { trainer } of [full, fromBase]) {
      trainer.policy.dispose();
      trainer.dispose();
    }
  });
});
