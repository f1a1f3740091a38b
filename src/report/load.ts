/**
 * Read a run directory (parametric or training-free) into plain data for the report. Nothing
 * here throws on a bad or missing file: each one becomes a `FileProblem` the page lists, so a
 * run that is still being written or was killed mid-line still gets a report.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";
import { readJsonl } from "../io/files.ts";
import { errorText } from "../llm/messages.ts";
import { LIBRARY_OWNERS, libraryIdentity, libraryPath } from "../recipes/causal-scaffold/libraries.ts";
import {
  cacheDir,
  criticResultsPath,
  generatorCachePath,
  runSummaryPath,
} from "../recipes/causal-scaffold/paths.ts";
import {
  type CriticRecord,
  isCompleteRecord,
  isFailedFusion,
  isFailedRollout,
  type ProblemRecord,
  readCriticResults,
  readRolloutCache,
} from "../recipes/causal-scaffold/rollout-cache.ts";
import { type RunSummary, summarizeRuns } from "../recipes/causal-scaffold/usage-log.ts";
import { ExperienceLibrary, type HistoryEntry } from "../training-free/experience-library.ts";
import type { Point } from "./svg.ts";
import { loadTheoriesFound } from "./theories.ts";

export interface FileProblem {
  /** path relative to the run directory */
  file: string;
  reason: string;
}

export interface SampleCompletion {
  text: string;
  reward: number;
}

export interface SampleRow {
  step: number;
  best: SampleCompletion;
  worst: SampleCompletion;
  groupSize: number;
}

export interface CheckpointInfo {
  name: string;
  metadata?: Record<string, unknown>;
}

export interface ParametricRun {
  /** numeric series by history key, each point (step, value), in file order */
  series: Map<string, Point[]>;
  steps: number;
  trainingStats?: Record<string, unknown>;
  best?: Record<string, unknown>;
  final?: Record<string, unknown>;
  checkpoints: CheckpointInfo[];
  config?: unknown;
  samples: SampleRow[];
  /** a theory run's archive of valid theories (theories.json) */
  theories?: ReturnType<typeof loadTheoriesFound>;
}

export interface AgentProblemStat {
  problemId: string;
  mean: number;
  std: number;
  /** fraction of the rollouts that are correct */
  correct: number;
  rollouts: number;
}

/** What failed: not results, so left out of the statistics, and redone by a rerun. */
export interface AgentFailures {
  /** Problems with a failed rollout (a generator) or fusion (the critic). */
  problems: number;
  /** Failed rollouts or fusions. */
  items: number;
  /** Those by cause (rate_limit, schema, auth, …; "unknown" in files that did not record one). */
  byCause: Record<string, number>;
}

export interface AgentRun {
  agent: string;
  /** Statistics of the complete problems only. */
  problems: AgentProblemStat[];
  failures: AgentFailures;
}

export interface LibraryRun {
  owner: string;
  entries: { id: string; content: string; category: string; source_problem: string }[];
  history: HistoryEntry[];
  /** size after each problem that changed the library, x = 1-based order of those problems */
  sizeOverTime: Point[];
}

export interface TrainingFreeRun {
  agents: AgentRun[];
  libraries: LibraryRun[];
  runSummary?: RunSummary;
  evalResult?: Record<string, unknown>;
}

export interface RunData {
  name: string;
  dir: string;
  parametric?: ParametricRun;
  trainingFree?: TrainingFreeRun;
  problems: FileProblem[];
}

const EVAL_FILE = join("grpo_training", "tf_eval_results.json");

function rel(dir: string, path: string): string {
  return relative(dir, path) || basename(path);
}

/** JSON object file, or undefined with a problem recorded (missing files only when `required`). */
function readJsonObject(
  dir: string,
  path: string,
  problems: FileProblem[],
  required: boolean,
): Record<string, unknown> | undefined {
  if (!existsSync(path)) {
    if (required) problems.push({ file: rel(dir, path), reason: "missing" });
    return undefined;
  }
  const text = readFileSync(path, "utf8");
  if (text.trim() === "") {
    problems.push({ file: rel(dir, path), reason: "empty file" });
    return undefined;
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
    problems.push({ file: rel(dir, path), reason: "expected a JSON object" });
  } catch (err) {
    problems.push({ file: rel(dir, path), reason: `invalid JSON: ${errorText(err)}` });
  }
  return undefined;
}

