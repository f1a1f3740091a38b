/**
 * The project's GPT saved as a transformers GPT2LMHeadModel directory: the same logits in the
 * engine's GPT-2 implementation and in the PyTorch reference, and a tokenizer.json that
 * tokenizes as the project's Vocab does.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../../src/core/rng.ts";
import { initBackend } from "../../src/model/backend.ts";
import { GPT } from "../../src/model/gpt.ts";
import { gptAsPretrained, saveGptAsPretrained } from "../../src/model/hf/export-gpt2.ts";
import type { PretrainedLM } from "../../src/model/hf/model.ts";
import { HFTokenizer } from "../../src/model/hf/tokenizer.ts";
import { loadModel } from "../../src/model/safetensors.ts";
import { Vocab } from "../../src/model/tokenizer.ts";
import { tempDirs } from "../helpers/tmp.ts";
import { maxAbsDiff, randomIds, randomizeWeights } from "./helpers.ts";
import { runReference, torchPython } from "./hf-helpers.ts";

const tmp = tempDirs("grpo-hf-export-")();
const python = torchPython();

before(async () => {
  await initBackend("wasm");
});

const WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog"];
const CONFIG = { vocabSize: WORDS.length + 4, contextLength: 16, dModel: 16, nLayers: 2, nHeads: 2, dFF: 24 };

function trainedGpt(): { gpt: GPT; vocab: Vocab } {
  const vocab = new Vocab(WORDS, { pad: "<pad>", bos: "<bos>", eos: "<eos>", unk: "<unk>" });
  const gpt = new GPT(CONFIG, new Rng(1));
  randomizeWeights(gpt, 2, 0.4);
  // An adapter on top: the export folds it in.
  gpt.enableLoRA({ r: 2, alpha: 4, targetModules: ["q_proj", "down_proj"] }, new Rng(3));
  const rng = new Rng(4);
  tf.tidy(() => {
    const w: Record<string, tf.Tensor> = {};
    for (const [n, t] of Object.entries(gpt.namedWeights()))
      if (n.includes(".lora_B"))
        w[n] = tf.tensor(
          Float32Array.from({ length: t.size }, () => 0.3 * rng.normal()),
          t.shape,
        );
    gpt.loadNamedWeights(w, { partial: true });
  });
  return { gpt, vocab };
}

describe("the project's GPT as GPT2LMHeadModel", () => {
  it("is the same function in the engine's GPT-2 (GELU = gelu_new, LayerNorm eps 1e-5, q/k/v fused)", () => {
    const { gpt, vocab } = trainedGpt();
    const hf = gptAsPretrained(gpt, vocab);
    const ids = tf.tensor2d(randomIds(new Rng(5), 3, 12, CONFIG.vocabSize), undefined, "int32");
    const a = tf.tidy(() => gpt.forward(ids).dataSync());
    const b = tf.tidy(() => hf.forward(ids).dataSync());
    assert.ok(maxAbsDiff(a, b) < 1e-5, `max |Δlogit| = ${maxAbsDiff(a, b)}`);
    assert.equal(hf.spec.tiedHead, true);
    tf.dispose(ids);
    hf.dispose();
    gpt.dispose();
  });

  it("writes a directory transformers' GPT2 config describes, with the vocabulary's special ids", () => {
    const { gpt, vocab } = trainedGpt();
    const dir = join(tmp, "gpt2-dir");
    saveGptAsPretrained(dir, gpt, vocab);
    const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    assert.deepEqual(cfg.architectures, ["GPT2LMHeadModel"]);
    assert.equal(cfg.activation_function, "gelu_new");
    assert.equal(cfg.n_inner, 24);
    assert.equal(cfg.eos_token_id, vocab.eosId);
    const loaded = loadModel(dir) as PretrainedLM;
    const ids = tf.tensor2d(randomIds(new Rng(6), 2, 10, CONFIG.vocabSize), undefined, "int32");
    const a = tf.tidy(() => gpt.forward(ids).dataSync());
    const b = tf.tidy(() => loaded.forward(ids).dataSync());
    assert.ok(maxAbsDiff(a, b) < 1e-5);
    tf.dispose(ids);
    loaded.dispose();
    gpt.dispose();
  });

  it("gives PyTorch's GPT-2 logits", { skip: python ? false : "no python3 with torch here" }, () => {
    const { gpt, vocab } = trainedGpt();
    const dir = join(tmp, "gpt2-torch");
    saveGptAsPretrained(dir, gpt, vocab);
    const rows = randomIds(new Rng(7), 2, 14, CONFIG.vocabSize);
    const [ref] = runReference<{ logits: number[][] }>(python!, tmp, [{ dir, ids: rows }]);
    const ours = tf.tidy(
      () => gpt.forward(tf.tensor2d(rows, undefined, "int32")).arraySync() as number[][][],
    );
    rows.forEach((_, r) => {
      const d = maxAbsDiff(ours[r]!.flat(), ref!.logits[r]!);
      assert.ok(d < 1e-4, `row ${r}: max |Δlogit| = ${d}`);
    });
    gpt.dispose();
  });

  it("tokenizer.json tokenizes as the Vocab in word, char and pieces mode", () => {
    const cases: [Vocab, string[]][] = [
      [
        new Vocab(WORDS, { pad: "<pad>", eos: "<eos>", unk: "<unk>" }),
        ["the cat sat on a mat", "a  dog\ton the mat", "the bird"],
      ],
      [
        new Vocab([..."abc xyz"], { eos: "<eos>", unk: "?" }, { mode: "char" }),
        ["abc xyz", "cab  zz", "a-b"],
      ],
      [
        new Vocab(["search(", ")", "ab", "a", "b", "c", " "], { eos: "<eos>" }, { mode: "pieces" }),
        ["search(ab c)", "abab cc", "a b"],
      ],
    ];
    cases.forEach(([vocab, texts], k) => {
      const gpt = new GPT({ ...CONFIG, vocabSize: vocab.size }, new Rng(1));
      const dir = join(tmp, `tok-${k}`);
      saveGptAsPretrained(dir, gpt, vocab);
      gpt.dispose();
      const tok = HFTokenizer.load(dir);
      for (const text of texts) {
        const ids = vocab.encode(text);
        assert.deepEqual(tok.encode(text), ids, `${vocab.mode}: ${JSON.stringify(text)}`);
        assert.equal(tok.decode(ids), vocab.decode(ids, { keepSpecials: true }), `${vocab.mode} decode`);
      }
      assert.deepEqual(tok.eosTokenIds, [vocab.eosId]);
      assert.equal(tok.vocabSize, vocab.size);
    });
  });
});
