import { Rng } from "../../core/rng.ts";
import type { GPT } from "../../model/gpt.ts";
import { sample } from "../../model/sampler.ts";
import type { Vocab } from "../../model/tokenizer.ts";
import { toRollout } from "../../rl/multiturn.ts";
import type { EpisodeRequest, RlTask, Rollout } from "../../rl/types.ts";
import { demonstration } from "./demonstration.ts";
import { EmailEpisode, type EpisodeOptions } from "./episode.ts";
import { answerInInbox, classifyEpisode } from "./errors.ts";
import { type HeldOutEpisode, type HeldOutResult, summariseHeldOut } from "./held-out.ts";
import { type EmailDataset, generateDataset, type InboxOptions } from "./inbox.ts";
import { EMAIL_MAX_RESULTS, type EmailMode } from "./presets.ts";
import { buildPrompt } from "./prompt.ts";
import { renderEpisode } from "./render.ts";
import { answerParts, REWARD } from "./reward.ts";
import { keywordStems } from "./search.ts";
import { decodeTurn, emailVocab, encodeEpisode, endOfTurnId } from "./tokenizer.ts";
import { parseToolCall } from "./tool-call.ts";
import { type EmailRollout, runEmailRollouts } from "./turns.ts";
import type { Question } from "./types.ts";

/**
 * The email-agent recipe: a small transformer over words and characters answers questions
 * about a synthetic inbox by writing tool calls (search, read, answer), one line per turn.
 *
 *   masked   multi-turn episodes; the loss covers the policy's own tokens only.
 *   rollout  multi-turn episodes; the loss also covers the tool results pasted into the context.
 *   simple   no environment: the policy writes its first tool call for a question, scored by a
 *            proxy (a search whose keywords match the question's) — a fast smoke test.
 */

export interface EmailTaskOptions {
  mode: EmailMode;
  trainSize: number;
  evalSize: number;
  /** questions of the warm start's demonstrations, from inboxes of their own (0: the training questions). */
  demoSize?: number;
  /** the dataset's seed: the same seed gives the same inboxes and questions. */
  seed: number;
  maxTurns: number;
  /** policy tokens per episode. */
  maxTokens: number;
  /** tokens one turn (one tool call) may take. */
  maxTurnTokens: number;
  contextLength: number;
  inbox: InboxOptions;
  /** episodes sampled together; bounds the memory of the batched forward passes. */
  batchEpisodes?: number;
  /**
   * Weight of the answer_parts shaping term in training (reward.ts answerParts; 0: off). The
   * held-out evaluation always reports the environment's reward alone.
   */
  answerPartsWeight?: number;
}

export interface EmailRlTask extends RlTask {
  readonly mode: EmailMode;
  readonly options: EmailTaskOptions;
  readonly dataset: EmailDataset;
  readonly vocab: Vocab;
  readonly vocabSize: number;
  /** a fresh episode for a question, with the recipe's prompt and limits. */
  episode(q: Question, limits?: EpisodeOptions): EmailEpisode;
  /**
   * warm-start sequences (prompt + turns + tool results) and their targets (policy tokens), on
   * the demonstration questions (the training questions when there are none), in turn.
   */
  demonstrationSet(rng: Rng, n: number, noise: number): { ids: number[][]; targets: number[][] };
  /** the episodes of the trainer's latest evaluation (the held-out split), classified; null before one. */
  readonly lastHeldOut: HeldOutResult | null;
  /** full multi-turn episodes on the held-out questions, whatever the mode; for before/after figures. */
  heldOutEpisodes(policy: GPT, temperature: number, seed: number): HeldOutResult;
}

/** Proxy reward of the simple mode: error bands as in the environment, else keyword overlap. */
export function firstCallReward(line: string, q: Question): { total: number; success: boolean } {
  const parsed = parseToolCall(line);
  if (!parsed.ok) return { total: REWARD[parsed.kind], success: false };
  if (parsed.call.tool !== "search_emails") return { total: REWARD.wrongAnswer, success: false };
  const want = new Set(keywordStems(q.keywords));
  const got = new Set(keywordStems(parsed.call.args.keywords));
  let shared = 0;
  for (const w of got) if (want.has(w)) shared++;
  const union = want.size + got.size - shared;
  const overlap = union > 0 ? shared / union : 0;
  return { total: overlap, success: overlap === 1 };
}

