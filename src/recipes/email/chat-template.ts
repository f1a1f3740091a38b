/**
 * The email agent on a pretrained chat model (`grpo train email --base-model <Hugging Face model
 * directory>`): the question and the tool instructions go in a user turn, each tool call is an
 * assistant turn, each tool result comes back in the template's tool turn (a user turn when the
 * template has none), all rendered by the model's own chat template, with the loss on the
 * assistant's sampled tokens only (src/rl/chat-episode.ts). LoRA adapters are trained over the
 * model, which stays where it is: checkpoints hold the PEFT adapter pointing to its directory.
 * There is no warm start: the pretrained model is the start.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { Rng } from "../../core/rng.ts";
import { readJsonFile } from "../../io/files.ts";
import type { CausalLM } from "../../model/causal-lm.ts";
import { isGptConfig } from "../../model/gpt-files.ts";
import { readArchConfig } from "../../model/hf/config.ts";
import { HF_LORA_TARGETS, PretrainedLM } from "../../model/hf/model.ts";
import { HFTokenizer } from "../../model/hf/tokenizer.ts";
import { loadModel } from "../../model/safetensors.ts";
import { sample } from "../../model/sampler.ts";
import {
  type ChatCodec,
  type ChatEpisode,
  chatTemplateLayout,
  runChatRollouts,
} from "../../rl/chat-episode.ts";
import { toRollout } from "../../rl/multiturn.ts";
import { resumeOrStartTrainer } from "../../rl/prepare.ts";
import type { GrpoTrainer } from "../../rl/trainer.ts";
import type { EpisodeRequest, RlTask, Rollout } from "../../rl/types.ts";
import { EmailEpisode, type EpisodeStats } from "./episode.ts";
import { generateDataset } from "./inbox.ts";
import { EMAIL_INBOX, type EmailMode, type EmailRunOptions, RUN_INFO_INBOX } from "./presets.ts";
import { firstCallReward } from "./rl-task.ts";
import { type EmailRunHooks, emailTrainerConfig } from "./run.ts";
import { emailTurns } from "./turns.ts";
import type { Question } from "./types.ts";

/** Episodes longer than this are cut, whatever the model's context (memory of a training step). */
export const CHAT_EPISODE_CONTEXT = 2048;

/** Whether `dir` holds a Hugging Face model (rather than the recipe's own GPT checkpoint). */
export function isPretrainedModelDir(dir: string): boolean {
  const file = join(dir, "config.json");
  if (!existsSync(file)) return false;
  const cfg = readJsonFile(file);
  return typeof cfg === "object" && cfg !== null && !isGptConfig(cfg as Record<string, unknown>);
}

/** The email episode in chat form: the prompt as a user turn, the tool results raw. */
export function emailChatEpisode(episode: EmailEpisode): ChatEpisode<EpisodeStats> {
  const turns = emailTurns(episode);
  return {
    messages: [{ role: "user", content: episode.prompt }],
    get turns() {
      return turns.turns;
    },
    get done() {
      return turns.done;
    },
    get solved() {
      return turns.solved;
    },
    step(turn, info) {
      const s = episode.step(turn, info);
      if (s.done) return { done: true, reward: s.reward ?? episode.finalReward() };
      return { done: false, toolResult: s.toolResult ?? "" };
    },
    cutShort: (reason) => turns.cutShort(reason),
    stats: () => turns.stats(),
  };
}

export interface EmailChatTaskOptions {
  mode: EmailMode;
  trainSize: number;
  evalSize: number;
  seed: number;
  maxTurns: number;
  maxTokens: number;
  maxTurnTokens: number;
  contextLength: number;
  tokenizer: ChatCodec;
  /** episodes sampled together. */
  batchEpisodes?: number;
}

