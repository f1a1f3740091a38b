/**
 * Multi-turn episodes in a model's own chat template, token in and token out: the policy's
 * turns stay exactly the ids it sampled (mask 1), and everything else — the prompt, the end of
 * each assistant turn the template writes, each tool result in the template's tool turn (or a
 * user turn when the template has no tool role) and the next generation prompt — is the
 * template's text between two renderings of the conversation, encoded on its own (mask 0).
 *
 * Re-rendering and re-encoding the whole conversation after every turn instead changes the
 * policy's tokens whenever its sampled ids are not the tokenizer's canonical encoding of their
 * text (retokenization drift: the loss then trains tokens the policy never sampled). Here, when
 * the policy's turns are canonical, the ids built turn by turn are exactly those of the whole
 * rendered conversation, boundaries being at special tokens (test/rl/chat-episode.test.ts).
 */
import type { Rng } from "../core/rng.ts";
import type { DecoderModel } from "../model/causal-lm.ts";
import type { ChatMessage, ChatTemplateOptions, HFTokenizer } from "../model/hf/tokenizer.ts";
import { sample } from "../model/sampler.ts";
import type { CutShort, MultiTurnRollout, TurnPolicy } from "./multiturn.ts";

/** What a chat transcript needs of a tokenizer (HFTokenizer has it). */
export type ChatCodec = Pick<
  HFTokenizer,
  "applyChatTemplate" | "encode" | "decode" | "eosTokenIds" | "padTokenId" | "bosTokenId"
>;

/** Stands for an assistant's content where the template's structure alone is wanted. */
const PROBE = "\u2063probe\u2063";

export interface ChatTemplateLayout {
  /** the role tool results take: the template's own "tool" turn, or "user" when it has none. */
  toolRole: "tool" | "user";
  /** the template's text after an assistant turn's content (e.g. "<|im_end|>\n"). */
  closing: string;
  /** ids that end an assistant turn: eos ids whose text the closing starts with. */
  turnEndIds: number[];
  /** an id that ends the whole rollout when the policy writes it (an eos that ends no turn, else a special token). */
  rolloutEndId: number;
}

function render(
  tok: ChatCodec,
  messages: ChatMessage[],
  generation: boolean,
  opts: ChatTemplateOptions,
): string {
  return tok.applyChatTemplate(messages, { ...opts, addGenerationPrompt: generation });
}

/** `longer` with `prefix` cut off; the template must only ever append to a conversation. */
function after(longer: string, prefix: string, what: string): string {
  if (!longer.startsWith(prefix))
    throw new Error(
      `chat template: ${what} changes the text of the earlier turns (it must only append to them); multi-turn training needs a template whose rendering grows turn by turn`,
    );
  return longer.slice(prefix.length);
}

/**
 * How the tokenizer's template lays out assistant turns and tool results, found by rendering a
 * conversation of `prompt` with a probe content.
 */
export function chatTemplateLayout(
  tok: ChatCodec,
  prompt: ChatMessage[],
  opts: ChatTemplateOptions = {},
): ChatTemplateLayout {
  const head = render(tok, prompt, true, opts);
  const withTurn = [...prompt, { role: "assistant", content: PROBE }];
  const closing = after(render(tok, withTurn, false, opts), `${head}${PROBE}`, "an assistant turn");
  let toolRole: "tool" | "user" = "user";
  try {
    if (render(tok, [...withTurn, { role: "tool", content: PROBE }], true, opts).includes(PROBE))
      toolRole = "tool";
  } catch {
    // A template that refuses the role (raise_exception) has none: results go in user turns.
  }
  const text = (id: number) => tok.decode([id], { skipSpecialTokens: false });
  const turnEndIds = tok.eosTokenIds.filter((id) => closing.startsWith(text(id)));
  if (turnEndIds.length === 0)
    throw new Error(
      `chat template: no eos token (${tok.eosTokenIds.join(", ")}) begins the text after an assistant turn (${JSON.stringify(closing)}), so no token ends a turn`,
    );
  const rolloutEndId =
    tok.eosTokenIds.find((id) => !turnEndIds.includes(id)) ??
    [tok.padTokenId, tok.bosTokenId].find((id): id is number => id !== undefined && !turnEndIds.includes(id));
  if (rolloutEndId === undefined)
    throw new Error(
      "chat template: the tokenizer has no token besides the turn end to end a rollout with (eos, pad or bos)",
    );
  return { toolRole, closing, turnEndIds, rolloutEndId };
}

