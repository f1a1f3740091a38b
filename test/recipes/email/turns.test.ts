import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../../../src/core/rng.ts";
import { initBackend } from "../../../src/model/backend.ts";
import type { GPT } from "../../../src/model/gpt.ts";
import { demonstration } from "../../../src/recipes/email/demonstration.ts";
import { EmailEpisode } from "../../../src/recipes/email/episode.ts";
import { generateInbox } from "../../../src/recipes/email/inbox.ts";
import { formatToolResult } from "../../../src/recipes/email/prompt.ts";
import { emailVocab, encodeEpisode, endOfTurnId } from "../../../src/recipes/email/tokenizer.ts";
import {
  type EmailRollout,
  type EmailTurnOptions,
  runEmailRollout,
  runEmailRollouts,
} from "../../../src/recipes/email/turns.ts";
import type { EpisodeTurn, Inbox, Question } from "../../../src/recipes/email/types.ts";
import { type TurnPolicy, toRollout } from "../../../src/rl/multiturn.ts";
import { rolloutMask } from "../../../src/rl/rollout.ts";
import { tinyEmailGpt } from "./tiny-model.ts";

const vocab = emailVocab();
const EOT = endOfTurnId();

interface Case {
  inbox: Inbox;
  question: Question;
  turns: EpisodeTurn[];
}

function cases(seed: number, n: number, noise: number): Case[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, k) => {
    const { inbox, questions } = generateInbox(rng, `in${k}`, {
      projects: 2,
      factsPerProject: 2,
      fillerEmails: 3,
    });
    const question = rng.pick(questions);
    return { inbox, question, turns: demonstration(question, inbox, rng, { noise }) };
  });
}

/**
 * Replays demonstration turns. It reads only its context, like a model would: the question
 * identifies the episode and the number of tool results so far gives the turn.
 */
function scripted(all: Case[]): TurnPolicy {
  return (contexts, req) => {
    const tokens = contexts.map((ctx, i) => {
      const text = vocab.decode(ctx);
      const c = all.find((x) => text.includes(`Question: ${x.question.question}\n`));
      assert.ok(c, "context without a known question");
      const turn = text.split("<result>\n").length - 1;
      const out = vocab.encode(`${c.turns[turn]!.policy}\n`);
      return out.slice(0, req.maxNewTokens[i]);
    });
    return { tokens, logprobs: tokens.map((t) => t.map(() => -0.5)) };
  };
}

function opts(rng: Rng, extra: Partial<EmailTurnOptions> = {}): EmailTurnOptions {
  return { maxTurns: 10, maxTokens: 10_000, temperature: 1, rng, stopTokenId: EOT, ...extra };
}

/** Replays the turns through a fresh episode for the reward the environment gives them. */
function envReward(c: Case): number {
  const ep = new EmailEpisode(c.inbox, c.question, { maxTurns: 10, maxTokens: 10_000 });
  for (const t of c.turns) ep.step(t.policy, { tokens: t.policy.length + 1 });
  return ep.finalReward();
}

/**
 * Checks the layout against the episode history: prompt (mask 0), then per turn the policy
 * run (mask 1) and its fenced tool result (mask 0), optionally after a separator newline.
 */
function assertLayout(r: EmailRollout, prompt: string, history: readonly EpisodeTurn[]): void {
  const { ids, policyMask: m, logprobs } = r;
  assert.equal(ids.length, m.length);
  assert.equal(ids.length, logprobs.length);
  assert.equal(vocab.decode(ids.slice(0, r.promptLength)), `${prompt}\n`);
  for (let i = 0; i < r.promptLength; i++) assert.equal(m[i], 0, `prompt token ${i} is trainable`);
  let i = r.promptLength;
  for (const [k, turn] of history.entries()) {
    const start = i;
    while (i < ids.length && m[i] === 1) i++;
    assert.ok(i > start || turn.policy === "", `turn ${k} has no policy tokens`);
    const policyIds = ids.slice(start, i);
    assert.equal(vocab.decode(policyIds).replace(/\n$/, ""), turn.policy.replace(/\n$/, ""));
    const toolStart = i;
    while (i < ids.length && m[i] === 0) i++;
    let toolText = vocab.decode(ids.slice(toolStart, i));
    if (turn.toolResult === null || (r.stats.stoppedByEos && k === history.length - 1)) {
      assert.equal(toolText, "", `turn ${k} ended the episode but context follows it`);
      continue;
    }
    if (policyIds.at(-1) !== EOT) toolText = toolText.replace(/^\n/, "");
    assert.equal(toolText, `${formatToolResult(turn.toolResult)}\n`, `tool result of turn ${k}`);
  }
  assert.equal(i, ids.length);
  for (let j = 0; j < ids.length; j++) if (m[j] === 0) assert.equal(logprobs[j], 0);
  assert.equal(
    m.reduce((a, b) => a + b, 0),
    r.stats.policyTokens,
  );
}

