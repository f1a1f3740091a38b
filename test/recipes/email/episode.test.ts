import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EmailEpisode } from "../../../src/recipes/email/episode.ts";
import { answerParts, computeReward, REWARD } from "../../../src/recipes/email/reward.ts";
import { inbox, question } from "./fixtures.ts";

const close = (actual: number, expected: number) =>
  assert.ok(Math.abs(actual - expected) < 1e-12, `expected ${expected}, got ${actual}`);

function run(texts: string[], options = {}): EmailEpisode {
  const ep = new EmailEpisode(inbox, question, options);
  for (const t of texts) {
    if (ep.done) break;
    ep.step(t);
  }
  return ep;
}

describe("EmailEpisode reward bands", () => {
  it("correct answer: 1 + sources bonus + turns bonus", () => {
    const ep = run([
      'search_emails(keywords="apollo design review")',
      "read_email(id=e1)",
      'answer("May 3, 2024", sources="e1")',
    ]);
    assert.ok(ep.done);
    // 3 turns of 10: turns bonus 0.1 * (10 - 3) / 9.
    close(ep.finalReward(), 1 + 0.1 + (0.1 * 7) / 9);
    assert.equal(ep.stats().verdict, "correct");
  });

  it("correct answer without sources and in 2 turns", () => {
    const ep = run(["read_email(id=e1)", 'answer("2024-05-03")']);
    close(ep.finalReward(), 1 + (0.1 * 8) / 9);
  });

  it("wrong answer: −1 plus partial credits for finding and reading a source", () => {
    close(run(['answer("2024-04-28")']).finalReward(), -1);
    const found = run(["search(apollo design)", 'answer("2024-04-28")']);
    close(found.finalReward(), -0.9);
    const read = run(["search(apollo design)", "read_email(id=e1)", 'answer("2024-04-28", sources="e2")']);
    close(read.finalReward(), -0.8);
    assert.equal(read.stats().verdict, "wrong");
  });

  it("reading a source that never showed in a search earns only the read credit", () => {
    close(run(["read_email(id=e1)", 'answer("I don\'t know")']).finalReward(), 0.1);
  });

  it("I don't know: 0 plus partial credit", () => {
    close(run(['answer("I don\'t know")']).finalReward(), 0);
    const ep = run(["search(offsite)", "search(apollo)", "answer(idk)"]);
    close(ep.finalReward(), 0.1);
    assert.equal(ep.stats().verdict, "dont_know");
  });

  it("out of turns: 0 plus partial credit, ending on the last turn", () => {
    const ep = new EmailEpisode(inbox, question, { maxTurns: 3 });
    assert.deepEqual(ep.step("search(lunch)").done, false);
    assert.equal(ep.step("search(apollo)").done, false);
    const last = ep.step("read_email(id=e1)");
    assert.deepEqual(last, { toolResult: null, done: true, reward: 0.2 });
    assert.equal(ep.stats().verdict, "out_of_turns");
  });

  it("stops when the reported tokens reach the budget", () => {
    const ep = new EmailEpisode(inbox, question, { maxTokens: 100 });
    assert.equal(ep.step("search(lunch)", { tokens: 60 }).done, false);
    const r = ep.step("search(noodles)", { tokens: 40 });
    assert.equal(r.done, true);
    assert.equal(r.reward, 0);
    assert.equal(ep.tokensUsed, 100);
    assert.equal(ep.stats().verdict, "out_of_budget");
    assert.throws(() => new EmailEpisode(inbox, question).step("x", { tokens: -1 }), /tokens/);
  });

  it("an answer still counts on the turn that exceeds the budget", () => {
    const ep = new EmailEpisode(inbox, question, { maxTokens: 10 });
    assert.equal(ep.step('answer("2024-05-03")', { tokens: 50 }).done, true);
    assert.ok(ep.finalReward() > 1);
  });

  it("malformed calls return an error text and the episode goes on", () => {
    const ep = new EmailEpisode(inbox, question);
    const r1 = ep.step("hmm, let me think");
    assert.equal(r1.done, false);
    assert.match(r1.toolResult!, /^Error: no tool call found/);
    const r2 = ep.step("delete_email(id=e1)");
    assert.match(
      r2.toolResult!,
      /^Error: unknown tool "delete_email"; use one of search_emails, read_email, answer$/,
    );
    assert.equal(ep.toolErrors, 2);
    ep.step("read_email(id=e1)");
    ep.step('answer("2024-05-03", sources="e1")');
    // Recovered errors cost their turns only: 4 turns → bonus 0.1 * 6 / 9.
    close(ep.finalReward(), 1 + 0.1 + (0.1 * 6) / 9);
    assert.deepEqual(ep.stats().errorsByKind, { unparseable: 1, unknown_tool: 1, bad_arguments: 0 });
  });

  it("ends with the band of the last error after maxToolErrors errors", () => {
    close(run(["???", "!!!", "..."]).finalReward(), REWARD.unparseable);
    close(run(["???", "search(apollo)", "!!!", "send_email(x)"]).finalReward(), -1.9);
    const bad = run(["read_email(id=x)", "read_email(id=y)", "search_emails(keywords=a, max_results=99)"]);
    close(bad.finalReward(), -1.8);
    assert.equal(bad.stats().verdict, "bad_arguments");
    assert.equal(bad.turns, 3);
  });

  it("ends with the error band when the last allowed turn is an error", () => {
    const ep = run(["search(apollo)", "read_email(id=zzz)"], { maxTurns: 2 });
    assert.ok(ep.done);
    close(ep.finalReward(), -1.8);
  });

  it("a read of a missing email is a tool result, not a format error", () => {
    const ep = new EmailEpisode(inbox, question);
    const r = ep.step("read_email(id=e99)");
    assert.equal(r.toolResult, "Error: no email with id e99");
    assert.equal(ep.toolErrors, 0);
    assert.equal(ep.stats().invalidReads, 1);
  });

  it("records searched and read ids and the turn history", () => {
    const ep = run(["search(offsite)", "read(e3)", "answer(idk)"]);
    const s = ep.stats();
    assert.deepEqual(s.searchedIds, ["e3"]);
    assert.deepEqual(s.readIds, ["e3"]);
    assert.equal(s.searches, 1);
    assert.equal(ep.history.length, 3);
    assert.match(ep.history[0]!.toolResult!, /^e3 \| 2024-04-03/);
    assert.match(ep.history[1]!.toolResult!, /^ID: e3\n/);
    assert.equal(ep.history[2]!.toolResult, null);
  });

  it("refuses steps after the end, a final reward before it, and a foreign question", () => {
    const ep = new EmailEpisode(inbox, question);
    assert.throws(() => ep.finalReward(), /not over/);
    ep.step("answer(idk)");
    assert.throws(() => ep.step("answer(idk)"), /is over/);
    assert.throws(() => new EmailEpisode(inbox, { ...question, inboxId: "other" }), /belongs to inbox other/);
    assert.throws(() => new EmailEpisode(inbox, question, { maxTurns: 0 }), /maxTurns/);
  });
});