/** A conversation built turn by turn as ids and a loss mask (see the module comment). */
export class ChatTranscript {
  readonly ids: number[] = [];
  /** 1 on the policy's own tokens, 0 on everything the template and the environment wrote. */
  readonly mask: number[] = [];
  readonly messages: ChatMessage[];
  readonly promptLength: number;
  /** the template's closing of the last assistant turn, not yet appended. */
  private pendingClosing: string | null = null;

  constructor(
    private readonly tok: ChatCodec,
    readonly layout: ChatTemplateLayout,
    prompt: ChatMessage[],
    private readonly opts: ChatTemplateOptions = {},
  ) {
    this.messages = [...prompt];
    this.push(this.tok.encode(render(tok, prompt, true, opts), { addSpecialTokens: false }), 0);
    this.promptLength = this.ids.length;
  }

  private push(ids: readonly number[], m: number): void {
    for (const id of ids) {
      this.ids.push(id);
      this.mask.push(m);
    }
  }

  /**
   * The policy's turn as it sampled it: its ids (a turn-end token last when it wrote one) go in
   * unchanged; the text the template closes the turn with follows when the next turn starts.
   * Returns the turn's text, without the turn-end token.
   */
  addAssistant(generated: readonly number[]): string {
    const ended = generated.length > 0 && this.layout.turnEndIds.includes(generated.at(-1)!);
    const own = ended ? generated.slice(0, -1) : generated;
    const content = this.tok.decode(own, { skipSpecialTokens: false });
    this.push(generated, 1);
    this.messages.push({ role: "assistant", content });
    // What the template writes after the content, less what the policy wrote of it itself.
    const endText = ended ? this.tok.decode([generated.at(-1)!], { skipSpecialTokens: false }) : "";
    this.pendingClosing = this.layout.closing.slice(endText.length);
    return content;
  }

  /** A tool result in the template's tool (or user) turn, then the next turn's generation prompt. */
  addToolResult(content: string): void {
    const before = render(this.tok, this.messages, false, this.opts);
    this.messages.push({ role: this.layout.toolRole, content });
    const delta = after(render(this.tok, this.messages, true, this.opts), before, "a tool turn");
    this.push(this.tok.encode(`${this.pendingClosing ?? ""}${delta}`, { addSpecialTokens: false }), 0);
    this.pendingClosing = null;
  }

  /** The policy's last tokens when it ended the whole conversation itself (the rollout-end token last). */
  addEnding(generated: readonly number[]): void {
    this.push(generated, 1);
    this.pendingClosing = null;
  }

  /** Ends the conversation as the template renders it (the last turn's closing, mask 0). */
  finish(): void {
    if (this.pendingClosing) this.push(this.tok.encode(this.pendingClosing, { addSpecialTokens: false }), 0);
    this.pendingClosing = null;
  }
}

/** A tool-using environment in chat form: it reads each assistant turn and answers with a tool result, or ends. */
export interface ChatEpisode<S = unknown> {
  /** the conversation before the first assistant turn (system, user). */
  readonly messages: ChatMessage[];
  readonly turns: number;
  readonly done: boolean;
  readonly solved: boolean;
  step(
    turn: string,
    info: { tokens: number },
  ): { done: true; reward: number } | { done: false; toolResult: string };
  cutShort(reason: CutShort): number;
  stats(): S;
}

/** The episode ends itself at its own turn limit; the rollout bounds tokens and context. */
export interface ChatRolloutOptions {
  /** policy tokens per episode (tool results do not count). */
  maxTokens: number;
  /** tokens one turn may use; default: the rest of the budget. */
  maxTurnTokens?: number;
  /** longest conversation, in tokens; default the model's context. */
  contextLength?: number;
  temperature: number;
  topP?: number;
  topK?: number;
  rng: Rng;
  template?: ChatTemplateOptions;
}

/** Samples turns with the KV-cached sampler, stopping a row at a turn end or the rollout end. */
export function chatTurnPolicy(model: DecoderModel, layout: ChatTemplateLayout): TurnPolicy {
  const stops = [...layout.turnEndIds, layout.rolloutEndId];
  return (contexts, req) => {
    const out = sample(model, contexts, {
      maxNewTokens: Math.max(...req.maxNewTokens),
      temperature: req.temperature,
      topP: req.topP,
      topK: req.topK,
      eosId: stops,
      rng: req.rng,
      rowDone: (row, ids) => ids.length >= req.maxNewTokens[row]!,
    });
    return { tokens: out.tokens, logprobs: out.logprobs };
  };
}