describe("multi-turn rollout with a scripted policy", () => {
  it("reaches the environment's reward and lays tokens out as encodeEpisode does", () => {
    const all = cases(5, 8, 0.4);
    for (const c of all) {
      const r = runEmailRollout(
        scripted(all),
        () => new EmailEpisode(c.inbox, c.question, { maxTurns: 10 }),
        {
          ...opts(new Rng(1)),
        },
      );
      assert.equal(r.reward, envReward(c));
      assert.equal(r.stats.turns, c.turns.length);
      assert.equal(r.stats.truncated, false);
      const prompt = new EmailEpisode(c.inbox, c.question).prompt;
      const expected = encodeEpisode(
        [
          { role: "prompt" as const, text: `${prompt}\n` },
          ...c.turns.flatMap((t) => [
            { role: "policy" as const, text: `${t.policy}\n` },
            ...(t.toolResult === null
              ? []
              : [{ role: "tool" as const, text: `${formatToolResult(t.toolResult)}\n` }]),
          ]),
        ],
        vocab,
      );
      assert.deepEqual(r.ids, expected.ids);
      assert.deepEqual(r.policyMask, expected.mask);
      assertLayout(r, prompt, c.turns);
    }
  });

  it("runs a group in one batch and gives each episode its own reward", () => {
    const all = cases(6, 5, 0.5);
    const rs = runEmailRollouts(
      scripted(all),
      (i, limits) => new EmailEpisode(all[i]!.inbox, all[i]!.question, limits),
      all.length,
      opts(new Rng(2)),
    );
    assert.deepEqual(
      rs.map((r) => r.reward),
      all.map(envReward),
    );
    // Clean demonstrations that answer correctly are successes.
    for (const [i, r] of rs.entries())
      assert.equal(r.success, r.stats.episode.verdict === "correct", `row ${i}`);
    assert.ok(rs.some((r) => r.success));
  });

  it("hands its limits to the episode, which scores running out of turns", () => {
    const [c] = cases(7, 1, 0);
    const r = runEmailRollout(
      scripted([c!]),
      (_, limits) => new EmailEpisode(c!.inbox, c!.question, limits),
      {
        ...opts(new Rng(3)),
        maxTurns: 1,
      },
    );
    assert.equal(r.stats.turns, 1);
    assert.equal(r.stats.episode.verdict, "out_of_turns");
    // The only turn ended the episode: no tool result follows it.
    assert.equal(r.ids.at(-1), EOT);
    assert.equal(r.policyMask.at(-1), 1);
  });

  it("ends an episode whose context is full and scores it as out of budget", () => {
    const [c] = cases(8, 1, 0);
    const promptLength = vocab.encode(`${new EmailEpisode(c!.inbox, c!.question).prompt}\n`).length;
    const r = runEmailRollout(
      scripted([c!]),
      (_, limits) => new EmailEpisode(c!.inbox, c!.question, limits),
      {
        ...opts(new Rng(4)),
        contextLength: promptLength + 4,
      },
    );
    assert.equal(r.stats.truncated, true);
    assert.equal(r.stats.policyTokens, 4);
    assert.ok(r.stats.toolTokens > 0);
    // A search cut after 4 tokens is unparseable: an error result, then no room is left.
    assert.equal(r.stats.turns, 1);
    assert.equal(r.reward, 0);
    assert.equal(toRollout(r, 0).finished, false);
  });

  it("ends the rollout at eos, leaving nothing after it for the trainer's mask", () => {
    const [c] = cases(10, 1, 0);
    const search = vocab.encode(c!.turns[0]!.policy);
    const eosFirst: TurnPolicy = (contexts) => ({
      tokens: contexts.map(() => [...search, vocab.eosId!, ...vocab.encode("junk")]),
      logprobs: contexts.map(() => new Array(search.length + 5).fill(-1)),
    });
    const r = runEmailRollout(
      eosFirst,
      (_, limits) => new EmailEpisode(c!.inbox, c!.question, limits),
      opts(new Rng(5)),
    );
    assert.equal(r.stats.stoppedByEos, true);
    assert.equal(r.stats.turns, 1);
    assert.equal(r.ids.at(-1), vocab.eosId);
    assert.equal(r.stats.policyTokens, search.length + 1);
    // The search found a source email: out_of_turns band plus the found-source bonus.
    assert.equal(r.stats.episode.foundSource, true);
    assert.equal(r.reward, 0.1);
    const t = toRollout(r, 0);
    assert.deepEqual(
      rolloutMask(t, { eosId: vocab.eosId!, maskTruncatedCompletions: true }),
      r.policyMask.slice(r.promptLength),
    );
  });

  it("rejects bad options and used episodes with a message naming the field", () => {
    const [c] = cases(9, 1, 0);
    const fresh = () => new EmailEpisode(c!.inbox, c!.question);
    const p = scripted([c!]);
    assert.throws(() => runEmailRollout(p, fresh, { ...opts(new Rng(1)), maxTurns: 0 }), /maxTurns/);
    assert.throws(() => runEmailRollout(p, fresh, { ...opts(new Rng(1)), maxTokens: 1.5 }), /maxTokens/);
    assert.throws(() => runEmailRollout(p, fresh, { ...opts(new Rng(1)), temperature: -1 }), /temperature/);
    assert.throws(() => runEmailRollouts(p, fresh, 0, opts(new Rng(1))), /count/);
    const used = () => {
      const e = fresh();
      e.step("read_email(id=e1)");
      return e;
    };
    assert.throws(() => runEmailRollout(p, used, opts(new Rng(1))), /used or invalid episode at index 0/);
    assert.throws(
      () => runEmailRollout(p, fresh, { ...opts(new Rng(1)), contextLength: 20 }),
      /prompt of episode 0 has \d+ tokens, contextLength is 20/,
    );
  });
});

