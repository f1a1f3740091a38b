import { answersEquivalent, extractAnswer } from "../../data/answers.ts";
import { errorText, userMessage } from "../../llm/messages.ts";
import type { ChatClient } from "../../llm/port.ts";
import { executeScaffold } from "./execute.ts";
import { graphReward } from "./graph-reward.ts";
import type { PromptSet } from "./prompts.ts";
import { parseEquivalence, parseLogicJudge } from "./rewards.ts";
import type { Scaffold } from "./scaffold.ts";

export interface ProblemRef {
  id: string;
  text: string;
  answer: string;
  source?: string;
}

/** Executor values as answer text: near-integers as integers, so "33.0000000001" compares as 33. */
export function formatValue(v: number): string {
  const r = Math.round(v);
  if (Math.abs(v - r) <= 1e-9 * Math.max(1, Math.abs(v))) return String(r);
  return String(Number(v.toPrecision(12)));
}

export interface ScaffoldAnswer {
  answer: string | null;
  /** "executed" when the scaffold's rules computed it, "llm" when the fallback prompt did. */
  via: "executed" | "llm" | "none";
  error?: string;
}

/**
 * The scaffold's own answer when its rules execute; otherwise one short LLM call that follows
 * the plan. A failed fallback leaves the answer null (the rollout is then simply wrong).
 */
export async function answerFromScaffold(
  client: ChatClient,
  prompts: PromptSet,
  problem: ProblemRef,
  scaffold: Scaffold,
): Promise<ScaffoldAnswer> {
  let execError: string | undefined;
  try {
    const run = executeScaffold(scaffold);
    if (run.value !== null && Number.isFinite(run.value))
      return { answer: formatValue(run.value), via: "executed" };
    execError = run.error;
  } catch (err) {
    execError = errorText(err);
  }
  const prompt = prompts.render("answer_fallback", {
    problem: problem.text,
    scaffold: JSON.stringify(scaffold),
  });
  try {
    const r = await client.chat(userMessage(prompt), {
      temperature: 0,
      parse: (text) => {
        const a = extractAnswer(text);
        if (a === null) throw new Error("answer fallback: reply holds no answer");
        return a;
      },
    });
    return { answer: r.value, via: "llm" };
  } catch (err) {
    return {
      answer: null,
      via: "none",
      error: `answer fallback failed: ${errorText(err)}${execError ? `; executor: ${execError}` : ""}`,
    };
  }
}

export interface ScoreOptions {
  /** Ask the LLM when the deterministic comparison says "different" (off by default). */
  llmEquivalence?: boolean;
}

/** 1 when equivalent to the ground truth, deterministic comparison first. */
export async function answerReward(
  client: ChatClient,
  prompts: PromptSet,
  problem: ProblemRef,
  answer: string | null,
  opts: ScoreOptions = {},
): Promise<number> {
  if (answer === null) return 0;
  if (answersEquivalent(answer, problem.answer)) return 1;
  if (!opts.llmEquivalence) return 0;
  const prompt = prompts.render("answer_equivalence", {
    problem: problem.text,
    answer,
    ground_truth: problem.answer,
  });
  try {
    const r = await client.chat(userMessage(prompt), { temperature: 0, parse: parseEquivalence });
    return r.value ? 1 : 0;
  } catch {
    // An undecidable comparison counts as wrong rather than stopping the run.
    return 0;
  }
}

export interface JudgedScaffold {
  answer: string | null;
  answerVia: ScaffoldAnswer["via"];
  r_ans: number;
  r_logic: number;
  r_graph: number;
  /** Problems that did not stop scoring but are worth recording (failed judge, failed fallback). */
  notes: string[];
}

/** Answer, r_ans, r_logic (judge) and r_graph of one parsed scaffold. */
export async function judgeScaffold(
  client: ChatClient,
  prompts: PromptSet,
  problem: ProblemRef,
  scaffold: Scaffold,
  opts: ScoreOptions = {},
): Promise<JudgedScaffold> {
  const notes: string[] = [];
  const judgePrompt = prompts.render("judge", {
    problem: problem.text,
    scaffold: JSON.stringify(scaffold, null, 1),
  });
  const [ans, logic] = await Promise.all([
    answerFromScaffold(client, prompts, problem, scaffold),
    client
      .chat(userMessage(judgePrompt), { temperature: 0, parse: parseLogicJudge })
      .then((r) => r.value)
      .catch((err: unknown) => {
        notes.push(`logic judge failed: ${errorText(err)}`);
        return 0;
      }),
  ]);
  if (ans.error) notes.push(ans.error);
  const r_ans = await answerReward(client, prompts, problem, ans.answer, opts);
  let r_graph = 0;
  try {
    r_graph = graphReward(scaffold).total;
  } catch (err) {
    notes.push(`r_graph failed: ${errorText(err)}`);
  }
  return { answer: ans.answer, answerVia: ans.via, r_ans, r_logic: logic, r_graph, notes };
}
