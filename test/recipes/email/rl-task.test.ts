import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../../../src/core/rng.ts";
import { initBackend } from "../../../src/model/backend.ts";
import type { GPT } from "../../../src/model/gpt.ts";
import { findAnswerSpan, parseDate } from "../../../src/recipes/email/answer.ts";
import { demonstration } from "../../../src/recipes/email/demonstration.ts";
import { EmailEpisode } from "../../../src/recipes/email/episode.ts";
import { generateInbox } from "../../../src/recipes/email/inbox.ts";
import { EMAIL_INBOX, type EmailMode } from "../../../src/recipes/email/presets.ts";
import { type EmailTaskOptions, emailRlTask, firstCallReward } from "../../../src/recipes/email/rl-task.ts";
import { emailDemonstrations, emailWarmStart } from "../../../src/recipes/email/run.ts";
import { emailVocab, endOfTurnId } from "../../../src/recipes/email/tokenizer.ts";
import { parseToolCall } from "../../../src/recipes/email/tool-call.ts";
import { grpoLossTensors, resolveLossConfig, stopGradient } from "../../../src/rl/loss.ts";
import { buildBatch } from "../../../src/rl/rollout.ts";
import { sftTrain } from "../../../src/rl/sft.ts";
import type { Rollout } from "../../../src/rl/types.ts";
import { tinyEmailGpt } from "./tiny-model.ts";

const vocab = emailVocab();
const OPTS: EmailTaskOptions = {
  mode: "masked",
  trainSize: 6,
  evalSize: 2,
  seed: 5,
  maxTurns: 3,
  maxTokens: 90,
  maxTurnTokens: 30,
  contextLength: 1024,
  inbox: EMAIL_INBOX,
};

let model: GPT;
before(async () => {
  await initBackend("wasm");
  model = tinyEmailGpt(3);
});
after(() => model.dispose());

function trainRollouts(mode: EmailMode): Rollout[] {
  return emailRlTask({ ...OPTS, mode }).rollouts!(model, {
    split: "train",
    count: 2,
    numGenerations: 2,
    temperature: 1,
    rng: new Rng(11),
    phase: 1,
  });
}

/** d loss / d logp of every completion position, for a batch built from `rollouts`. */
function logpGradient(rollouts: Rollout[], eosId: number) {
  const batch = buildBatch(
    rollouts,
    rollouts.map((_, i) => (i % 2 === 0 ? 1 : -1)),
    { eosId, maskTruncatedCompletions: false, padId: 0 },
  );
  const B = batch.ids.length;
  const T = batch.ids[0]!.length;
  const L = T - batch.promptLength;
  const grad = tf.tidy(() => {
    const ids = tf.tensor2d(batch.ids.flat(), [B, T], "int32");
    const logp = tf.slice(model.tokenLogprobs(ids).logprobs, [0, batch.promptLength - 1], [B, L]);
    const mask = tf.tensor2d(batch.mask.flat(), [B, L]);
    const advantages = tf.tensor1d(batch.advantages);
    const cfg = resolveLossConfig({ maxCompletionLength: L });
    const g = tf.grad((lp: tf.Tensor) => {
      const x = lp as tf.Tensor2D;
      return grpoLossTensors({ logp: x, oldLogp: stopGradient(x) as tf.Tensor2D, advantages, mask }, cfg)
        .loss;
    })(logp);
    return g.arraySync() as number[][];
  });
  return { batch, grad };
}

