/**
 * The email recipe on a Hugging Face chat model (src/recipes/email/chat-template.ts): real email
 * episodes rendered through the model's chat template, built turn by turn, equal the whole
 * rendered conversation with the mask 1 exactly on the assistant's tokens (ChatML, Llama 3's
 * headers, a template without a tool role); episodes sampled by a tiny random model in the
 * Hugging Face layout keep the tool results as context; and `grpo train email --base-model`
 * trains LoRA on it and saves a PEFT adapter that loads back over the model.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { before, describe, it } from "node:test";
import { Rng } from "../../../src/core/rng.ts";
import { initBackend } from "../../../src/model/backend.ts";
import { PretrainedLM } from "../../../src/model/hf/model.ts";
import { type ChatMessage, HFTokenizer } from "../../../src/model/hf/tokenizer.ts";
import { loadModel } from "../../../src/model/safetensors.ts";
import {
  emailChatEpisode,
  emailChatTask,
  isPretrainedModelDir,
} from "../../../src/recipes/email/chat-template.ts";
import { demonstration } from "../../../src/recipes/email/demonstration.ts";
import { EmailEpisode } from "../../../src/recipes/email/episode.ts";
import { generateDataset } from "../../../src/recipes/email/inbox.ts";
import { EMAIL_INBOX } from "../../../src/recipes/email/presets.ts";
import { chatTemplateLayout, runChatRollouts } from "../../../src/rl/chat-episode.ts";
import type { TurnPolicy } from "../../../src/rl/multiturn.ts";
import {
  CHATML_TEMPLATE,
  LLAMA3_TEMPLATE,
  NO_TOOL_ROLE_TEMPLATE,
  writeTinyChatModel,
} from "../../helpers/tiny-chat-model.ts";
import { tempDirs } from "../../helpers/tmp.ts";

const root = join(import.meta.dirname, "..", "..", "..");
const tmp = tempDirs("grpo-email-chat-");
const dirs: Record<string, string> = {};
const toks: Record<string, HFTokenizer> = {};
const EPISODE = { maxTurns: 6, instructions: true, compact: true };

before(async () => {
  await initBackend("wasm");
  const make = (name: string, opts: Parameters<typeof writeTinyChatModel>[1]) => {
    dirs[name] = join(tmp(name), name);
    writeTinyChatModel(dirs[name], opts);
    toks[name] = HFTokenizer.load(dirs[name]);
  };
  make("chatml", { template: CHATML_TEMPLATE, seed: 5 });
  make("llama3", { template: LLAMA3_TEMPLATE, specials: "llama3" });
  make("no-tool-role", { template: NO_TOOL_ROLE_TEMPLATE });
});

const dataset = generateDataset(new Rng(11), { trainSize: 40, evalSize: 4, ...EMAIL_INBOX });

/** The conversation an email episode's history is, as chat messages. */
function conversation(e: EmailEpisode, toolRole: string): ChatMessage[] {
  const msgs: ChatMessage[] = [{ role: "user", content: e.prompt }];
  for (const t of e.history) {
    msgs.push({ role: "assistant", content: t.policy });
    if (t.toolResult !== null) msgs.push({ role: toolRole, content: t.toolResult });
  }
  return msgs;
}

describe("email episodes in a chat template", () => {
  for (const name of ["chatml", "llama3", "no-tool-role"]) {
    it(`${name}: a scripted episode built turn by turn is the whole rendered conversation, mask 1 exactly on the assistant's tokens`, () => {
      const tok = toks[name]!;
      let multiTurn = 0;
      for (let seed = 1; seed <= 15; seed++) {
        const rng = new Rng(seed);
        const q = dataset.train[seed % dataset.train.length]!;
        const inbox = dataset.inboxes.get(q.inboxId)!;
        // noisy demonstrations: wrong searches, distractor reads, wrong answers, various lengths
        const turns = demonstration(q, inbox, rng, { noise: 0.6, maxResults: 3, episode: EPISODE });
        const layout = chatTemplateLayout(tok, [{ role: "user", content: "x" }]);
        let k = 0;
        // the policy writes each demonstration turn in the tokenizer's canonical encoding
        const policy: TurnPolicy = (contexts) => {
          const ids = [...tok.encode(turns[k++]!.policy, { addSpecialTokens: false }), layout.turnEndIds[0]!];
          return { tokens: contexts.map(() => ids), logprobs: contexts.map(() => ids.map(() => 0)) };
        };
        let episode: EmailEpisode | null = null;
        const [r] = runChatRollouts(
          policy,
          tok,
          () => {
            episode = new EmailEpisode(inbox, q, EPISODE);
            return emailChatEpisode(episode);
          },
          1,
          { maxTokens: 10_000, temperature: 1, rng },
        );
        const e = episode! as EmailEpisode;
        assert.equal(e.history.length, turns.length, `seed ${seed}: the replay took another path`);
        if (turns.length > 1) multiTurn++;
        const msgs = conversation(e, layout.toolRole);
        const whole = tok.encodeChat(msgs, { addGenerationPrompt: false });
        // the episode ends on the policy's turn-end token; only the template's closing after it is missing
        assert.deepEqual(r!.ids, whole.slice(0, r!.ids.length), `seed ${seed}`);
        assert.equal(
          tok.decode(whole.slice(r!.ids.length), { skipSpecialTokens: false }),
          layout.closing.slice(tok.decode([layout.turnEndIds[0]!], { skipSpecialTokens: false }).length),
        );
        const expected = r!.ids.map(() => 0);
        msgs.forEach((m, i) => {
          if (m.role !== "assistant") return;
          const start = tok.encodeChat(msgs.slice(0, i), { addGenerationPrompt: true }).length;
          const n = tok.encode(String(m.content), { addSpecialTokens: false }).length + 1;
          for (let j = start; j < start + n; j++) expected[j] = 1;
        });
        assert.deepEqual(r!.policyMask, expected, `seed ${seed}`);
        assert.equal(r!.reward, e.finalReward());
      }
      assert.ok(multiTurn >= 12, `only ${multiTurn} multi-turn episodes`);
    });
  }

  it("tells a Hugging Face model directory from the recipe's own checkpoints", () => {
    assert.equal(isPretrainedModelDir(dirs.chatml!), true);
    assert.equal(isPretrainedModelDir(join(dirs.chatml!, "missing")), false);
  });
});

