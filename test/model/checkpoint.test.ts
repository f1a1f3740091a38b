import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../../src/core/rng.ts";
import { initBackend } from "../../src/model/backend.ts";
import { GPT } from "../../src/model/gpt.ts";
import { loadModel, parseSafetensors, saveModel } from "../../src/model/safetensors.ts";
import { tempDirs } from "../helpers/tmp.ts";
import { randomIds, randomizeWeights, TINY } from "./helpers.ts";

const dir = tempDirs("grpo-model-")();
before(async () => {
  await initBackend("wasm");
});

const ids = () => tf.tensor2d(randomIds(new Rng(5), 2, 6, TINY.vocabSize), undefined, "int32");
const logitsOf = (m: GPT) => tf.tidy(() => m.forward(ids()).dataSync());

describe("saveModel / loadModel", () => {
  it("full round trip gives identical logits and HF-like files", () => {
    const model = new GPT(TINY, new Rng(1));
    randomizeWeights(model, 2);
    const out = join(dir, "full");
    saveModel(out, model);
    const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    assert.equal(cfg.n_embd, 8);
    assert.equal(cfg.n_layer, 2);
    assert.equal(cfg.vocab_size, 7);
    const loaded = loadModel(out, { rng: new Rng(99) }) as GPT;
    assert.deepEqual(loaded.config, { ...TINY, positional: "learned" });
    assert.deepEqual(logitsOf(loaded), logitsOf(model));
    model.dispose();
    loaded.dispose();
  });

  it("LoRA round trip: PEFT names, transposed shapes, identical logits", () => {
    const model = new GPT(TINY, new Rng(3));
    randomizeWeights(model, 4);
    model.enableLoRA({ r: 2, alpha: 4, targetModules: ["q_proj", "up_proj"] }, new Rng(5));
    randomizeWeights(model, 6); // gives B non-zero values so the adapter matters
    const out = join(dir, "lora");
    saveModel(out, model, { lora: true });
    const ac = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8"));
    assert.equal(ac.peft_type, "LORA");
    assert.equal(ac.task_type, "CAUSAL_LM");
    assert.equal(ac.r, 2);
    assert.equal(ac.lora_alpha, 4);
    assert.deepEqual(ac.target_modules, ["q_proj", "up_proj"]);
    assert.equal(ac.lora_dropout, 0);
    assert.equal(ac.bias, "none");
    const st = parseSafetensors(new Uint8Array(readFileSync(join(out, "adapter_model.safetensors")))).tensors;
    assert.deepEqual(st["base_model.model.transformer.h.1.mlp.up_proj.lora_A.weight"]!.shape, [2, 8]);
    assert.deepEqual(st["base_model.model.transformer.h.1.mlp.up_proj.lora_B.weight"]!.shape, [12, 2]);
    assert.equal(Object.keys(st).length, 2 * 2 * TINY.nLayers);
    // PEFT's A is the transpose of the in-memory [d_in, r] matrix.
    const memA = model.namedWeights()["transformer.h.0.attn.q_proj.lora_A.weight"]!.arraySync() as number[][];
    const fileA = st["base_model.model.transformer.h.0.attn.q_proj.lora_A.weight"]!;
    assert.equal(fileA.data[1 * 8 + 3], memA[3]![1]);

    const loaded = loadModel(out, { rng: new Rng(7) }) as GPT;
    assert.deepEqual(loaded.loraConfig, model.loraConfig);
    assert.deepEqual(logitsOf(loaded), logitsOf(model));
    assert.equal(loaded.trainableVariables().length, 2 * 2 * TINY.nLayers);
    // A full save of an adapted model stores merged weights with the same outputs.
    saveModel(join(dir, "merged"), model);
    const merged = loadModel(join(dir, "merged"), { rng: new Rng(8) }) as GPT;
    assert.equal(merged.loraConfig, null);
    const a = logitsOf(merged);
    const b = logitsOf(model);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-4);
    for (const m of [model, loaded, merged]) m.dispose();
  });

  it("adapters can point at a separate base checkpoint", () => {
    const model = new GPT(TINY, new Rng(11));
    saveModel(join(dir, "base"), model);
    model.enableLoRA({ r: 1, alpha: 1, targetModules: ["o_proj"] }, new Rng(12));
    saveModel(join(dir, "adapter-only"), model, { lora: true, baseModelPath: "../base" });
    assert.equal(existsSync(join(dir, "adapter-only", "model.safetensors")), false);
    const loaded = loadModel(join(dir, "adapter-only"), { rng: new Rng(1) }) as GPT;
    assert.deepEqual(logitsOf(loaded), logitsOf(model));
    model.dispose();
    loaded.dispose();
  });

  it("clear errors for missing, corrupt and mismatched files", () => {
    assert.throws(
      () => loadModel(join(dir, "nothing"), { rng: new Rng(1) }) as GPT,
      /nothing\/config.json: file not found/,
    );
    const model = new GPT(TINY, new Rng(1));
    const out = join(dir, "bad");
    saveModel(out, model);
    const cfgFile = join(out, "config.json");
    const cfg = JSON.parse(readFileSync(cfgFile, "utf8"));
    writeFileSync(cfgFile, JSON.stringify({ ...cfg, n_embd: 16, n_inner: 12 }));
    assert.throws(
      () => loadModel(out, { rng: new Rng(1) }) as GPT,
      /bad\/model.safetensors: shape mismatch for "transformer.h.0.attn.k_proj.bias": expected \[16\], got \[8\]/,
    );
    writeFileSync(cfgFile, JSON.stringify({ ...cfg, n_head: "two" }));
    assert.throws(
      () => loadModel(out, { rng: new Rng(1) }) as GPT,
      /bad\/config.json: field "n_head" must be a number/,
    );
    writeFileSync(cfgFile, "{");
    assert.throws(() => loadModel(out, { rng: new Rng(1) }) as GPT, /bad\/config.json: invalid JSON/);
    writeFileSync(cfgFile, JSON.stringify(cfg));
    const st = join(out, "model.safetensors");
    writeFileSync(st, readFileSync(st).subarray(0, 100));
    assert.throws(() => loadModel(out, { rng: new Rng(1) }) as GPT, /bad\/model.safetensors: /);
    assert.throws(() => saveModel(join(dir, "x"), model, { lora: true }), /no LoRA adapters enabled/);
    // An adapter whose config disagrees with its tensors.
    const lora = join(dir, "lora");
    const acFile = join(lora, "adapter_config.json");
    const ac = JSON.parse(readFileSync(acFile, "utf8"));
    writeFileSync(acFile, JSON.stringify({ ...ac, r: 3 }));
    assert.throws(
      () => loadModel(lora, { rng: new Rng(1) }) as GPT,
      /lora\/adapter_model.safetensors: shape mismatch for "transformer.h.0.attn.q_proj.lora_A.weight": expected \[8, 3\], got \[8, 2\]/,
    );
    writeFileSync(acFile, JSON.stringify({ ...ac, target_modules: ["gate_proj"] }));
    assert.throws(
      () => loadModel(lora, { rng: new Rng(1) }) as GPT,
      /lora\/adapter_config.json: field "target_modules"/,
    );
    writeFileSync(acFile, JSON.stringify(ac));
    model.dispose();
  });
});