describe("email task modes", () => {
  it("masked: tool-result logprobs get exactly zero gradient; rollout: they get some", () => {
    const masked = trainRollouts("masked");
    const rollout = trainRollouts("rollout");
    // Same model, same seed: the same episodes; only the masks differ.
    assert.deepEqual(
      rollout.map((r) => r.tokens),
      masked.map((r) => r.tokens),
    );
    assert.ok(rollout.every((r) => r.toolMask === undefined));
    const eos = vocab.eosId!;
    const m = logpGradient(masked, eos);
    const r = logpGradient(rollout, eos);
    let toolPositions = 0;
    let toolGradRollout = 0;
    let policyGradMasked = 0;
    masked.forEach((ro, i) => {
      const offset = ro.prompt.length - m.batch.promptLength;
      ro.tokens.forEach((_, t) => {
        const j = offset + t;
        if (ro.toolMask![t] === 0) {
          toolPositions++;
          assert.equal(m.grad[i]![j], 0, `row ${i} tool token ${t}`);
          if (r.grad[i]![j] !== 0) toolGradRollout++;
        } else if (m.grad[i]![j] !== 0) policyGradMasked++;
      });
    });
    assert.ok(toolPositions > 0, "no tool-result token: the property was not exercised");
    assert.ok(policyGradMasked > 0, "masked mode trains nothing at all");
    assert.ok(toolGradRollout > 0, "rollout mode should train tool-result tokens");
  });

  it("cuts a rollout whose last tool result runs past the context to the context", () => {
    const contextLength = 120;
    const rs = emailRlTask({ ...OPTS, contextLength }).rollouts!(model, {
      split: "eval",
      count: 0,
      numGenerations: 2,
      temperature: 1,
      rng: new Rng(5),
      phase: 1,
    });
    assert.ok(rs.some((r) => !r.finished));
    for (const r of rs) {
      assert.ok(r.prompt.length + r.tokens.length <= contextLength);
      assert.equal(r.toolMask!.length, r.tokens.length);
    }
  });

  it("simple: one line per question, no tool results, the newline ends it", () => {
    const task = emailRlTask({ ...OPTS, mode: "simple" });
    assert.equal(task.eosId, endOfTurnId(vocab));
    const rs = task.rollouts!(model, {
      split: "train",
      count: 2,
      numGenerations: 3,
      temperature: 1,
      rng: new Rng(2),
      phase: 1,
    });
    assert.equal(rs.length, 2 * 3);
    const questions = new Set(task.dataset.train.map((q) => `Question: ${q.question}\n`));
    rs.forEach((r, i) => {
      assert.equal(r.group, Math.floor(i / 3));
      assert.equal(r.toolMask, undefined);
      assert.ok(r.tokens.length <= OPTS.maxTurnTokens);
      assert.ok(questions.has(vocab.decode(r.prompt)));
      const nl = r.tokens.indexOf(task.eosId);
      assert.ok(nl === -1 || nl === r.tokens.length - 1);
    });
  });

  it("evaluates every mode on whole episodes, and keeps them classified", () => {
    for (const mode of ["simple", "masked"] as const) {
      const task = emailRlTask({ ...OPTS, mode });
      assert.equal(task.lastHeldOut, null);
      const rs = task.rollouts!(model, {
        split: "eval",
        count: 0,
        numGenerations: 1,
        temperature: 0,
        rng: new Rng(2),
        phase: 1,
      });
      assert.equal(rs.length, task.dataset.eval.length);
      // Whole episodes: the first turn's tool result is in the completion, masked out.
      for (const r of rs) assert.ok(r.toolMask!.includes(0), mode);
      const held = task.lastHeldOut!;
      assert.equal(held.episodes.length, rs.length);
      held.episodes.forEach((e, i) => {
        assert.equal(e.question.id, task.dataset.eval[i]!.id);
        assert.equal(e.reward, rs[i]!.reward);
        assert.equal(e.errorClass === null, rs[i]!.success);
        assert.ok(e.transcript.startsWith(`Question: ${e.question.question}\n`));
      });
      // Greedy decoding: the bench's held-out measure sees the same episodes.
      const again = task.heldOutEpisodes(model, 0, 9);
      assert.deepEqual(
        again.episodes.map((e) => e.transcript),
        held.episodes.map((e) => e.transcript),
      );
      assert.equal(again.accuracy, held.accuracy);
    }
  });

  it("adds the answer_parts shaping term in training only, logged apart from the environment's reward", () => {
    const plain = emailRlTask(OPTS);
    const shaped = emailRlTask({ ...OPTS, answerPartsWeight: 0.5 });
    const req = { split: "train" as const, count: 2, numGenerations: 2, temperature: 1, phase: 1 };
    const a = plain.rollouts!(model, { ...req, rng: new Rng(4) });
    const b = shaped.rollouts!(model, { ...req, rng: new Rng(4) });
    assert.equal(a[0]!.rewardComponents, undefined);
    b.forEach((r, i) => {
      const c = r.rewardComponents!;
      assert.deepEqual(Object.keys(c), ["environment", "answer_parts"]);
      assert.equal(c.environment, a[i]!.reward);
      assert.ok(c.answer_parts! >= 0 && c.answer_parts! <= 1);
      assert.equal(r.reward, c.environment! + 0.5 * c.answer_parts!);
    });
    const e = shaped.rollouts!(model, {
      ...req,
      split: "eval",
      numGenerations: 1,
      temperature: 0,
      rng: new Rng(4),
    });
    for (const r of e) assert.equal(r.rewardComponents, undefined);
  });

  it("scores the first call by keyword overlap, errors by their band", () => {
    const { questions } = generateInbox(new Rng(4), "i", EMAIL_INBOX);
    const q = questions[0]!;
    const exact = firstCallReward(`search_emails(keywords="${q.keywords.join(" ")}")`, q);
    assert.deepEqual(exact, { total: 1, success: true });
    const half = firstCallReward(`search_emails(keywords="${q.keywords[0]} zebra")`, q);
    assert.ok(half.total > 0 && half.total < 1 && !half.success);
    assert.deepEqual(firstCallReward("read_email(id=e1)", q), { total: -1, success: false });
    assert.deepEqual(firstCallReward("hello", q), { total: -2, success: false });
  });
});

