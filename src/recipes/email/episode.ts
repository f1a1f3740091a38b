/**
 * One multi-turn episode: the policy writes a tool call, the episode executes it and returns
 * the tool's text, until an answer, the turn limit, the token budget or too many errors.
 *
 * Malformed calls do not crash the episode: the policy gets the error text as the tool result
 * and may retry. The episode ends on errors only when `maxToolErrors` of them have accumulated
 * or when the last allowed turn is an error; it then scores the band of the last error kind.
 * A recovered error costs a turn, which the fewer-turns bonus already charges.
 */
import { buildPrompt } from "./prompt.ts";
import { renderEpisode, type Segment } from "./render.ts";
import { computeReward, type Outcome, type RewardResult } from "./reward.ts";
import { findEmail, formatEmail, formatSearchResults, searchEmails } from "./search.ts";
import { parseToolCall, type ToolErrorKind } from "./tool-call.ts";
import type { EpisodeTurn, Inbox, Question } from "./types.ts";

export const MAX_TURNS = 10;

export interface EpisodeOptions {
  maxTurns?: number;
  /** Total tokens the caller may report through `step`; past it the episode stops. */
  maxTokens?: number;
  maxToolErrors?: number;
  /** Whether the prompt lists the tools before the question (default true); small models do without. */
  instructions?: boolean;
  /** Tool results without snippets and addresses (see FormatOptions), for short contexts. */
  compact?: boolean;
}

export interface StepResult {
  toolResult: string | null;
  done: boolean;
  reward?: number;
}

export interface EpisodeStats {
  turns: number;
  toolErrors: number;
  errorsByKind: Record<ToolErrorKind, number>;
  invalidReads: number;
  searches: number;
  searchedIds: string[];
  readIds: string[];
  tokensUsed: number;
  foundSource: boolean;
  readSource: boolean;
  verdict: RewardResult["verdict"] | null;
  reward: number | null;
  /** The final answer and the sources it cited; null when the episode ended without one. */
  answer: string | null;
  citedIds: string[];
}

export class EmailEpisode {
  readonly maxTurns: number;
  readonly maxTokens: number;
  readonly maxToolErrors: number;
  readonly instructions: boolean;
  readonly compact: boolean;
  readonly history: EpisodeTurn[] = [];
  private readonly searched = new Set<string>();
  private readonly read = new Set<string>();
  private readonly errors: Record<ToolErrorKind, number> = {
    unparseable: 0,
    unknown_tool: 0,
    bad_arguments: 0,
  };
  private invalidReads = 0;
  private searches = 0;
  private tokens = 0;
  private result: RewardResult | null = null;
  private answered: { answer: string; sources: string[] } | null = null;

  constructor(
    readonly inbox: Inbox,
    readonly question: Question,
    options: EpisodeOptions = {},
  ) {
    if (question.inboxId !== inbox.id) {
      throw new Error(`question ${question.id} belongs to inbox ${question.inboxId}, not ${inbox.id}`);
    }
    this.maxTurns = options.maxTurns ?? MAX_TURNS;
    this.maxTokens = options.maxTokens ?? Number.POSITIVE_INFINITY;
    this.maxToolErrors = options.maxToolErrors ?? 3;
    this.instructions = options.instructions ?? true;
    this.compact = options.compact ?? false;
    if (!Number.isInteger(this.maxTurns) || this.maxTurns < 1) {
      throw new Error(`maxTurns must be a positive integer, got ${this.maxTurns}`);
    }
  }

  /** The text the policy sees before its first turn. */
  get prompt(): string {
    return buildPrompt(this.question, { instructions: this.instructions });
  }

  /** Prompt and turns so far as role-tagged segments (for the loss mask). */
  render(): Segment[] {
    return renderEpisode(this.history, this.prompt);
  }

  get done(): boolean {
    return this.result !== null;
  }

  get turns(): number {
    return this.history.length;
  }

