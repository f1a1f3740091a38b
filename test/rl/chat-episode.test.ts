/**
 * Chat-template episodes built turn by turn (src/rl/chat-episode.ts), on real tokenizer.json
 * files and chat templates (ChatML as Qwen2.5 and SmolLM2 ship it, Llama 3's headers with
 * trimmed contents, a template without a tool role): the ids equal those of the whole rendered
 * conversation, the mask is 1 exactly on the assistant's own tokens, sampled ids that are not the
 * canonical encoding of their text stay as sampled, and a template that rewrites history is
 * refused by name.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { Rng } from "../../src/core/rng.ts";
import { initBackend } from "../../src/model/backend.ts";
import { type ChatMessage, HFTokenizer } from "../../src/model/hf/tokenizer.ts";
import {
  type ChatEpisode,
  ChatTranscript,
  chatTemplateLayout,
  runChatRollouts,
} from "../../src/rl/chat-episode.ts";
import type { TurnPolicy } from "../../src/rl/multiturn.ts";
import {
  CHATML_TEMPLATE,
  LLAMA3_TEMPLATE,
  NO_TOOL_ROLE_TEMPLATE,
  writeTinyChatModel,
} from "../helpers/tiny-chat-model.ts";
import { tempDirs } from "../helpers/tmp.ts";

const tmp = tempDirs("grpo-chat-episode-");
const toks: Record<string, HFTokenizer> = {};

before(async () => {
  await initBackend("cpu");
  const make = (name: string, opts: Parameters<typeof writeTinyChatModel>[1]) => {
    const dir = join(tmp(name), name);
    writeTinyChatModel(dir, opts);
    toks[name] = HFTokenizer.load(dir);
  };
  make("chatml", { template: CHATML_TEMPLATE });
  make("llama3", { template: LLAMA3_TEMPLATE, specials: "llama3" });
  make("no-tool-role", { template: NO_TOOL_ROLE_TEMPLATE });
  // renders only the last assistant turn's content, as some reasoning templates drop old thoughts
  make("rewriting", {
    template:
      "{% for message in messages %}{% if message['role'] == 'assistant' and not loop.last %}{{ '<|im_start|>assistant\\n<|im_end|>\\n' }}{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
  });
});

const WORDS = [
  'search_emails(keywords="kickoff", max_results=3)',
  "read_email(id=e2)",
  'answer("Monday 10 am", sources="e2")',
  "the",
  "meeting",
  "Apollo",
  "is",
  "on",
  "42",
  "room 4,",
  "(draft)",
  "quarterly-report.pdf",
  "naïve café",
  "→",
];

/** A text of 1–6 words from WORDS, without surrounding whitespace (as a tool call line is). */
function phrase(rng: Rng): string {
  return Array.from({ length: 1 + rng.int(6) }, () => rng.pick(WORDS)).join(rng.next() < 0.2 ? "\n" : " ");
}

interface Built {
  t: ChatTranscript;
  /** per assistant turn: where its ids start in the transcript, and the ids. */
  spans: { start: number; ids: number[] }[];
}

/** A random conversation built turn by turn with canonical assistant tokens. */
function build(tok: HFTokenizer, rng: Rng, opts: { cutLast?: boolean } = {}): Built {
  const prompt: ChatMessage[] = [
    ...(rng.next() < 0.5 ? [{ role: "system", content: "You answer from the inbox." }] : []),
    { role: "user", content: `Question: ${phrase(rng)}?` },
  ];
  const layout = chatTemplateLayout(tok, prompt);
  const t = new ChatTranscript(tok, layout, prompt);
  const turns = 1 + rng.int(4);
  const spans: Built["spans"] = [];
  for (let k = 0; k < turns; k++) {
    const content = phrase(rng);
    const cut = opts.cutLast === true && k === turns - 1;
    const ids = [
      ...tok.encode(content, { addSpecialTokens: false }),
      ...(cut ? [] : [layout.turnEndIds[0]!]),
    ];
    spans.push({ start: t.ids.length, ids });
    assert.equal(t.addAssistant(ids), content);
    if (k < turns - 1) t.addToolResult(`<hits>\n${phrase(rng)}\n${phrase(rng)}`);
  }
  t.finish();
  return { t, spans };
}

