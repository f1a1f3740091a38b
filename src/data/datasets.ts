import { existsSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { FileFormatError, readJsonChecked, readJsonFile, readJsonl } from "../io/files.ts";

export interface Problem {
  id: string;
  text: string;
  answer: string;
  source: string;
}

export interface DatasetConfig {
  datasets: Record<string, { path: string; format?: "jsonl" | "json" }>;
}

export const DEFAULT_DATASET_CONFIG = "grpo_training/dataset_config.json";

const DatasetConfigSchema = z.object({
  datasets: z.record(
    z.string(),
    z.object({
      path: z.string().min(1),
      format: z.enum(["jsonl", "json"]).optional(),
    }),
  ),
});

/** Read the dataset registry; dataset paths inside it are relative to the config file. */
export function loadDatasetConfig(path: string = DEFAULT_DATASET_CONFIG): DatasetConfig {
  return readJsonChecked(path, DatasetConfigSchema, {
    missing:
      'dataset config not found: create it with a "datasets" map of name → {"path": ..., "format": "jsonl" | "json"} (paths relative to the config file); examples/dataset_config.json is a working template',
  });
}

/**
 * Problems of one or more named data sets, in config order for "full". Unknown names fail with
 * the list of known ones so that a typo is easy to fix.
 */
export function loadDataset(name: string | string[], config: DatasetConfig, configPath: string): Problem[] {
  const known = Object.keys(config.datasets);
  const requested = (Array.isArray(name) ? name : [name]).flatMap((n) => (n === "full" ? known : [n]));
  const baseDir = dirname(configPath);
  const problems: Problem[] = [];
  for (const n of requested) {
    const entry = config.datasets[n];
    if (!entry) {
      throw new Error(
        `unknown dataset "${n}" in ${configPath}; known: ${known.length ? known.join(", ") : "(none)"}, or "full" for all`,
      );
    }
    const file = isAbsolute(entry.path) ? entry.path : resolve(baseDir, entry.path);
    if (!existsSync(file))
      throw new Error(`dataset "${n}" points at ${file}, which does not exist (from ${configPath})`);
    problems.push(...loadProblemsFile(file, n, entry.format));
  }
  checkUniqueIds(problems);
  return problems;
}

/**
 * Results are stored by problem id, so one id with two texts would let one problem's results
 * stand for the other. The same problem listed twice (the same text) is harmless.
 */
function checkUniqueIds(problems: readonly Problem[]): void {
  const first = new Map<string, Problem>();
  for (const p of problems) {
    const seen = first.get(p.id);
    if (!seen) {
      first.set(p.id, p);
      continue;
    }
    if (seen.text.trim() !== p.text.trim()) {
      throw new Error(
        `problem id "${p.id}" is used for two different problems (data sets ${seen.source} and ${p.source}); ` +
          "ids must be unique, since results are stored by id",
      );
    }
  }
}

const ID_KEYS = ["id", "problem_id", "ID"] as const;
const TEXT_KEYS = ["problem", "question", "Problem", "text", "problem_text"] as const;
const ANSWER_KEYS = ["answer", "Answer", "ground_truth", "solution_answer"] as const;

function pick(obj: Record<string, unknown>, keys: readonly string[]): unknown {
  for (const k of keys) if (obj[k] !== undefined && obj[k] !== null) return obj[k];
  return undefined;
}

function toProblem(
  value: unknown,
  index: number,
  source: string,
  file: string,
  line: number | undefined,
): Problem {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new FileFormatError(file, line, undefined, `expected an object per problem (item ${index + 1})`);
  }
  const obj = value as Record<string, unknown>;
  const text = pick(obj, TEXT_KEYS);
  if (typeof text !== "string" || text.trim() === "") {
    throw new FileFormatError(file, line, TEXT_KEYS.join("|"), `missing problem text (item ${index + 1})`);
  }
  const answer = pick(obj, ANSWER_KEYS);
  if (typeof answer !== "string" && typeof answer !== "number") {
    throw new FileFormatError(
      file,
      line,
      ANSWER_KEYS.join("|"),
      `missing or non-scalar answer (item ${index + 1})`,
    );
  }
  const rawId = pick(obj, ID_KEYS);
  // An id that is there but is no string or number is an error: making one up would put the
  // problem's results under a name no one wrote.
  if (
    rawId !== undefined &&
    ((typeof rawId !== "string" && typeof rawId !== "number") || String(rawId).trim() === "")
  ) {
    const key = ID_KEYS.find((k) => obj[k] !== undefined && obj[k] !== null)!;
    throw new FileFormatError(
      file,
      line,
      key,
      `problem id must be a non-empty string or a number, got ${JSON.stringify(rawId)} (item ${index + 1})`,
    );
  }
  const id = rawId !== undefined ? String(rawId) : `${source}_${String(index + 1).padStart(3, "0")}`;
  return { id, text, answer: String(answer), source };
}

/**
 * Problems from a JSONL file (one object per line) or a JSON file (an array or `{problems: [...]}`),
 * accepting the common field spellings of public math sets.
 */
export function loadProblemsFile(path: string, source: string, format?: "jsonl" | "json"): Problem[] {
  const fmt = format ?? (path.endsWith(".jsonl") ? "jsonl" : "json");
  if (fmt === "jsonl") {
    const { records, torn } = readJsonl(path);
    if (torn) throw new FileFormatError(path, undefined, undefined, "last line is incomplete");
    return records.map((r, i) => toProblem(r.value, i, source, path, r.line));
  }
  const raw = readJsonFile(path);
  const list = Array.isArray(raw) ? raw : (raw as { problems?: unknown } | null)?.problems;
  if (!Array.isArray(list)) {
    throw new FileFormatError(
      path,
      undefined,
      "problems",
      "expected a JSON array or an object with a problems array",
    );
  }
  return list.map((v, i) => toProblem(v, i, source, path, undefined));
}
