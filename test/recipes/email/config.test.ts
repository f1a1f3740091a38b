import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseEmailTrainingEnv } from "../../../src/recipes/email/config.ts";
import { emailDefaults } from "../../../src/recipes/email/presets.ts";

const DEFAULTS = emailDefaults("masked");

describe("parseEmailTrainingEnv", () => {
  it("returns the defaults for an empty environment", () => {
    assert.deepEqual(parseEmailTrainingEnv({}, DEFAULTS), DEFAULTS);
  });

  it("reads every variable", () => {
    const config = parseEmailTrainingEnv(
      {
        TRAIN_DATASET_SIZE: "500",
        EVAL_DATASET_SIZE: "50",
        MAX_STEPS: "30",
        LEARNING_RATE: "1.2e-5",
        PER_DEVICE_TRAIN_BATCH_SIZE: "2",
        NUM_GENERATIONS: "6",
        BETA: "0",
        MAX_TURNS: "8",
        MAX_TOKENS: " 4096 ",
        OUTPUT_DIR: "out/email",
      },
      DEFAULTS,
    );
    assert.deepEqual(config, {
      trainDatasetSize: 500,
      evalDatasetSize: 50,
      maxSteps: 30,
      learningRate: 1.2e-5,
      perDeviceTrainBatchSize: 2,
      numGenerations: 6,
      beta: 0,
      maxTurns: 8,
      maxTokens: 4096,
      outputDir: "out/email",
    });
  });

  it("lets flags win over the environment, and skips empty variables", () => {
    const config = parseEmailTrainingEnv(
      { LEARNING_RATE: "0.5", MAX_STEPS: "10", OUTPUT_DIR: " ", NUM_GENERATIONS: "5" },
      DEFAULTS,
      { learningRate: 0.001, maxSteps: 20 },
    );
    assert.equal(config.learningRate, 0.001);
    assert.equal(config.maxSteps, 20);
    assert.equal(config.numGenerations, 5);
    assert.equal(config.outputDir, DEFAULTS.outputDir);
  });

  it("names the variable and the value in errors", () => {
    assert.throws(() => parseEmailTrainingEnv({ LEARNING_RATE: "abc" }, DEFAULTS), {
      message: 'LEARNING_RATE must be a positive number, got "abc"',
    });
    assert.throws(
      () => parseEmailTrainingEnv({ MAX_TURNS: "2.5" }, DEFAULTS),
      /^Error: MAX_TURNS must be a positive integer, got "2.5"$/,
    );
    assert.throws(
      () => parseEmailTrainingEnv({ NUM_GENERATIONS: "0" }, DEFAULTS),
      /NUM_GENERATIONS must be a positive integer/,
    );
    assert.throws(
      () => parseEmailTrainingEnv({ BETA: "-0.1" }, DEFAULTS),
      /BETA must be a non-negative number, got "-0.1"/,
    );
    assert.throws(
      () => parseEmailTrainingEnv({ TRAIN_DATASET_SIZE: "12abc" }, DEFAULTS),
      /TRAIN_DATASET_SIZE/,
    );
    assert.throws(() => parseEmailTrainingEnv({ MAX_TOKENS: "Infinity" }, DEFAULTS), /MAX_TOKENS/);
    assert.throws(
      () => parseEmailTrainingEnv({}, DEFAULTS, { outputDir: "  " }),
      /outputDir must be a non-empty path/,
    );
  });

  it("validates flags too, naming the flag", () => {
    assert.throws(
      () => parseEmailTrainingEnv({}, DEFAULTS, { beta: -1 }),
      /beta must be a non-negative number, got -1/,
    );
    assert.throws(() => parseEmailTrainingEnv({}, DEFAULTS, { maxSteps: Number.NaN }), /maxSteps/);
    // An invalid environment value is not reached when a flag overrides it.
    assert.equal(parseEmailTrainingEnv({ MAX_STEPS: "oops" }, DEFAULTS, { maxSteps: 3 }).maxSteps, 3);
  });
});