describe("a chat episode built turn by turn", () => {
  for (const name of ["chatml", "llama3", "no-tool-role"]) {
    it(`${name}: its ids are those of the whole rendered conversation, the mask is 1 exactly on the assistant's tokens`, () => {
      const tok = toks[name]!;
      for (let seed = 1; seed <= 40; seed++) {
        const { t, spans } = build(tok, new Rng(seed));
        const whole = tok.encodeChat(t.messages, { addGenerationPrompt: false });
        assert.deepEqual(t.ids, whole, `seed ${seed}: ${JSON.stringify(tok.decode(whole))}`);
        const expected = t.ids.map(() => 0);
        for (const s of spans) for (let i = 0; i < s.ids.length; i++) expected[s.start + i] = 1;
        assert.deepEqual(t.mask, expected, `seed ${seed}`);
        // each assistant turn starts where the template's generation prompt of its history ends
        let k = 0;
        t.messages.forEach((msg, i) => {
          if (msg.role !== "assistant") return;
          const head = tok.encodeChat(t.messages.slice(0, i), { addGenerationPrompt: true });
          assert.equal(spans[k]!.start, head.length, `seed ${seed}, turn ${k}`);
          assert.deepEqual(t.ids.slice(0, head.length), head);
          k++;
        });
      }
    });
  }

  it("the tool results take the template's tool role, or user turns when it has none", () => {
    const prompt = [{ role: "user", content: "Q" }];
    assert.equal(chatTemplateLayout(toks.chatml!, prompt).toolRole, "tool");
    assert.equal(chatTemplateLayout(toks["no-tool-role"]!, prompt).toolRole, "user");
    const l = chatTemplateLayout(toks.chatml!, prompt);
    assert.equal(l.closing, "<|im_end|>\n");
    assert.deepEqual(
      l.turnEndIds.map((id) => toks.chatml!.decode([id])),
      ["<|im_end|>"],
    );
    assert.equal(toks.chatml!.decode([l.rolloutEndId]), "<|endoftext|>");
    const l3 = chatTemplateLayout(toks.llama3!, prompt);
    assert.equal(l3.closing, "<|eot_id|>");
  });

  it("a turn cut before its turn-end token gets the template's closing as context (mask 0)", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const { t, spans } = build(toks.chatml!, new Rng(seed), { cutLast: true });
      const last = spans.at(-1)!;
      assert.equal(t.mask.slice(last.start).filter((m) => m === 1).length, last.ids.length);
      // the closing the policy did not write is there, untrained
      assert.equal(toks.chatml!.decode(t.ids.slice(last.start + last.ids.length)), "<|im_end|>\n");
      assert.deepEqual(t.ids, toks.chatml!.encodeChat(t.messages, { addGenerationPrompt: false }));
    }
  });

  it("sampled ids that are not the canonical encoding stay as sampled (no retokenization drift)", () => {
    const tok = toks.chatml!;
    const prompt = [{ role: "user", content: "Q" }];
    const layout = chatTemplateLayout(tok, prompt);
    const t = new ChatTranscript(tok, layout, prompt);
    // "meeting" one byte-level token per character, where the tokenizer would merge it
    const canonical = tok.encode("meeting", { addSpecialTokens: false });
    const bytes = [..."meeting"].map((c) => tok.tokenToId(c)!);
    assert.ok(canonical.length < bytes.length, "the fixture must merge the word");
    const sampled = [...bytes, layout.turnEndIds[0]!];
    const start = t.ids.length;
    t.addAssistant(sampled);
    t.addToolResult("ok");
    t.addAssistant([...canonical, layout.turnEndIds[0]!]);
    t.finish();
    assert.deepEqual(t.ids.slice(start, start + sampled.length), sampled);
    assert.deepEqual(
      t.mask.slice(start, start + sampled.length),
      sampled.map(() => 1),
    );
    // the same conversation as text; re-encoding it would have changed the policy's tokens
    assert.equal(tok.decode(t.ids), tok.applyChatTemplate(t.messages));
    assert.notDeepEqual(t.ids, tok.encodeChat(t.messages));
  });

  it("a template that rewrites earlier turns is refused, naming the problem", () => {
    const tok = toks.rewriting!;
    const prompt = [{ role: "user", content: "Q" }];
    const t = new ChatTranscript(tok, chatTemplateLayout(tok, prompt), prompt);
    t.addAssistant([...tok.encode("read", { addSpecialTokens: false }), tok.eosTokenIds[0]!]);
    assert.throws(() => t.addToolResult("x"), /a tool turn changes the text of the earlier turns/);
  });
});

