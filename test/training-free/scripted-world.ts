/**
 * A small world for the generic training-free tests: addition questions, an agent that asks the
 * scripted server through the real `openai` SDK with the lessons in its system prompt, a checker,
 * and helpers that read which learner step a request is. The server decides the agent's answer
 * from the request alone (question, seed, lessons), so every run of the same arguments asks the
 * same questions and gets the same replies.
 */
import OpenAI from "openai";
import type { ChatMessage } from "../../src/llm/port.ts";
import type { Attempt, RolloutContext } from "../../src/training-free/types.ts";
import type { ScriptedReply } from "../helpers/scripted-server.ts";

export interface SumTask {
  id: string;
  question: string;
  answer: string;
}

export function sumTasks(n: number): SumTask[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `t${i + 1}`,
    question: `What is ${i + 11} plus ${2 * i + 5}?`,
    answer: String(i + 11 + 2 * i + 5),
  }));
}

export const AGENT_MODEL = "agent-model";
export const LEARNER_MODEL = "learner-model";

export type LearnerStep = "summarise" | "contrast" | "propose" | "merge" | "extract";

/** Which step of the default learner prompts a request is. */
export function learnerStep(messages: readonly ChatMessage[]): LearnerStep {
  const sys = messages[0]?.content ?? "";
  if (sys.includes("write a compact account")) return "summarise";
  if (sys.includes("<lessons>")) return "contrast";
  if (sys.includes("keep the agent's lesson library useful")) return "propose";
  if (sys.includes("operations proposed on a batch of tasks")) return "merge";
  if (sys.includes("JSON list of operations only")) return "extract";
  throw new Error(`not a learner request: ${sys.slice(0, 80)}`);
}

/** The agent: one chat call with the lessons in the system prompt and the attempt's seed. */
export function sumAgent(baseURL: string) {
  const client = new OpenAI({ baseURL, apiKey: "test", maxRetries: 0 });
  return async (task: SumTask, ctx: RolloutContext): Promise<Attempt<string>> => {
    const completion = await client.chat.completions.create(
      {
        model: AGENT_MODEL,
        seed: ctx.seed,
        temperature: 0.7,
        messages: [
          { role: "system", content: `Answer with a number.\nLessons:\n${ctx.experiences.text}` },
          { role: "user", content: task.question },
        ],
      },
      { signal: ctx.signal },
    );
    const text = completion.choices[0]?.message.content ?? "";
    return { output: text, trajectory: `reply: ${text}`, usage: completion.usage };
  };
}

export function checkSum(task: SumTask, attempt: Attempt<string>): { score: number; correct: boolean } {
  const correct = attempt.output.trim() === task.answer;
  return { score: correct ? 1 : 0, correct };
}

/**
 * The agent's reply: right when `right(question, seed, system)` says so, else one too many.
 * `right` decides from the request only.
 */
export function agentReply(
  body: { seed?: number; messages: ChatMessage[] },
  right: (question: string, seed: number, system: string) => boolean,
): ScriptedReply {
  const question = body.messages[1]!.content;
  const m = /What is (\d+) plus (\d+)\?/.exec(question)!;
  const sum = Number(m[1]) + Number(m[2]);
  return { content: String(right(question, body.seed ?? 0, body.messages[0]!.content) ? sum : sum + 1) };
}