  get toolErrors(): number {
    return this.errors.unparseable + this.errors.unknown_tool + this.errors.bad_arguments;
  }

  get tokensUsed(): number {
    return this.tokens;
  }

  /**
   * Runs one policy turn. `tokens` is what the caller counts for this turn (policy text, and
   * the tool result if it wants those to count) against `maxTokens`.
   */
  step(policyText: string, options: { tokens?: number } = {}): StepResult {
    if (this.result) throw new Error(`episode for ${this.question.id} is over; no more steps`);
    const tokens = options.tokens ?? 0;
    if (!Number.isFinite(tokens) || tokens < 0)
      throw new Error(`tokens must be a non-negative number, got ${tokens}`);
    this.tokens += tokens;
    const parsed = parseToolCall(policyText);
    const turn: EpisodeTurn = { policy: policyText, toolResult: null };
    this.history.push(turn);
    if (!parsed.ok) {
      this.errors[parsed.kind]++;
      if (this.toolErrors >= this.maxToolErrors || this.turns >= this.maxTurns) {
        return this.finish({ kind: "tool_error", error: parsed.kind });
      }
      // The kind stays in the stats; the policy reads the message, in the prompt's own words.
      turn.toolResult = `Error: ${parsed.message}`;
      return this.continueOrStop(turn.toolResult);
    }
    const call = parsed.call;
    if (call.tool === "return_final_answer") {
      this.answered = call.args;
      return this.finish({ kind: "answer", ...call.args });
    }
    if (call.tool === "search_emails") {
      this.searches++;
      let text: string;
      try {
        const hits = searchEmails(this.inbox, call.args);
        for (const h of hits) this.searched.add(h.id);
        text = formatSearchResults(hits, { compact: this.compact });
      } catch (err) {
        text = `Error: ${(err as Error).message}`;
      }
      turn.toolResult = text;
      return this.continueOrStop(text);
    }
    const email = findEmail(this.inbox, call.args.id);
    if (email) this.read.add(email.id);
    else this.invalidReads++;
    turn.toolResult = email
      ? formatEmail(email, { compact: this.compact })
      : `Error: no email with id ${call.args.id}`;
    return this.continueOrStop(turn.toolResult);
  }

  private continueOrStop(toolResult: string): StepResult {
    if (this.turns >= this.maxTurns) return this.finish({ kind: "out_of_turns" });
    if (this.tokens >= this.maxTokens) return this.finish({ kind: "out_of_budget" });
    return { toolResult, done: false };
  }

  private finish(outcome: Outcome): StepResult {
    // The turn that ends the episode gets no tool result: nothing follows it.
    this.history[this.history.length - 1]!.toolResult = null;
    this.result = computeReward({
      outcome,
      expected: this.question,
      turns: this.turns,
      maxTurns: this.maxTurns,
      foundSource: this.foundSource,
      readSource: this.readSource,
    });
    return { toolResult: null, done: true, reward: this.result.reward };
  }

  get foundSource(): boolean {
    return this.question.sourceIds.some((id) => this.searched.has(id));
  }

  get readSource(): boolean {
    return this.question.sourceIds.some((id) => this.read.has(id));
  }

  finalReward(): number {
    if (!this.result) throw new Error(`episode for ${this.question.id} is not over yet`);
    return this.result.reward;
  }

  stats(): EpisodeStats {
    return {
      turns: this.turns,
      toolErrors: this.toolErrors,
      errorsByKind: { ...this.errors },
      invalidReads: this.invalidReads,
      searches: this.searches,
      searchedIds: [...this.searched],
      readIds: [...this.read],
      tokensUsed: this.tokens,
      foundSource: this.foundSource,
      readSource: this.readSource,
      verdict: this.result?.verdict ?? null,
      reward: this.result?.reward ?? null,
      answer: this.answered?.answer ?? null,
      citedIds: [...(this.answered?.sources ?? [])],
    };
  }
}