describe("email demonstrations for the warm start", () => {
  it("targets exactly the policy lines, fit the context, search with the limit and answer as written", () => {
    const task = emailRlTask({ ...OPTS, trainSize: 12, contextLength: 900, maxTurns: 6 });
    const { ids, targets } = task.demonstrationSet(new Rng(1), 12, 0);
    assert.ok(ids.length > 0);
    ids.forEach((seq, i) => {
      assert.ok(seq.length <= 900);
      const text = vocab.decode(seq);
      const policyText = vocab.decode(seq.filter((_, t) => targets[i]![t] === 1));
      const lines = policyText.trimEnd().split("\n");
      for (const line of lines) assert.ok(parseToolCall(line).ok, `not a tool call: ${line}`);
      assert.match(lines[0]!, /^search_emails\(keywords="[^"]+", max_results=3\)$/);
      const answer = parseToolCall(lines.at(-1)!);
      assert.ok(answer.ok && answer.call.tool === "return_final_answer");
      // The answer is a span of the emails the episode showed (copyable), not a reformatted one.
      assert.ok(
        text.includes(answer.call.args.answer),
        `answer ${answer.call.args.answer} not in the context`,
      );
    });
  });

  it("warm-starts on policy tokens only: the cross-entropy falls", () => {
    const task = emailRlTask({ ...OPTS, trainSize: 8, maxTurns: 6 });
    const small = tinyEmailGpt(9);
    const rng = new Rng(4);
    const losses = emailWarmStart(small, task, emailDemonstrations(task, 0.3, rng), 12, rng);
    assert.equal(losses.length, 12);
    assert.ok(losses.at(-1)! < losses[0]! - 0.3, `cross-entropy ${losses[0]} → ${losses.at(-1)}`);
    // Tokens outside the targets carry no loss: with no target at all, nothing moves.
    const before = Array.from(small.namedWeights()["transformer.wte.weight"]!.dataSync());
    const seq = [5, 6, 7, 8];
    const zero = sftTrain(small, [seq], {
      steps: 2,
      batchSize: 1,
      learningRate: 0.1,
      eosId: 2,
      targets: [[0, 0, 0, 0]],
      rng: new Rng(1),
    });
    assert.deepEqual(zero.map(Math.abs), [0, 0]);
    assert.deepEqual(Array.from(small.namedWeights()["transformer.wte.weight"]!.dataSync()), before);
    assert.throws(
      () =>
        sftTrain(small, [seq], {
          steps: 1,
          batchSize: 1,
          learningRate: 0.1,
          eosId: 2,
          targets: [[1, 1]],
          rng: new Rng(1),
        }),
      /targets\[0\] has 2 entries for 4 tokens/,
    );
    small.dispose();
  });

  it("compact episodes show search hits without snippets and emails without addresses", () => {
    const { inbox, questions } = generateInbox(new Rng(8), "i", EMAIL_INBOX);
    const q = questions[0]!;
    const full = new EmailEpisode(inbox, q);
    const compact = new EmailEpisode(inbox, q, { compact: true, instructions: false });
    assert.equal(compact.prompt, `Question: ${q.question}`);
    const call = `search_emails(keywords="${q.keywords.join(" ")}")`;
    const a = full.step(call).toolResult!;
    const b = compact.step(call).toolResult!;
    assert.deepEqual(
      b.split("\n"),
      a.split("\n").map((l) => l.split(" | ").slice(0, 3).join(" | ")),
    );
    const id = q.sourceIds[0]!;
    const email = compact.step(`read_email(id=${id})`).toolResult!;
    assert.doesNotMatch(email, /<|^To:/m);
    assert.match(
      email,
      new RegExp(`^ID: ${id}\nFrom: [A-Z][a-z]+ [A-Z][a-z]+\nDate: \\d{4}-\\d{2}-\\d{2}\nSubject: `),
    );
  });

  it("finds the written form of an answer", () => {
    assert.equal(
      findAnswerSpan("2024-03-05", "moved to Tuesday, March 5, 2024. Sorry"),
      "Tuesday, March 5, 2024",
    );
    assert.equal(parseDate("Tuesday, March 5, 2024"), "2024-03-05");
    assert.equal(findAnswerSpan("$12,500", "I approved $12,500 for it"), "$12,500");
    assert.equal(findAnswerSpan("Ada Lovelace", "Ada Lovelace will lead"), "Ada Lovelace");
    assert.equal(findAnswerSpan("2024-03-06", "on March 5, 2024"), null);
  });

  it("answer-as-written demonstrations still score as correct", () => {
    const { inbox, questions } = generateInbox(new Rng(8), "i", EMAIL_INBOX);
    for (const q of questions) {
      const turns = demonstration(q, inbox, new Rng(2), { noise: 0, answerAsWritten: true, maxResults: 3 });
      assert.match(turns[0]!.policy, /max_results=3/);
      const replay = new EmailEpisode(inbox, q);
      for (const t of turns) replay.step(t.policy);
      assert.equal(replay.stats().verdict, "correct", turns.at(-1)!.policy);
    }
  });

  it("an answer as written starts with the token its source email has there", () => {
    const vocab = emailVocab();
    let checked = 0;
    for (let seed = 1; seed <= 12; seed++) {
      const { inbox, questions } = generateInbox(new Rng(seed), "i", EMAIL_INBOX);
      for (const q of questions) {
        const last = demonstration(q, inbox, new Rng(2), { noise: 0, answerAsWritten: true }).at(-1)!.policy;
        const ids = vocab.encode(last);
        const at = ids.indexOf(vocab.encode('answer("')[0]!);
        const first = ids[at + 1]!;
        const sources = inbox.emails.filter((e) => q.sourceIds.includes(e.id));
        assert.ok(
          sources.some((e) => vocab.encode(e.body).includes(first)),
          `${last}: its first token ${JSON.stringify(vocab.decode([first]))} is not in the source`,
        );
        checked++;
      }
    }
    assert.ok(checked >= 12, `only ${checked} questions`);
  });
});