describe("the email task on a tiny random chat model", () => {
  it("samples episodes whose mask-1 runs are exactly the model's turns and whose tool results are context", () => {
    const tok = toks.chatml!;
    const model = loadModel(dirs.chatml!, { rng: new Rng(1) });
    assert.ok(model instanceof PretrainedLM, "a PretrainedLM");
    try {
      let toolTurns = 0;
      for (let seed = 1; seed <= 4; seed++) {
        const episodes: EmailEpisode[] = [];
        const rs = runChatRollouts(
          model,
          tok,
          (i) => {
            const q = dataset.train[(seed * 4 + i) % dataset.train.length]!;
            const e = new EmailEpisode(dataset.inboxes.get(q.inboxId)!, q, { ...EPISODE, maxTokens: 80 });
            episodes.push(e);
            return emailChatEpisode(e);
          },
          4,
          { maxTokens: 80, maxTurnTokens: 12, temperature: 1, rng: new Rng(seed) },
        );
        rs.forEach((r, i) => {
          const e = episodes[i]!;
          // the mask's runs of 1, as text, are the model's turns in order (turn-end token dropped)
          const runs: number[][] = [];
          const starts: number[] = [];
          r.policyMask.forEach((m, j) => {
            if (m === 0) return;
            if (j === 0 || r.policyMask[j - 1] === 0) {
              runs.push([]);
              starts.push(j);
            }
            runs.at(-1)!.push(r.ids[j]!);
          });
          const layout = chatTemplateLayout(tok, [{ role: "user", content: e.prompt }]);
          const text = (ids: number[]) => {
            const own = layout.turnEndIds.includes(ids.at(-1)!) ? ids.slice(0, -1) : ids;
            return tok.decode(own, { skipSpecialTokens: false });
          };
          // a rollout the model ended itself (its rollout-end token) has that last run beyond the episode's turns
          let end = r.ids.length;
          if (r.stats.stoppedByEos) {
            assert.equal(runs.pop()!.at(-1), layout.rolloutEndId);
            end = starts.at(-1)!;
          }
          assert.deepEqual(
            runs.map(text),
            e.history.map((t) => t.policy),
          );
          assert.equal(
            r.policyMask.reduce((a, b) => a + b, 0),
            r.stats.policyTokens,
          );
          // the whole sequence is the template's rendering of the conversation, tool results as tool turns
          // (with the next turn's generation prompt when it ended after a tool result)
          const last = e.history.at(-1);
          const rendered = tok.applyChatTemplate(conversation(e, "tool"), {
            addGenerationPrompt: last === undefined || last.toolResult !== null,
          });
          const seen = tok.decode(r.ids.slice(0, end), { skipSpecialTokens: false });
          assert.ok(
            rendered.startsWith(seen),
            `${JSON.stringify(seen)}\nis not the start of\n${JSON.stringify(rendered)}`,
          );
          assert.ok(
            rendered.length - seen.length <= layout.closing.length,
            "only the last closing may be missing",
          );
          for (const t of e.history)
            if (t.toolResult !== null) {
              toolTurns++;
              assert.ok(
                tok.decode(r.ids).includes(t.toolResult),
                `tool result ${JSON.stringify(t.toolResult)} missing`,
              );
            }
        });
      }
      assert.ok(toolTurns > 0, "no tool result was seen");
    } finally {
      model.dispose();
    }
  });

  it("gives the trainer rollouts with the tool mask over the completion (masked) or none (rollout)", () => {
    const model = loadModel(dirs.chatml!, { rng: new Rng(1) });
    try {
      const opts = {
        trainSize: 8,
        evalSize: 2,
        seed: 3,
        maxTurns: 4,
        maxTokens: 40,
        maxTurnTokens: 10,
        contextLength: 2048,
        tokenizer: toks.chatml!,
      };
      const req = { split: "train" as const, count: 2, numGenerations: 2, temperature: 1, phase: 0 };
      const masked = emailChatTask({ ...opts, mode: "masked" }).rollouts!(model, { ...req, rng: new Rng(4) });
      assert.equal(masked.length, 4);
      assert.deepEqual(
        masked.map((r) => r.group),
        [0, 0, 1, 1],
      );
      for (const r of masked) {
        assert.equal(r.toolMask!.length, r.tokens.length);
        assert.ok(
          r.toolMask!.some((m) => m === 1),
          "no policy token",
        );
      }
      assert.ok(
        masked.some((r) => r.toolMask!.some((m) => m === 0)),
        "no tool tokens were masked",
      );
      const full = emailChatTask({ ...opts, mode: "rollout" }).rollouts!(model, { ...req, rng: new Rng(4) });
      assert.deepEqual(
        full.map((r) => r.tokens),
        masked.map((r) => r.tokens),
      );
      assert.ok(
        full.every((r) => r.toolMask === undefined),
        "rollout mode masks nothing",
      );
      const simple = emailChatTask({ ...opts, mode: "simple" }).rollouts!(model, { ...req, rng: new Rng(4) });
      assert.equal(simple.length, 4);
      assert.ok(
        simple.every((r) => r.tokens.length <= 10 && r.toolMask === undefined),
        "simple mode: one turn",
      );
    } finally {
      model.dispose();
    }
  });
});