describe("computeReward", () => {
  const base = { expected: { answer: "$1,200", sourceIds: ["e3", "e4"] }, turns: 10, maxTurns: 10 };
  it("orders the bands and keeps partial credits below the next band", () => {
    const worstWrong = computeReward({
      ...base,
      outcome: { kind: "answer", answer: "$5", sources: [] },
      foundSource: true,
      readSource: true,
    });
    close(worstWrong.reward, -0.8);
    const partialSources = computeReward({
      ...base,
      outcome: { kind: "answer", answer: "1200", sources: ["e3"] },
      foundSource: false,
      readSource: false,
    });
    // All sources must be cited for the bonus; the last allowed turn earns no turns bonus.
    close(partialSources.reward, 1);
    const allSources = computeReward({
      ...base,
      outcome: { kind: "answer", answer: "1200 USD", sources: ["E4", "e3", "e9"] },
      foundSource: false,
      readSource: false,
    });
    close(allSources.reward, 1.1);
    const error = computeReward({
      ...base,
      outcome: { kind: "tool_error", error: "unknown_tool" },
      foundSource: true,
      readSource: true,
    });
    close(error.reward, -1.9);
  });
});

describe("answerParts shaping", () => {
  it("counts the parts of the expected answer a given answer states", () => {
    close(answerParts("2024-06-20", "June 20, 2024"), 1);
    close(answerParts("2024-06-20", "2024-06-28"), 2 / 3);
    close(answerParts("$18,200", "$160,000"), 0);
    close(answerParts("$7,000", "$7,100"), 1 / 2);
    close(answerParts("Malik Ahmed", "Chloe Ahmed"), 1 / 2);
    close(answerParts("Orion Room", "Room Room"), 1 / 2);
    // Listing everything gains nothing; an answer of the wrong kind states no part.
    close(answerParts("Malik Ahmed", "Malik Chloe Yuki Ahmed Chen"), 2 / 5);
    close(answerParts("2024-06-20", "Tuesday"), 0);
    close(answerParts("$800", "I don't know"), 0);
  });
});
