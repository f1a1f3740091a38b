import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { writeJsonAtomic } from "../../io/files.ts";
import type { UsageStats } from "../../llm/client.ts";
import { summarizeUsage, type UsageSummary } from "../../llm/usage.ts";
import { runSummaryPath, usageDir } from "./paths.ts";

export interface RunUsageRecord {
  command: string;
  pid: number;
  started_at: string;
  finished_at: string;
  stats: UsageStats[];
}

export interface RunSummary {
  updated_at: string;
  runs: { command: string; started_at: string; finished_at: string; file: string }[];
  /** Token usage, calls and cost per agent, added over every recorded run. */
  usage: UsageSummary;
}

/**
 * Record one command's LLM usage and rebuild `grpo_training/run_summary.json`. Each process writes
 * its own file first, so generators running as separate processes never overwrite each other's
 * numbers; whichever finishes last rebuilds a summary that includes all of them.
 */
export function recordRunUsage(
  workdir: string,
  command: string,
  startedAt: Date,
  stats: UsageStats[],
  now: Date = new Date(),
): RunSummary {
  const dir = usageDir(workdir);
  // Time first, so that the name order is the run order in the summary.
  const file = `${now.getTime()}-${command}-${process.pid}.json`;
  const record: RunUsageRecord = {
    command,
    pid: process.pid,
    started_at: startedAt.toISOString(),
    finished_at: now.toISOString(),
    stats,
  };
  writeJsonAtomic(join(dir, file), record);
  return rebuildRunSummary(workdir, now);
}

function readUsageRecords(workdir: string): { file: string; rec: RunUsageRecord }[] {
  const dir = usageDir(workdir);
  const files = existsSync(dir)
    ? readdirSync(dir).filter((f) => f.endsWith(".json") && !f.startsWith("."))
    : [];
  const out: { file: string; rec: RunUsageRecord }[] = [];
  for (const file of files.sort()) {
    try {
      out.push({ file, rec: JSON.parse(readFileSync(join(dir, file), "utf8")) as RunUsageRecord });
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

/** A lock older than this was left by a killed process. */
const STALE_LOCK_MS = 10_000;

/**
 * Run `fn` holding an exclusive lock file. Every writer of the summary writes its own usage
 * file first and then rebuilds under the lock, so the last rebuild always sees every file;
 * without the lock, a slow rebuild could rename an older summary over a newer one.
 */
function withLock<T>(lockPath: string, fn: () => T): T {
  mkdirSync(dirname(lockPath), { recursive: true });
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      closeSync(openSync(lockPath, "wx"));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      try {
        if (Date.now() - statSync(lockPath).mtimeMs > STALE_LOCK_MS) rmSync(lockPath, { force: true });
      } catch {
        // released between the failed open and the stat: just try again
      }
      Atomics.wait(pause, 0, 0, 5);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lockPath, { force: true });
  }
}

export function rebuildRunSummary(workdir: string, now: Date = new Date()): RunSummary {
  return withLock(`${runSummaryPath(workdir)}.lock`, () => rebuildUnlocked(workdir, now));
}

function rebuildUnlocked(workdir: string, now: Date): RunSummary {
  const runs: RunSummary["runs"] = [];
  const all: UsageStats[] = [];
  for (const { file, rec } of readUsageRecords(workdir)) {
    runs.push({ command: rec.command, started_at: rec.started_at, finished_at: rec.finished_at, file });
    all.push(...(rec.stats ?? []));
  }
  const summary: RunSummary = { updated_at: now.toISOString(), runs, usage: summarizeUsage(all) };
  writeJsonAtomic(runSummaryPath(workdir), summary);
  return summary;
}

export function readRunSummary(workdir: string): RunSummary | undefined {
  const path = runSummaryPath(workdir);
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, "utf8")) as RunSummary;
}
