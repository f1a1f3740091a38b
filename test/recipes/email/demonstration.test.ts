import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Rng } from "../../../src/core/rng.ts";
import { demonstration } from "../../../src/recipes/email/demonstration.ts";
import { EmailEpisode } from "../../../src/recipes/email/episode.ts";
import { generateInbox } from "../../../src/recipes/email/inbox.ts";
import type { Inbox, Question } from "../../../src/recipes/email/types.ts";

function corpus(seeds: number): { inbox: Inbox; question: Question }[] {
  const out: { inbox: Inbox; question: Question }[] = [];
  for (let seed = 0; seed < seeds; seed++) {
    const { inbox, questions } = generateInbox(new Rng(1000 + seed), `d${seed}`);
    for (const question of questions) out.push({ inbox, question });
  }
  return out;
}

/** Replays the policy texts in a fresh episode: the recorded tool results must be reproduced. */
function replay(inbox: Inbox, question: Question, turns: ReturnType<typeof demonstration>): EmailEpisode {
  const ep = new EmailEpisode(inbox, question);
  for (const t of turns) {
    const r = ep.step(t.policy);
    assert.equal(r.toolResult, t.toolResult);
  }
  assert.ok(ep.done, "a demonstration ends its episode");
  return ep;
}

describe("demonstration", () => {
  it("with noise 0 always answers correctly, citing sources, reward ≥ 1", () => {
    const rng = new Rng(1);
    for (const { inbox, question } of corpus(25)) {
      const turns = demonstration(question, inbox, rng, { noise: 0 });
      const ep = replay(inbox, question, turns);
      assert.ok(ep.finalReward() >= 1.1, `${question.id}: reward ${ep.finalReward()}`);
      assert.match(turns[0]!.policy, /^search_emails\(keywords="/);
      assert.equal(turns.length, 2 + question.sourceIds.length);
      assert.equal(ep.toolErrors, 0);
    }
  });

  it("with noise adds wrong searches, distractor reads and some wrong answers", () => {
    const rng = new Rng(2);
    let extraTurns = 0;
    let wrong = 0;
    let n = 0;
    for (const { inbox, question } of corpus(25)) {
      const turns = demonstration(question, inbox, rng, { noise: 0.5 });
      const ep = replay(inbox, question, turns);
      n++;
      if (turns.length > 2 + question.sourceIds.length) extraTurns++;
      if (ep.stats().verdict === "wrong") wrong++;
      else assert.equal(ep.stats().verdict, "correct");
    }
    // Expected rates: 75% of demonstrations take an extra turn, 25% answer wrongly.
    assert.ok(extraTurns > n * 0.6 && extraTurns < n * 0.9, `extra turns ${extraTurns}/${n}`);
    assert.ok(wrong > n * 0.15 && wrong < n * 0.35, `wrong ${wrong}/${n}`);
  });

  it("is deterministic for an rng state and validates noise", () => {
    const [{ inbox, question }] = corpus(1);
    const a = demonstration(question!, inbox!, new Rng(9), { noise: 0.7 });
    const b = demonstration(question!, inbox!, new Rng(9), { noise: 0.7 });
    assert.deepEqual(a, b);
    assert.throws(
      () => demonstration(question!, inbox!, new Rng(1), { noise: 2 }),
      /noise must be in \[0, 1\]/,
    );
  });

  it("stops early when the episode's turn limit is reached", () => {
    const [{ inbox, question }] = corpus(1);
    const turns = demonstration(question!, inbox!, new Rng(1), { noise: 0, episode: { maxTurns: 1 } });
    assert.equal(turns.length, 1);
    assert.equal(turns[0]!.toolResult, null);
  });
});