/**
 * Runs `count` chat episodes to the end, batching each turn over the unfinished ones; the
 * results have multiturn's shape (toRollout makes them the trainer's rollouts).
 */
export function runChatRollouts<S>(
  policy: DecoderModel | TurnPolicy,
  tok: ChatCodec,
  factory: (index: number) => ChatEpisode<S>,
  count: number,
  opts: ChatRolloutOptions,
): MultiTurnRollout<S>[] {
  const episodes = Array.from({ length: count }, (_, i) => factory(i));
  if (episodes.length === 0) return [];
  const layout = chatTemplateLayout(tok, episodes[0]!.messages, opts.template);
  const generate = typeof policy === "function" ? policy : chatTurnPolicy(policy, layout);
  const contextLength =
    opts.contextLength ?? (typeof policy === "function" ? Number.POSITIVE_INFINITY : policy.contextLength);
  const runs = episodes.map((episode) => ({
    episode,
    t: new ChatTranscript(tok, layout, episode.messages, opts.template),
    policyTokens: 0,
    toolTokens: 0,
    truncated: false,
    stoppedByEos: false,
    reward: null as number | null,
  }));
  for (const r of runs)
    if (r.t.ids.length >= contextLength)
      throw new Error(
        `chat rollout: the prompt has ${r.t.ids.length} tokens, the context is ${contextLength}`,
      );

  for (;;) {
    const active = runs.filter((r) => r.reward === null);
    if (active.length === 0) break;
    const turning: typeof runs = [];
    const limits: number[] = [];
    for (const r of active) {
      const limit = Math.min(
        opts.maxTokens - r.policyTokens,
        opts.maxTurnTokens ?? Number.POSITIVE_INFINITY,
        contextLength - r.t.ids.length,
      );
      if (limit >= 1) {
        turning.push(r);
        limits.push(limit);
      } else {
        r.truncated = true;
        r.reward = r.episode.cutShort("context_full");
      }
    }
    if (turning.length === 0) continue;
    const out = generate(
      turning.map((r) => r.t.ids),
      {
        maxNewTokens: limits,
        temperature: opts.temperature,
        topP: opts.topP,
        topK: opts.topK,
        stopTokenId: layout.turnEndIds[0]!,
        rng: opts.rng,
      },
    );
    turning.forEach((r, i) => {
      const generated = out.tokens[i]!.slice(0, limits[i]);
      const stop = generated.findIndex((id) => layout.turnEndIds.includes(id) || id === layout.rolloutEndId);
      const tokens = stop < 0 ? generated : generated.slice(0, stop + 1);
      if (stop >= 0 && tokens[stop] === layout.rolloutEndId) {
        // The policy ended the conversation itself: the rollout ends on that token.
        r.t.addEnding(tokens);
        r.policyTokens += tokens.length;
        r.stoppedByEos = true;
        r.reward = r.episode.cutShort("eos");
        return;
      }
      const text = r.t.addAssistant(tokens);
      r.policyTokens += tokens.length;
      const step = r.episode.step(text, { tokens: tokens.length });
      if (step.done) {
        r.reward = step.reward;
        return;
      }
      const before = r.t.ids.length;
      r.t.addToolResult(step.toolResult);
      r.toolTokens += r.t.ids.length - before;
      if (r.t.ids.length >= contextLength) {
        r.truncated = true;
        r.reward = r.episode.cutShort("context_full");
      }
    });
  }
  // A last tool result may run past the context: the model cannot score what it cannot see,
  // and the cut tokens are the environment's.
  const cut = (xs: number[]) => xs.slice(0, Math.min(xs.length, contextLength));
  return runs.map((r) => ({
    ids: cut(r.t.ids),
    policyMask: cut(r.t.mask),
    // The trainer recomputes log-probabilities; these episodes do not keep the sampler's.
    logprobs: cut(r.t.ids).map(() => 0),
    promptLength: r.t.promptLength,
    reward: r.reward!,
    success: r.episode.solved,
    stats: {
      turns: r.episode.turns,
      promptTokens: r.t.promptLength,
      policyTokens: r.policyTokens,
      toolTokens: r.toolTokens,
      truncated: r.truncated,
      stoppedByEos: r.stoppedByEos,
      episode: r.episode.stats(),
    },
  }));
}