describe("runChatRollouts", () => {
  /** An episode that wants `calls` tool calls, then an answer; reward = turns used. */
  function episode(calls: number): ChatEpisode<{ calls: number }> {
    let turns = 0;
    let done = false;
    return {
      messages: [{ role: "user", content: `Make ${calls} calls.` }],
      get turns() {
        return turns;
      },
      get done() {
        return done;
      },
      get solved() {
        return done;
      },
      step(turn) {
        turns++;
        if (turns > calls) {
          done = true;
          return { done: true, reward: turns };
        }
        return { done: false, toolResult: `result of ${turn}` };
      },
      cutShort: (reason) => (reason === "eos" ? -1 : -2),
      stats: () => ({ calls }),
    };
  }

  it("batches the episodes' turns, keeps the policy's ids, ends on the rollout-end token", () => {
    const tok = toks.chatml!;
    const layout = chatTemplateLayout(tok, [{ role: "user", content: "x" }]);
    const seen: number[][] = [];
    let call = 0;
    const policy: TurnPolicy = (contexts, req) => {
      call++;
      seen.push(contexts.map((c) => c.length));
      const tokens = contexts.map((_, i) => {
        // the third episode ends the conversation on its second turn
        if (i === contexts.length - 1 && call === 2)
          return [...tok.encode("bye", { addSpecialTokens: false }), layout.rolloutEndId];
        return [...tok.encode(`call ${call}`, { addSpecialTokens: false }), layout.turnEndIds[0]!];
      });
      assert.ok(req.maxNewTokens.every((n) => n >= 1));
      return { tokens, logprobs: tokens.map((t) => t.map(() => -1)) };
    };
    const rs = runChatRollouts(policy, tok, (i) => episode([0, 2, 3][i]!), 3, {
      maxTokens: 100,
      temperature: 1,
      rng: new Rng(1),
    });
    assert.deepEqual(
      rs.map((r) => r.reward),
      [1, 3, -1],
    );
    assert.equal(rs[2]!.stats.stoppedByEos, true);
    assert.equal(rs[2]!.ids.at(-1), layout.rolloutEndId);
    // the first turn is one batch of three; the finished episode leaves the next batches
    assert.equal(seen[0]!.length, 3);
    assert.equal(seen[1]!.length, 2);
    for (const r of rs) {
      assert.equal(r.policyMask.length, r.ids.length);
      assert.deepEqual(
        r.ids.slice(0, r.promptLength),
        tok.encodeChat([{ role: "user", content: `Make ${r.stats.episode.calls} calls.` }], {
          addGenerationPrompt: true,
        }),
      );
    }
    // an episode that ran to its answer is the whole rendered conversation
    const msgs: ChatMessage[] = [
      { role: "user", content: "Make 2 calls." },
      { role: "assistant", content: "call 1" },
      { role: "tool", content: "result of call 1" },
      { role: "assistant", content: "call 2" },
      { role: "tool", content: "result of call 2" },
      { role: "assistant", content: "call 3" },
    ];
    const whole = tok.encodeChat(msgs);
    assert.deepEqual(rs[1]!.ids, whole.slice(0, rs[1]!.ids.length));
  });

  it("the token budget ends an episode through cutShort", () => {
    const tok = toks.chatml!;
    const policy: TurnPolicy = (contexts, req) => {
      const tokens = contexts.map((_, i) =>
        Array.from({ length: req.maxNewTokens[i]! }, () => tok.tokenToId("a")!),
      );
      return { tokens, logprobs: tokens.map((t) => t.map(() => 0)) };
    };
    const [r] = runChatRollouts(policy, tok, () => episode(5), 1, {
      maxTokens: 7,
      maxTurnTokens: 3,
      temperature: 1,
      rng: new Rng(2),
    });
    assert.equal(r!.stats.policyTokens, 7);
    assert.equal(r!.reward, -2);
    assert.equal(r!.stats.truncated, true);
  });
});
