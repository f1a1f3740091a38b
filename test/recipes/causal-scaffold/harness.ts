/**
 * Shared pieces of the training-free flow tests: a scripted LLM that routes on the prompt's
 * task line, scaffolds with a known executed answer, and an engine wired to the real clients.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Rng } from "../../../src/core/rng.ts";
import { answerToNumber } from "../../../src/data/answers.ts";
import { loadDataset, loadDatasetConfig, type Problem } from "../../../src/data/datasets.ts";
import {
  AGENTS,
  type AgentEndpoint,
  type AgentName,
  createClients,
  type LLMClient,
} from "../../../src/llm/index.ts";
import {
  type CausalEngineOptions,
  CausalScaffoldEngine,
} from "../../../src/recipes/causal-scaffold/engine.ts";
import { ExperienceManager } from "../../../src/recipes/causal-scaffold/libraries.ts";
import type { ScriptedReply } from "../../helpers/scripted-server.ts";

export const EXAMPLE_DATASET_CONFIG = join(import.meta.dirname, "../../../examples/dataset_config.json");

export function exampleProblems(names: string[] = ["toy-math"]): Problem[] {
  return loadDataset(names, loadDatasetConfig(EXAMPLE_DATASET_CONFIG), EXAMPLE_DATASET_CONFIG);
}

export const MODEL_OF: Record<AgentName, string> = {
  generator_1: "model-g1",
  generator_2: "model-g2",
  generator_3: "model-g3",
  critic: "model-critic",
};

export function agentOfModel(model: string): AgentName {
  const hit = AGENTS.find((a) => MODEL_OF[a] === model);
  if (!hit) throw new Error(`unknown model ${model}`);
  return hit;
}

export type Task =
  | "scaffold"
  | "judge"
  | "answer_fallback"
  | "answer_equivalence"
  | "fusion"
  | "fusion_judge"
  | "summarise"
  | "extract";

const TASK_LINES: [string, Task][] = [
  ["TASK: CAUSAL SCAFFOLD", "scaffold"],
  ["TASK: LOGIC JUDGE", "judge"],
  ["TASK: ANSWER FROM SCAFFOLD", "answer_fallback"],
  ["TASK: ANSWER EQUIVALENCE", "answer_equivalence"],
  ["TASK: SCAFFOLD FUSION", "fusion"],
  ["TASK: FUSION JUDGE", "fusion_judge"],
  ["TASK: SUMMARISE ROLLOUT", "summarise"],
  ["TASK: EXTRACT EXPERIENCES", "extract"],
];

export function taskOf(prompt: string): Task {
  for (const [line, task] of TASK_LINES) if (prompt.startsWith(line)) return task;
  throw new Error(`prompt with unknown task: ${prompt.slice(0, 60)}`);
}

/** The problem whose text appears in the prompt (the longest match wins). */
export function problemIn(prompt: string, problems: readonly Problem[]): Problem {
  const hits = problems.filter((p) => prompt.includes(p.text)).sort((a, b) => b.text.length - a.text.length);
  if (hits.length === 0) throw new Error(`no known problem in prompt: ${prompt.slice(0, 120)}`);
  return hits[0]!;
}

/** A scaffold whose single rule executes to `value`. */
export function scaffoldFor(value: number): Record<string, unknown> {
  return {
    target_variable: "result",
    knowns: { given: value },
    causal_graph: [{ cause: ["given"], effect: "result", rule: "result = given" }],
    computation_plan: [{ id: "step1", target: "result", inputs: ["given"], description: "take the value" }],
  };
}

export function scaffoldReply(problem: Problem, correct: boolean): string {
  const truth = answerToNumber(problem.answer);
  if (truth === null) throw new Error(`non-numeric answer ${problem.answer}`);
  return `Here is the scaffold:\n\`\`\`json\n${JSON.stringify(scaffoldFor(correct ? truth : truth + 1))}\n\`\`\``;
}

export interface Workdir {
  dir: string;
  configPath: string;
  cleanup(): void;
}

/**
 * The scripted server answers at once, so a request that takes this long was starved of CPU
 * (a loaded machine), not slow: a test that means a timeout passes its own `timeoutMs`.
 */
const TEST_TIMEOUT_MS = 30_000;

/** A temp working directory with an API config pointing every agent at `baseURL`. */
export function makeWorkdir(
  baseURL: string,
  opts: { maxRetries?: number; timeoutMs?: number; concurrency?: number } = {},
): Workdir {
  const dir = mkdtempSync(join(tmpdir(), "causal-scaffold-"));
  const configPath = join(dir, "api_config.json");
  const agents: Record<string, { model: string }> = {};
  for (const a of AGENTS) agents[a] = { model: MODEL_OF[a] };
  writeFileSync(
    configPath,
    JSON.stringify({
      default: {
        base_url: baseURL,
        api_key: "test-key",
        max_retries: opts.maxRetries ?? 2,
        timeout_ms: opts.timeoutMs ?? TEST_TIMEOUT_MS,
        max_concurrency: opts.concurrency ?? 8,
      },
      agents,
    }),
  );
  return { dir, configPath, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function endpoints(
  baseURL: string,
  opts: { maxRetries?: number; timeoutMs?: number; concurrency?: number } = {},
): Record<AgentName, AgentEndpoint> {
  const out = {} as Record<AgentName, AgentEndpoint>;
  for (const a of AGENTS) {
    out[a] = {
      agent: a,
      baseURL,
      model: MODEL_OF[a],
      apiKey: "test-key",
      maxConcurrency: opts.concurrency ?? 8,
      timeoutMs: opts.timeoutMs ?? TEST_TIMEOUT_MS,
      maxRetries: opts.maxRetries ?? 2,
    };
  }
  return out;
}

export function makeEngine(
  baseURL: string,
  workdir: string,
  opts: { maxRetries?: number; timeoutMs?: number; concurrency?: number } & Partial<CausalEngineOptions> = {},
): { engine: CausalScaffoldEngine; clients: Record<AgentName, LLMClient>; experiences: ExperienceManager } {
  const clients = createClients(endpoints(baseURL, opts), {
    baseBackoffMs: 2,
    maxBackoffMs: 10,
    rng: new Rng(7),
  });
  const engine = new CausalScaffoldEngine({ clients, workdir, concurrency: opts.concurrency ?? 8, ...opts });
  return { engine, clients, experiences: new ExperienceManager({ workdir }) };
}

export function ok(content: string): ScriptedReply {
  return { content };
}

export const JUDGE_REPLY = JSON.stringify({ validity: 0.8, completeness: 0.8, rigor: 0.8, overall: 0.8 });
