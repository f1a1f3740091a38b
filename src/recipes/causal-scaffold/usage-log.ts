import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeJsonAtomic } from "../../io/files.ts";
import { withLock } from "../../io/lock.ts";
import { emptyByKind, type LLMErrorKind, type UsageStats } from "../../llm/client.ts";
import { summarizeUsage, type UsageSummary } from "../../llm/usage.ts";
import { runSummaryPath, usageDir } from "./paths.ts";

export type RunStatus = "finished" | "incomplete" | "failed" | "unfinished";

/** One command's usage. */
export interface RunUsageRecord {
  command: string;
  pid: number;
  started_at: string;
  /** When it ended, or its last recorded call when it never did (killed). */
  finished_at: string;
  /**
   * "finished": every requested problem completed; "incomplete": it ended with failures;
   * "failed": it ended with an error; "unfinished": it never recorded its end (killed, or
   * still running).
   */
  status?: RunStatus;
  stats: UsageStats[];
}

export interface RunSummary {
  updated_at: string;
  runs: { command: string; started_at: string; finished_at: string; file: string; status?: RunStatus }[];
  /** Token usage, calls and cost per agent, added over every recorded run. */
  usage: UsageSummary;
}

type LogLine =
  | { type: "start"; command: string; pid: number; started_at: string }
  | ({ type: "call"; at: number } & UsageStats)
  | { type: "end"; finished_at: string; status: RunStatus };

/**
 * One process's usage, appended as it accrues: a start line, one line per finished LLM call and
 * an end line, in `grpo_training/usage/<start ms>-<command>-<pid>.jsonl`. A killed process loses
 * at most the calls in flight; the next summary counts the rest.
 */
export class UsageLog {
  readonly path: string;
  private closed = false;

  /** Writes the start line at once, so an unwritable work directory fails before any paid call. */
  constructor(
    readonly workdir: string,
    readonly command: string,
    readonly startedAt: Date = new Date(),
  ) {
    const dir = usageDir(workdir);
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, `${startedAt.getTime()}-${command}-${process.pid}.jsonl`);
    this.append({ type: "start", command, pid: process.pid, started_at: startedAt.toISOString() });
  }

  private append(line: LogLine): void {
    appendFileSync(this.path, `${JSON.stringify(line)}\n`);
  }

  /** One finished call (see LLMClientDeps.onCall). */
  record(call: UsageStats): void {
    const byKind = Object.fromEntries(Object.entries(call.byKind).filter(([, n]) => n > 0));
    this.append({ type: "call", at: Date.now(), ...call, byKind: byKind as UsageStats["byKind"] });
  }

  /** The end line, then the run summary rebuilt with every run recorded so far. */
  close(status: RunStatus, now: Date = new Date()): RunSummary {
    if (!this.closed) {
      this.closed = true;
      this.append({ type: "end", finished_at: now.toISOString(), status });
    }
    return rebuildRunSummary(this.workdir, now);
  }
}

/**
 * Record one command's usage in one go (a whole-run file, the layout of earlier versions, still
 * read) and rebuild `grpo_training/run_summary.json`.
 */
export function recordRunUsage(
  workdir: string,
  command: string,
  startedAt: Date,
  stats: UsageStats[],
  now: Date = new Date(),
): RunSummary {
  const file = `${now.getTime()}-${command}-${process.pid}.json`;
  const record: RunUsageRecord = {
    command,
    pid: process.pid,
    started_at: startedAt.toISOString(),
    finished_at: now.toISOString(),
    status: "finished",
    stats,
  };
  writeJsonAtomic(join(usageDir(workdir), file), record);
  return rebuildRunSummary(workdir, now);
}

function withAllKinds(s: UsageStats): UsageStats {
  return { ...s, byKind: { ...emptyByKind(), ...(s.byKind ?? {}) } as Record<LLMErrorKind, number> };
}

/** A per-process JSONL log as one record; a torn last line (killed mid-write) is skipped. */
function readLog(text: string): RunUsageRecord | undefined {
  let start: Extract<LogLine, { type: "start" }> | undefined;
  let end: Extract<LogLine, { type: "end" }> | undefined;
  let lastAt: number | undefined;
  const stats: UsageStats[] = [];
  for (const raw of text.split("\n")) {
    if (raw.trim() === "") continue;
    let line: LogLine;
    try {
      line = JSON.parse(raw) as LogLine;
    } catch {
      continue;
    }
    if (line.type === "start") start = line;
    else if (line.type === "end") end = line;
    else if (line.type === "call") {
      const { type: _t, at, ...call } = line;
      stats.push(withAllKinds(call));
      lastAt = at;
    }
  }
  if (!start) return undefined;
  return {
    command: start.command,
    pid: start.pid,
    started_at: start.started_at,
    finished_at:
      end?.finished_at ?? (lastAt !== undefined ? new Date(lastAt).toISOString() : start.started_at),
    status: end?.status ?? "unfinished",
    stats,
  };
}

function readUsageRecords(workdir: string): { file: string; rec: RunUsageRecord }[] {
  const dir = usageDir(workdir);
  const files = existsSync(dir)
    ? readdirSync(dir).filter((f) => (f.endsWith(".json") || f.endsWith(".jsonl")) && !f.startsWith("."))
    : [];
  const out: { file: string; rec: RunUsageRecord }[] = [];
  // Time first in the name, so that the name order is the run order in the summary.
  for (const file of files.sort()) {
    try {
      const text = readFileSync(join(dir, file), "utf8");
      const rec = file.endsWith(".jsonl") ? readLog(text) : (JSON.parse(text) as RunUsageRecord);
      if (rec) out.push({ file, rec });
    } catch {
      // a file being renamed into place right now; the next rebuild includes it
    }
  }
  return out;
}

/** Usage of every recorded run except evaluations: what learning the libraries cost. */
export function learningCost(workdir: string): UsageSummary {
  return summarizeUsage(
    readUsageRecords(workdir)
      .filter(({ rec }) => rec.command !== "tf-eval")
      .flatMap(({ rec }) => rec.stats ?? []),
  );
}

/** The summary of every recorded run, without writing it (the report reads this). */
export function summarizeRuns(workdir: string, now: Date = new Date()): RunSummary {
  const runs: RunSummary["runs"] = [];
  const all: UsageStats[] = [];
  for (const { file, rec } of readUsageRecords(workdir)) {
    runs.push({
      command: rec.command,
      started_at: rec.started_at,
      finished_at: rec.finished_at,
      file,
      ...(rec.status ? { status: rec.status } : {}),
    });
    all.push(...(rec.stats ?? []));
  }
  return { updated_at: now.toISOString(), runs, usage: summarizeUsage(all) };
}

/**
 * Rebuild `grpo_training/run_summary.json` under a lock: every writer appends its own usage file
 * first and then rebuilds, so the last rebuild sees every file; without the lock, a slow rebuild
 * could rename an older summary over a newer one.
 */
export function rebuildRunSummary(workdir: string, now: Date = new Date()): RunSummary {
  return withLock(
    `${runSummaryPath(workdir)}.lock`,
    { command: "run summary rebuild", waitMs: 30_000 },
    () => {
      const summary = summarizeRuns(workdir, now);
      writeJsonAtomic(runSummaryPath(workdir), summary);
      return summary;
    },
  );
}

export function readRunSummary(workdir: string): RunSummary | undefined {
  const path = runSummaryPath(workdir);
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, "utf8")) as RunSummary;
}