/**
 * JSONL records, tolerating what a crash leaves behind: a torn last line is skipped (readJsonl),
 * and any other unparsable line is skipped with its line number reported rather than failing.
 */
export function readJsonlLenient(dir: string, path: string, problems: FileProblem[]): unknown[] {
  const file = rel(dir, path);
  if (!existsSync(path)) {
    problems.push({ file, reason: "missing" });
    return [];
  }
  try {
    const { records, torn } = readJsonl(path);
    if (torn) problems.push({ file, reason: "last line is truncated (torn write); it was skipped" });
    if (records.length === 0) problems.push({ file, reason: torn ? "no complete line" : "empty file" });
    return records.map((r) => r.value);
  } catch {
    const out: unknown[] = [];
    const bad: number[] = [];
    readFileSync(path, "utf8")
      .split("\n")
      .forEach((raw, i) => {
        if (raw.trim() === "") return;
        try {
          out.push(JSON.parse(raw));
        } catch {
          bad.push(i + 1);
        }
      });
    problems.push({ file, reason: `invalid JSON on line(s) ${bad.join(", ")}; those lines were skipped` });
    return out;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

function toSample(v: unknown): SampleCompletion | undefined {
  if (!isRecord(v)) return undefined;
  const text = v.text ?? v.completion ?? v.content;
  const reward = v.reward;
  if (typeof text !== "string" || typeof reward !== "number" || !Number.isFinite(reward)) return undefined;
  return { text, reward };
}

/**
 * Sample completions of one step: `{step, completions: [{text|completion, reward}]}` (a whole
 * group, best and worst picked here) or `{step, best: {...}, worst: {...}}`.
 */
function sampleRow(v: unknown): SampleRow | undefined {
  if (!isRecord(v) || typeof v.step !== "number") return undefined;
  const group = Array.isArray(v.completions) ? v.completions : Array.isArray(v.samples) ? v.samples : null;
  if (group) {
    const items = group.map(toSample).filter((s): s is SampleCompletion => s !== undefined);
    if (items.length === 0) return undefined;
    let best = items[0]!;
    let worst = items[0]!;
    for (const s of items) {
      if (s.reward > best.reward) best = s;
      if (s.reward < worst.reward) worst = s;
    }
    return { step: v.step, best, worst, groupSize: items.length };
  }
  const best = toSample(v.best);
  const worst = toSample(v.worst);
  if (best && worst) return { step: v.step, best, worst, groupSize: 2 };
  return undefined;
}

function loadParametric(dir: string, problems: FileProblem[]): ParametricRun {
  const lines = readJsonlLenient(dir, join(dir, "history.jsonl"), problems);
  const series = new Map<string, Point[]>();
  const samples: SampleRow[] = [];
  let steps = 0;
  lines.forEach((line, i) => {
    if (!isRecord(line)) return;
    const step = typeof line.step === "number" && Number.isFinite(line.step) ? line.step : i + 1;
    steps = Math.max(steps, step);
    for (const [key, value] of Object.entries(line)) {
      if (key === "step" || typeof value !== "number" || !Number.isFinite(value)) continue;
      let s = series.get(key);
      if (!s) {
        s = [];
        series.set(key, s);
      }
      s.push({ x: step, y: value });
    }
    if (Array.isArray(line.samples)) {
      const row = sampleRow({ step, completions: line.samples });
      if (row) samples.push(row);
    }
  });
  if (existsSync(join(dir, "samples.jsonl"))) {
    for (const v of readJsonlLenient(dir, join(dir, "samples.jsonl"), problems)) {
      const row = sampleRow(v);
      if (row) samples.push(row);
    }
  }
  const trainingStats = readJsonObject(dir, join(dir, "training_stats.json"), problems, true);
  const best = readJsonObject(dir, join(dir, "best_model", "metadata.json"), problems, false);
  const final = readJsonObject(dir, join(dir, "final", "metadata.json"), problems, true);
  const checkpoints: CheckpointInfo[] = readdirSync(dir)
    .filter((n) => /^checkpoint-\d+$/.test(n) && statSync(join(dir, n)).isDirectory())
    .sort((a, b) => Number(a.slice(11)) - Number(b.slice(11)))
    .map((name) => ({
      name,
      metadata: readJsonObject(dir, join(dir, name, "metadata.json"), problems, true),
    }));
  const config =
    trainingStats?.config ?? final?.config ?? best?.config ?? checkpoints.at(-1)?.metadata?.config;
  const theories = loadTheoriesFound(dir, (file, reason) => problems.push({ file, reason }));
  return { series, steps, trainingStats, best, final, checkpoints, config, samples, theories };
}

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

function popStd(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length);
}

/** μ and σ (population, as the trainer logs them) of a group of rewards, and its correctness. */
export function groupStat(
  problemId: string,
  rewards: readonly number[],
  correct: readonly boolean[],
): AgentProblemStat {
  return {
    problemId,
    mean: mean(rewards),
    std: popStd(rewards),
    correct: correct.length === 0 ? Number.NaN : correct.filter(Boolean).length / correct.length,
    rollouts: rewards.length,
  };
}

function countCause(into: AgentFailures, kind: string | undefined): void {
  into.items++;
  const k = kind ?? "unknown";
  into.byCause[k] = (into.byCause[k] ?? 0) + 1;
}

function generatorRun(agent: string, records: Iterable<ProblemRecord>): AgentRun {
  const failures: AgentFailures = { problems: 0, items: 0, byCause: {} };
  const problems: AgentProblemStat[] = [];
  for (const r of records) {
    if (!isCompleteRecord(r, { learn: false })) {
      failures.problems++;
      for (const x of r.rollouts) if (isFailedRollout(x)) countCause(failures, x.error_kind);
      continue;
    }
    problems.push(
      groupStat(
        r.problem_id,
        r.rollouts.map((x) => x.r_total),
        r.rollouts.map((x) => x.is_correct),
      ),
    );
  }
  return { agent, problems, failures };
}

/** The critic fuses each generator separately; per problem, its group is those fusions. */
function criticRun(records: readonly CriticRecord[]): AgentRun {
  const byProblem = new Map<string, CriticRecord[]>();
  for (const r of records) {
    const list = byProblem.get(r.problem_id) ?? [];
    list.push(r);
    byProblem.set(r.problem_id, list);
  }
  const failures: AgentFailures = { problems: 0, items: 0, byCause: {} };
  const problems: AgentProblemStat[] = [];
  for (const [id, list] of byProblem) {
    const failed = list.filter(isFailedFusion);
    if (failed.length > 0) {
      failures.problems++;
      for (const f of failed) countCause(failures, f.error_kind);
      continue;
    }
    problems.push(
      groupStat(
        id,
        list.map((r) => r.r_total),
        list.map((r) => r.is_correct),
      ),
    );
  }
  return { agent: "critic", problems, failures };
}

/** Library size after each problem that changed it, replaying the operation history in order. */
export function librarySizeOverTime(history: readonly HistoryEntry[]): Point[] {
  const points: Point[] = [];
  let size = 0;
  let lastProblem: string | undefined;
  for (const h of history) {
    if (h.action === "added") size++;
    else if (h.action === "deleted") size--;
    else continue;
    if (h.problem_id === lastProblem && points.length > 0) points[points.length - 1]!.y = size;
    else points.push({ x: points.length + 1, y: size });
    lastProblem = h.problem_id;
  }
  return points;
}

function loadTrainingFree(dir: string, problems: FileProblem[]): TrainingFreeRun {
  const cache = cacheDir(dir);
  const agents: AgentRun[] = [];
  for (const id of [1, 2, 3] as const) {
    const path = generatorCachePath(cache, id);
    const file = rel(dir, path);
    if (!existsSync(path)) {
      problems.push({ file, reason: "missing" });
      continue;
    }
    try {
      const { problems: recs, torn } = readRolloutCache(path);
      if (torn) problems.push({ file, reason: "last line is truncated (torn write); it was skipped" });
      if (recs.size === 0) problems.push({ file, reason: "no problem records" });
      agents.push(generatorRun(`generator_${id}`, recs.values()));
    } catch (err) {
      problems.push({ file, reason: errorText(err) });
    }
  }
  const criticPath = criticResultsPath(cache);
  if (!existsSync(criticPath)) problems.push({ file: rel(dir, criticPath), reason: "missing" });
  else {
    try {
      const recs = readCriticResults(criticPath);
      const raw = readFileSync(criticPath, "utf8");
      if (raw.length > 0 && !raw.endsWith("\n")) {
        problems.push({
          file: rel(dir, criticPath),
          reason: "last line is truncated (torn write); it was skipped",
        });
      }
      agents.push(criticRun(recs));
    } catch (err) {
      problems.push({ file: rel(dir, criticPath), reason: errorText(err) });
    }
  }
  const libraries: LibraryRun[] = [];
  for (const owner of LIBRARY_OWNERS) {
    const path = libraryPath(dir, owner);
    // shared is optional: only some set-ups use a library common to all agents
    if (!existsSync(path)) {
      if (owner !== "shared") problems.push({ file: rel(dir, path), reason: "missing" });
      continue;
    }
    try {
      const lib = ExperienceLibrary.load(path, libraryIdentity(owner));
      libraries.push({
        owner,
        entries: lib.entries().map((e) => ({
          id: e.id,
          content: e.content,
          category: e.category,
          source_problem: e.source_problem,
        })),
        history: [...lib.operationHistory()],
        sizeOverTime: librarySizeOverTime(lib.operationHistory()),
      });
    } catch (err) {
      problems.push({ file: rel(dir, path), reason: errorText(err) });
    }
  }
  // The per-process usage files include runs that were killed before they rebuilt the summary.
  const runSummary = existsSync(join(dir, "grpo_training", "usage"))
    ? summarizeRuns(dir)
    : (readJsonObject(dir, runSummaryPath(dir), problems, true) as RunSummary | undefined);
  const evalResult = readJsonObject(dir, join(dir, EVAL_FILE), problems, false);
  return { agents, libraries, runSummary, evalResult };
}

/** Which kind of run a directory holds, from the files each trainer writes first. */
export function runKind(dir: string): "parametric" | "training-free" | undefined {
  if (existsSync(join(dir, "history.jsonl")) || existsSync(join(dir, "training_stats.json")))
    return "parametric";
  if (existsSync(join(dir, "grpo_training")) || existsSync(join(dir, "data", "grpo_experiences"))) {
    return "training-free";
  }
  return undefined;
}

export function loadRun(dirArg: string, name?: string): RunData {
  const dir = resolve(dirArg);
  const run: RunData = { name: name ?? basename(dir), dir, problems: [] };
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    run.problems.push({ file: dirArg, reason: "not a directory" });
    return run;
  }
  const kind = runKind(dir);
  if (kind === "parametric") run.parametric = loadParametric(dir, run.problems);
  else if (kind === "training-free") run.trainingFree = loadTrainingFree(dir, run.problems);
  else {
    run.problems.push({
      file: ".",
      reason:
        "no run files found (expected history.jsonl for a parametric run, or grpo_training/ and data/grpo_experiences/ for a training-free run)",
    });
  }
  return run;
}

/** Display names for several runs: basenames, with the parent folder added where two collide. */
export function runNames(dirs: readonly string[]): string[] {
  const base = dirs.map((d) => basename(resolve(d)));
  return dirs.map((d, i) =>
    base.filter((b) => b === base[i]).length > 1 ? `${basename(resolve(d, ".."))}/${base[i]}` : base[i]!,
  );
}