describe("grpo train email --base-model <Hugging Face model directory>", () => {
  it("trains LoRA over the model with its chat template and saves a PEFT adapter that loads back", () => {
    const out = join(tmp("run"), "out");
    const r = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        join(root, "src/cli/main.ts"),
        "train",
        "email",
        "--base-model",
        dirs.chatml!,
        "--max-steps",
        "2",
        "--num-generations",
        "2",
        "--per-device-train-batch-size",
        "1",
        "--eval-dataset-size",
        "2",
        "--train-dataset-size",
        "8",
        "--max-tokens",
        "30",
        "--max-turn-tokens",
        "10",
        "--lora-rank",
        "2",
        "--learning-rate",
        "0.01",
        "--eval-every",
        "0",
        "--output-dir",
        out,
        "--backend",
        "wasm",
      ],
      { cwd: root, encoding: "utf8", timeout: 180_000 },
    );
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout + r.stderr, /its chat template; no warm start/);
    const final = join(out, "final");
    const cfg = JSON.parse(readFileSync(join(final, "adapter_config.json"), "utf8"));
    assert.equal(cfg.peft_type, "LORA");
    assert.equal(cfg.task_type, "CAUSAL_LM");
    assert.equal(cfg.r, 2);
    assert.equal(cfg.lora_alpha, 4);
    assert.equal(resolve(final, cfg.base_model_name_or_path), resolve(dirs.chatml!));
    assert.deepEqual([...cfg.target_modules].sort(), [
      "down_proj",
      "gate_proj",
      "k_proj",
      "o_proj",
      "q_proj",
      "up_proj",
      "v_proj",
    ]);
    const st = readFileSync(join(final, "adapter_model.safetensors"));
    const header = JSON.parse(st.subarray(8, 8 + Number(st.readBigUInt64LE(0))).toString("utf8"));
    assert.ok(
      "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" in header,
      Object.keys(header).join(", "),
    );
    assert.ok(
      "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight" in header,
      Object.keys(header).join(", "),
    );
    assert.ok(!existsSync(join(out, "base_model")), "the pretrained model is not copied");
    const hist = readFileSync(join(out, "history.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(hist.length, 2);
    for (const h of hist)
      assert.ok(h.trainable_tokens > 0 && h.trainable_tokens < h.completion_tokens, JSON.stringify(h));
    // the adapter loads back over its base: A and B on the seven projections of both layers
    // (a random model's episodes mostly score alike, so B may still be PEFT's zero start)
    const m = loadModel(final, { rng: new Rng(1) });
    try {
      assert.ok(m instanceof PretrainedLM && m.loraConfig?.r === 2, "the adapter loads over its base");
      assert.equal(m.trainableVariables().length, 2 * 7 * 2);
    } finally {
      m.dispose();
    }
  });
});