describe("multi-turn rollout with a GPT", () => {
  let model: GPT;
  before(async () => {
    await initBackend("wasm");
    model = tinyEmailGpt(3);
  });
  after(() => model.dispose());

  const episodes = cases(21, 4, 0);
  const factory = (i: number, limits: { maxTurns?: number; maxTokens?: number }) =>
    new EmailEpisode(episodes[i]!.inbox, episodes[i]!.question, limits);
  let rollouts: EmailRollout[] = [];

  it("masks prompt and tool-result tokens with 0 on random sampled episodes", () => {
    const rng = new Rng(17);
    rollouts = runEmailRollouts(model, factory, episodes.length, {
      ...opts(rng),
      maxTurns: 3,
      maxTokens: 90,
      maxTurnTokens: 30,
    });
    assert.equal(rollouts.length, episodes.length);
    let toolTokens = 0;
    for (const [i, r] of rollouts.entries()) {
      const ep = factory(i, {});
      assertLayout(r, ep.prompt, historyOf(r, i));
      assert.ok(r.stats.policyTokens <= 90);
      toolTokens += r.stats.toolTokens;
    }
    // An untrained model writes garbage: its tool results are errors, which must be masked.
    assert.ok(toolTokens > 0, "no tool result was produced; the property was not exercised");
    assert.ok(
      rollouts.some((r) => r.stats.turns > 1),
      "no rollout took a second turn",
    );
  });

  it("returns logprobs equal to a full forward pass on the whole sequence", () => {
    assert.ok(rollouts.length > 0);
    for (const r of rollouts) {
      const full = tf.tidy(() => {
        const out = model.tokenLogprobs(tf.tensor2d([r.ids], [1, r.ids.length], "int32"));
        return Array.from(out.logprobs.dataSync());
      });
      let checked = 0;
      for (let i = 1; i < r.ids.length; i++) {
        if (r.policyMask[i] !== 1) continue;
        assert.ok(
          Math.abs(full[i - 1]! - r.logprobs[i]!) < 1e-4,
          `token ${i}: ${full[i - 1]} vs ${r.logprobs[i]}`,
        );
        checked++;
      }
      assert.equal(checked, r.stats.policyTokens);
    }
  });

  it("converts to a trainer rollout whose mask is the policy mask", () => {
    for (const r of rollouts) {
      const t = toRollout(r, 3);
      assert.equal(t.group, 3);
      assert.deepEqual([...t.prompt, ...t.tokens], r.ids);
      const mask = rolloutMask(t, { eosId: vocab.eosId!, maskTruncatedCompletions: false });
      assert.deepEqual(mask, r.policyMask.slice(r.promptLength));
    }
  });

  /** The history the episode recorded, rebuilt by replaying the rollout's policy runs. */
  function historyOf(r: EmailRollout, i: number): EpisodeTurn[] {
    const ep = factory(i, { maxTurns: 3, maxTokens: 90 });
    let j = r.promptLength;
    while (j < r.ids.length && !ep.done) {
      const start = j;
      while (j < r.ids.length && r.policyMask[j] === 1) j++;
      const text = vocab.decode(r.ids.slice(start, j).filter((id) => id !== EOT));
      assert.ok(j > start, "a turn without policy tokens");
      ep.step(text, { tokens: j - start });
      while (j < r.ids.length && r.policyMask[j] === 0) j++;
    }
    return ep.history;
  }
});