/** The email task over a chat model: the same inboxes, questions and rewards as the recipe's own. */
export function emailChatTask(o: EmailChatTaskOptions): RlTask {
  const tok = o.tokenizer;
  const dataset = generateDataset(new Rng(o.seed), {
    trainSize: o.trainSize,
    evalSize: o.evalSize,
    ...EMAIL_INBOX,
  });
  const episode = (q: Question) =>
    new EmailEpisode(dataset.inboxes.get(q.inboxId)!, q, {
      maxTurns: o.maxTurns,
      maxTokens: o.maxTokens,
      instructions: true,
      compact: true,
    });
  const probe = emailChatEpisode(episode(dataset.train[0]!)).messages;
  const layout = chatTemplateLayout(tok, probe);
  const chunk = o.batchEpisodes ?? 8;

  function rollouts(policy: CausalLM, questions: Question[], G: number, req: EpisodeRequest): Rollout[] {
    const all = questions.flatMap((q, k) => Array.from({ length: G }, () => ({ q, k })));
    const out: Rollout[] = [];
    for (let start = 0; start < all.length; start += chunk) {
      const part = all.slice(start, start + chunk);
      if (o.mode === "simple") {
        // The first tool call alone, scored by its proxy (see rl-task.ts).
        const prompts = part.map((p) =>
          tok.encode(
            tok.applyChatTemplate(emailChatEpisode(episode(p.q)).messages, { addGenerationPrompt: true }),
            {
              addSpecialTokens: false,
            },
          ),
        );
        const res = sample(policy, prompts, {
          maxNewTokens: o.maxTurnTokens,
          temperature: req.temperature,
          topP: req.topP,
          topK: req.topK,
          eosId: [...layout.turnEndIds, layout.rolloutEndId],
          rng: req.rng,
        });
        part.forEach((p, i) => {
          const ids = res.tokens[i]!;
          const own = layout.turnEndIds.includes(ids.at(-1)!) ? ids.slice(0, -1) : ids;
          const r = firstCallReward(tok.decode(own, { skipSpecialTokens: true }), p.q);
          out.push({
            group: p.k,
            prompt: prompts[i]!,
            tokens: ids,
            finished: res.finished[i]!,
            reward: r.total,
            success: r.success,
          });
        });
        continue;
      }
      const rs = runChatRollouts(policy, tok, (i) => emailChatEpisode(episode(part[i]!.q)), part.length, {
        maxTokens: o.maxTokens,
        maxTurnTokens: o.maxTurnTokens,
        contextLength: o.contextLength,
        temperature: req.temperature,
        ...(req.topP === undefined ? {} : { topP: req.topP }),
        ...(req.topK === undefined ? {} : { topK: req.topK }),
        rng: req.rng,
      });
      rs.forEach((r, i) => {
        const t = toRollout(r, part[i]!.k);
        // rollout mode: the template's and the tools' tokens are trained too.
        out.push(o.mode === "rollout" ? { ...t, toolMask: undefined } : t);
      });
    }
    return out;
  }

  const noPrompts = () => {
    throw new Error("email chat task: prompts come with its rollouts");
  };
  return {
    name: `email-${o.mode}-chat`,
    // Never inside an episode: the mask may stop at it (see chatTemplateLayout).
    eosId: layout.rolloutEndId,
    trainPrompts: noPrompts,
    evalPrompts: noPrompts,
    reward: () => {
      throw new Error("email chat task: rewards come with its rollouts");
    },
    rollouts(policy, req) {
      const questions =
        req.split === "eval"
          ? dataset.eval
          : Array.from({ length: req.count }, () => req.rng.pick(dataset.train));
      return rollouts(policy, questions, req.numGenerations, req);
    },
    describe: (tokens) => tok.decode(tokens, { skipSpecialTokens: false }).slice(0, 4000),
  };
}

/**
 * The trainer of `grpo train email --base-model <Hugging Face model directory>`: LoRA (rank
 * --lora-rank, alpha 2·rank, every projection) over the model, its chat template for the
 * episodes; resumes like the recipe's own runs.
 */
export async function prepareEmailChatTrainer(
  o: EmailRunOptions,
  hooks: EmailRunHooks,
): Promise<{ trainer: GrpoTrainer<CausalLM> }> {
  const baseDir = resolve(o.baseModel!);
  const tokenizer = HFTokenizer.load(baseDir);
  if (!tokenizer.hasChatTemplate)
    throw new Error(
      `${join(baseDir, "tokenizer_config.json")}: no chat template; --base-model needs an instruct (chat) model`,
    );
  const model = (): CausalLM => {
    const m = loadModel(baseDir, { rng: new Rng(o.seed ^ 0xe3a1) });
    if (!(m instanceof PretrainedLM)) {
      m.dispose();
      throw new Error(`${join(baseDir, "config.json")}: expected a Hugging Face causal LM`);
    }
    m.enableLoRA(
      { r: o.loraRank, alpha: 2 * o.loraRank, targetModules: [...HF_LORA_TARGETS[m.spec.family]] },
      new Rng(o.seed ^ 0x10a),
    );
    return m;
  };
  const task = emailChatTask({
    mode: o.mode,
    trainSize: o.trainDatasetSize,
    evalSize: o.evalDatasetSize,
    seed: o.seed,
    maxTurns: o.maxTurns,
    maxTokens: o.maxTokens,
    maxTurnTokens: o.maxTurnTokens,
    contextLength: Math.min(readArchConfig(baseDir).contextLength, CHAT_EPISODE_CONTEXT),
    tokenizer,
  });
  const runInfo = {
    recipe: "email",
    mode: o.mode,
    base_model: baseDir,
    chat_template: true,
    [RUN_INFO_INBOX]: EMAIL_INBOX,
    max_turns: o.maxTurns,
    max_tokens: o.maxTokens,
    max_turn_tokens: o.maxTurnTokens,
    lora_rank: o.loraRank,
  };
  hooks.log(`starting from the pretrained model ${baseDir} (its chat template; no warm start)`);
  const trainer = await resumeOrStartTrainer<CausalLM>(
    {
      task,
      config: emailTrainerConfig(o),
      outputDir: o.outputDir,
      resume: o.resume,
      runInfo,
      baseModelDir: baseDir,
    },
    hooks,
    model,
  );
  return { trainer };
}
