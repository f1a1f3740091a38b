/**
 * The trained email agent at work (`grpo agent`): a saved model answers one question about a
 * synthetic inbox drawn with the settings it was trained with, turn by turn.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../../core/rng.ts";
import { readJsonFile } from "../../io/files.ts";
import type { GPT } from "../../model/gpt.ts";
import { METADATA_FILE } from "../../rl/checkpoint.ts";
import { gptTurnPolicy } from "../../rl/multiturn.ts";
import { EmailEpisode } from "./episode.ts";
import { generateInbox, type InboxOptions } from "./inbox.ts";
import { EMAIL_INBOX, EMAIL_RECIPE_DEFAULTS, emailDefaults, RUN_INFO_INBOX } from "./presets.ts";
import { formatToolResult } from "./prompt.ts";
import { decodeTurn, emailVocab, endOfTurnId } from "./tokenizer.ts";
import type { Question } from "./types.ts";

export interface AgentTurn {
  call: string;
  /** null on the turn that ended the episode. */
  result: string | null;
}

export interface AgentRun {
  question: string;
  inboxId: string;
  turns: AgentTurn[];
  /** the verdict when the question is one the inbox generator wrote (its answer is known). */
  verdict: string | null;
  expected: string | null;
  reward: number | null;
  /** the questions the generator wrote for this inbox, whose answers are known. */
  inboxQuestions: string[];
}

/** Reads the inbox settings and limits a run recorded in metadata.json (defaults otherwise). */
export function agentSettings(dir: string): { inbox: InboxOptions; maxTurns: number; maxTurnTokens: number } {
  const meta = join(dir, METADATA_FILE);
  const raw = existsSync(meta) ? (readJsonFile(meta) as { config?: Record<string, unknown> } | null) : null;
  const config = raw?.config ?? {};
  const num = (k: string, d: number) => (typeof config[k] === "number" ? (config[k] as number) : d);
  return {
    inbox: (config[RUN_INFO_INBOX] as InboxOptions | undefined) ?? EMAIL_INBOX,
    maxTurns: num("max_turns", emailDefaults("masked").maxTurns),
    maxTurnTokens: num("max_turn_tokens", EMAIL_RECIPE_DEFAULTS.maxTurnTokens),
  };
}

/**
 * Runs a model as the agent on one synthetic inbox (drawn from `seed` with the run's inbox
 * settings). Without a question it asks the inbox's first generated question.
 */
export function runAgent(
  model: GPT,
  opts: {
    question?: string;
    seed: number;
    inbox: InboxOptions;
    maxTurns: number;
    maxTurnTokens: number;
    temperature: number;
  },
): AgentRun {
  const { inbox, questions } = generateInbox(new Rng(opts.seed), `inbox-${opts.seed}`, opts.inbox);
  if (questions.length === 0) throw new Error("agent: the inbox settings produce no questions");
  const text = opts.question?.trim();
  const known = text === undefined ? questions[0]! : questions.find((q) => q.question === text);
  const question: Question = known ?? {
    id: "asked",
    question: text!,
    answer: "",
    sourceIds: [],
    inboxId: inbox.id,
    kind: "meeting_date",
    keywords: [],
    decoys: [],
  };
  const vocab = emailVocab();
  const eot = endOfTurnId(vocab);
  const episode = new EmailEpisode(inbox, question, {
    maxTurns: opts.maxTurns,
    instructions: false,
    compact: true,
  });
  const policy = gptTurnPolicy(model);
  const rng = new Rng(opts.seed);
  let context = vocab.encode(`${episode.prompt}\n`);
  const turns: AgentTurn[] = [];
  while (!episode.done) {
    const room = model.config.contextLength - context.length;
    if (room < 1) break;
    const out = policy([context], {
      maxNewTokens: [Math.min(opts.maxTurnTokens, room)],
      temperature: opts.temperature,
      stopTokenId: eot,
      rng,
    });
    const tokens = out.tokens[0]!;
    const call = decodeTurn(tokens, vocab);
    const step = episode.step(call, { tokens: tokens.length });
    turns.push({ call, result: step.toolResult });
    context = [...context, ...tokens];
    if (tokens.at(-1) !== eot) context.push(eot);
    if (step.toolResult !== null) context.push(...vocab.encode(`${formatToolResult(step.toolResult)}\n`));
  }
  const stats = episode.stats();
  return {
    question: question.question,
    inboxId: inbox.id,
    turns,
    verdict: known ? stats.verdict : null,
    expected: known ? known.answer : null,
    reward: known ? stats.reward : null,
    inboxQuestions: questions.map((q) => q.question),
  };
}