/**
 * A rollout whose last tool result ran past the context is cut to it: the model cannot score
 * positions it does not have, and the cut tokens are the environment's (the episode ended there).
 */
function fitContext(r: Rollout, contextLength: number): Rollout {
  const room = contextLength - r.prompt.length;
  if (r.tokens.length <= room) return r;
  return { ...r, tokens: r.tokens.slice(0, room), toolMask: r.toolMask?.slice(0, room), finished: false };
}

export function emailRlTask(opts: EmailTaskOptions): EmailRlTask {
  const vocab = emailVocab();
  const eot = endOfTurnId(vocab);
  const dataset = generateDataset(new Rng(opts.seed), {
    trainSize: opts.trainSize,
    evalSize: opts.evalSize,
    demoSize: opts.demoSize ?? 0,
    ...opts.inbox,
  });
  const inboxOf = (q: Question) => dataset.inboxes.get(q.inboxId)!;
  const episode = (q: Question, limits: EpisodeOptions = {}) =>
    new EmailEpisode(inboxOf(q), q, {
      maxTurns: opts.maxTurns,
      maxTokens: opts.maxTokens,
      ...limits,
      instructions: false,
      compact: true,
    });
  const promptOf = (q: Question) => vocab.encode(`${buildPrompt(q, { instructions: false })}\n`);
  const chunk = opts.batchEpisodes ?? 16;

  /** Whole multi-turn episodes, G per question (question k's carry group k), sampled in chunks. */
  function multiTurn(
    policy: GPT,
    questions: readonly Question[],
    G: number,
    sampling: Pick<EpisodeRequest, "temperature" | "topP" | "topK">,
    rng: Rng,
  ): { q: Question; k: number; r: EmailRollout }[] {
    const all = questions.flatMap((q, k) => Array.from({ length: G }, () => ({ q, k })));
    const out: { q: Question; k: number; r: EmailRollout }[] = [];
    for (let start = 0; start < all.length; start += chunk) {
      const part = all.slice(start, start + chunk);
      const rs = runEmailRollouts(policy, (i, limits) => episode(part[i]!.q, limits), part.length, {
        maxTurns: opts.maxTurns,
        maxTokens: opts.maxTokens,
        maxTurnTokens: opts.maxTurnTokens,
        contextLength: opts.contextLength,
        ...sampling,
        rng,
      });
      rs.forEach((r, i) => {
        out.push({ ...part[i]!, r });
      });
    }
    return out;
  }

  /** The simple mode's rollouts: the first tool call of each episode, scored by its proxy. */
  function firstCalls(
    policy: GPT,
    questions: readonly Question[],
    G: number,
    sampling: Pick<EpisodeRequest, "temperature" | "topP" | "topK">,
    rng: Rng,
  ): Rollout[] {
    const out: Rollout[] = [];
    const all = questions.flatMap((q, k) => Array.from({ length: G }, () => ({ q, k })));
    for (let start = 0; start < all.length; start += chunk) {
      const part = all.slice(start, start + chunk);
      const res = sample(
        policy,
        part.map((p) => promptOf(p.q)),
        { maxNewTokens: opts.maxTurnTokens, ...sampling, eosId: eot, rng },
      );
      part.forEach((p, i) => {
        const tokens = res.tokens[i]!;
        const r = firstCallReward(decodeTurn(tokens, vocab), p.q);
        out.push({
          group: p.k,
          prompt: promptOf(p.q),
          tokens,
          finished: res.finished[i]!,
          reward: r.total,
          success: r.success,
        });
      });
    }
    return out;
  }

  function heldOutRecord(q: Question, r: EmailRollout): HeldOutEpisode {
    const s = r.stats.episode;
    return {
      question: q,
      reward: r.reward,
      verdict: s.verdict,
      answer: s.answer,
      errorClass: r.success ? null : classifyEpisode(s, q),
      answerInInbox: r.success || s.answer === null ? null : answerInInbox(s.answer, inboxOf(q)),
      transcript: vocab.decode(r.ids),
    };
  }

  let lastHeldOut: HeldOutResult | null = null;
  const partsWeight = opts.answerPartsWeight ?? 0;

  /** The environment's reward plus the weighted shaping term, each logged under its own name. */
  function shaped(t: Rollout, q: Question, r: EmailRollout): Rollout {
    if (partsWeight === 0) return t;
    const answer = r.stats.episode.answer;
    const parts = answer === null ? 0 : answerParts(q.answer, answer);
    return {
      ...t,
      reward: t.reward + partsWeight * parts,
      rewardComponents: { environment: t.reward, answer_parts: parts },
    };
  }

  return {
    name: `email-${opts.mode}`,
    mode: opts.mode,
    options: opts,
    dataset,
    vocab,
    vocabSize: vocab.size,
    // The simple mode's completion is one line: the end-of-turn token ends it.
    eosId: opts.mode === "simple" ? eot : vocab.eosId!,
    trainPrompts: (rng: Rng, n: number) => Array.from({ length: n }, () => promptOf(rng.pick(dataset.train))),
    evalPrompts: () => dataset.eval.map(promptOf),
    reward: () => {
      throw new Error("email task: rewards come with its rollouts");
    },
    rollouts(policy: GPT, req: EpisodeRequest): Rollout[] {
      const sampling = { temperature: req.temperature, topP: req.topP, topK: req.topK };
      if (req.split === "eval") {
        // Every mode is evaluated on whole episodes: the held-out accuracy is the agent's.
        const rs = multiTurn(policy, dataset.eval, req.numGenerations, sampling, req.rng);
        lastHeldOut = summariseHeldOut(rs.map(({ q, r }) => heldOutRecord(q, r)));
        return rs.map(({ k, r }) => fitContext(toRollout(r, k), opts.contextLength));
      }
      const questions = Array.from({ length: req.count }, () => req.rng.pick(dataset.train));
      if (opts.mode === "simple") return firstCalls(policy, questions, req.numGenerations, sampling, req.rng);
      return multiTurn(policy, questions, req.numGenerations, sampling, req.rng).map(({ q, k, r }) => {
        const t = shaped(fitContext(toRollout(r, k), opts.contextLength), q, r);
        // rollout mode: tool results are trained on as if the policy had written them.
        return opts.mode === "rollout" ? { ...t, toolMask: undefined } : t;
      });
    },
    get lastHeldOut() {
      return lastHeldOut;
    },
    describe: (tokens: number[]) => vocab.decode(tokens).slice(0, 2000),
    episode,
    demonstrationSet(rng: Rng, n: number, noise: number) {
      const ids: number[][] = [];
      const targets: number[][] = [];
      const pool = dataset.demos.length > 0 ? dataset.demos : dataset.train;
      for (let i = 0; i < n; i++) {
        const q = pool[i % pool.length]!;
        const turns = demonstration(q, inboxOf(q), rng, {
          noise,
          maxResults: EMAIL_MAX_RESULTS,
          answerAsWritten: true,
          episode: { maxTurns: opts.maxTurns, instructions: false, compact: true },
        });
        const e = encodeEpisode(renderEpisode(turns, buildPrompt(q, { instructions: false })), vocab);
        // Longer than the context: the model could not see it whole, so it cannot learn from it.
        if (e.ids.length > opts.contextLength) continue;
        ids.push(e.ids);
        targets.push(e.mask);
      }
      return { ids, targets };
    },
    heldOutEpisodes(policy: GPT, temperature: number, seed: number): HeldOutResult {
      const rs = multiTurn(policy, dataset.eval, 1, { temperature }, new Rng(seed));
      return summariseHeldOut(rs.map(({ q, r }) => heldOutRecord(q, r)));
    },
  };
}
