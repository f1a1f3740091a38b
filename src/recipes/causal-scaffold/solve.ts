import { answersEquivalent, extractAnswer } from "../../data/answers.ts";
import { errorText, userMessage } from "../../llm/messages.ts";
import type { ChatClient, JsonReplySchema } from "../../llm/port.ts";
import { executeScaffold } from "./execute.ts";
import { graphReward } from "./graph-reward.ts";
import type { PromptSet } from "./prompts.ts";
import { EQUIVALENCE_JSON, LOGIC_JUDGE_JSON, parseEquivalence, parseLogicJudge } from "./rewards.ts";
import type { Scaffold } from "./scaffold.ts";
import { parseScaffold } from "./scaffold-parse.ts";

/**
 * The parser of a reply that must hold a scaffold (`what`: "scaffold", "fused scaffold"); a
 * reply without one throws, so the client asks again within its retry budget.
 */
export function scaffoldReplyParser(what: string): (text: string) => Scaffold {
  return (text) => {
    const p = parseScaffold(text);
    if (!p.ok) throw new Error(`unparseable ${what}: ${p.error}; reply began: ${text.slice(0, 120)}`);
    return p.scaffold;
  };
}

/** One scaffold request (a generator's scaffold, the critic's fusion); a reply without a scaffold is asked again. */
export async function requestScaffold(
  client: ChatClient,
  prompt: string,
  opts: { what: string; temperature: number; signal?: AbortSignal },
): Promise<Scaffold> {
  const r = await client.chat(userMessage(prompt), {
    temperature: opts.temperature,
    parse: scaffoldReplyParser(opts.what),
    signal: opts.signal,
  });
  return r.value;
}

/**
 * One judge's verdict at temperature 0, parsed by `parse`; a judge that fails after the client's
 * retries fails the score, its message naming the judge (`what`: "logic judge", "fusion judge").
 */
export async function askJudge<T>(
  client: ChatClient,
  prompt: string,
  opts: { what: string; parse: (text: string) => T; json: JsonReplySchema; signal?: AbortSignal },
): Promise<T> {
  try {
    const r = await client.chat(userMessage(prompt), {
      temperature: 0,
      parse: opts.parse,
      json: opts.json,
      signal: opts.signal,
    });
    return r.value;
  } catch (err) {
    throw new Error(`${opts.what} failed: ${errorText(err)}`, { cause: err });
  }
}

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
 * the plan. A reply without an answer is a wrong answer (null); a call that fails after its
 * retries throws, so that the rollout is recorded as failed rather than as wrong.
 */
export async function answerFromScaffold(
  client: ChatClient,
  prompts: PromptSet,
  problem: ProblemRef,
  scaffold: Scaffold,
  signal?: AbortSignal,
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
  const r = await client.chat(userMessage(prompt), { temperature: 0, signal });
  const answer = extractAnswer(r.text);
  if (answer !== null) return { answer, via: "llm" };
  return {
    answer: null,
    via: "none",
    error: `answer fallback: reply holds no answer${execError ? `; executor: ${execError}` : ""}`,
  };
}

export interface ScoreOptions {
  /** Ask the LLM when the deterministic comparison says "different" (off by default). */
  llmEquivalence?: boolean;
  signal?: AbortSignal;
}

/**
 * 1 when equivalent to the ground truth, deterministic comparison first. A failed LLM
 * comparison throws: an undecided answer is not a wrong one.
 */
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
  const r = await client.chat(userMessage(prompt), {
    temperature: 0,
    parse: parseEquivalence,
    json: EQUIVALENCE_JSON,
    signal: opts.signal,
  });
  return r.value ? 1 : 0;
}

export interface JudgedScaffold {
  answer: string | null;
  answerVia: ScaffoldAnswer["via"];
  r_ans: number;
  r_logic: number;
  r_graph: number;
  /** What did not spoil the scores but is worth recording (an answer fallback without an answer). */
  notes: string[];
}

/**
 * Answer, r_ans, r_logic (judge) and r_graph of one parsed scaffold. Throws when a call fails
 * after its retries: a judge that could not judge is no score of 0.
 */
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
    answerFromScaffold(client, prompts, problem, scaffold, opts.signal),
    askJudge(client, judgePrompt, {
      what: "logic judge",
      parse: parseLogicJudge,
      json: LOGIC_JUDGE_JSON,
      signal: opts.signal,
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
