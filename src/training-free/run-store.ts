/**
 * What a training-free run directory holds. Everything is appended one complete line at a
 * time, so a killed run loses at most what was in flight, and a rerun reads back what was done:
 *
 *   run.json         what the run is (tasks, group size, batch size, seed, learning form); a
 *                    rerun with other arguments is refused, naming the difference
 *   attempts.jsonl   every attempt as it ended: its output, score and usage, or its failure and
 *                    at which stage (a reward that failed keeps the output, so that only the
 *                    reward is asked again)
 *   learner.jsonl    every learner call by step, with a hash of its request and its reply
 *   library.jsonl    every library version: its lessons, the history since the previous one,
 *                    which groups it learnt from and which still wait for a failed part
 *   groups.jsonl     each completed group's scores, μ, σ and whether it carried signal
 *   summary.json     the result of the last call, written atomically
 *
 * Without a directory the same records live in memory only.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  appendJsonl,
  FileFormatError,
  readJsonFile,
  readJsonl,
  repairJsonlTail,
  writeJsonAtomic,
} from "../io/files.ts";
import type { ChatMessage } from "../llm/port.ts";
import type { Experience, HistoryEntry } from "./experience-library.ts";
import type { AttemptRecord, GroupSummary, LibraryChange, TokenUsage } from "./types.ts";

export const RUN_FORMAT = "grpo-ts/training-free-run";

export type { AttemptRecord };

export interface LearnerRecord {
  key: string;
  hash: string;
  ok: boolean;
  text?: string;
  error?: string;
  usage?: TokenUsage;
  time: string;
}

/** A group that could not teach yet: an attempt or a learner call of it failed. */
export interface PendingGroup {
  key: string;
  epoch: number;
  batch: number;
  task: string;
  /** The library version its attempts saw, which a retry must see too. */
  version: number;
  reason: string;
}

export interface VersionRecord {
  version: number;
  kind: "initial" | "batch" | "catch-up";
  epoch: number;
  /** The batch this version closes (-1 for the initial version). */
  batch: number;
  experiences: Experience[];
  /** History entries added since the previous version (all of them for the initial one). */
  history: HistoryEntry[];
  learntFrom: string[];
  noSignal: string[];
  pending: PendingGroup[];
  /** Groups pending since an earlier version that this one learnt from (or found silent). */
  resolved: string[];
  change: LibraryChange;
  time: string;
}

export function attemptKey(scope: string, epoch: number, task: string, index: number): string {
  return `${scope}/${epoch}/${task}/${index}`;
}

export function groupKey(epoch: number, task: string): string {
  return `${epoch}/${task}`;
}

/** What decides a learner reply; a recorded reply is reused only for the very same request. */
export function requestHash(
  messages: readonly ChatMessage[],
  temperature: number,
  maxTokens?: number,
): string {
  return createHash("sha256")
    .update(
      JSON.stringify({ m: messages.map((m) => [m.role, m.content]), t: temperature, x: maxTokens ?? null }),
    )
    .digest("hex")
    .slice(0, 32);
}

function differences(stored: Record<string, unknown>, asked: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const k of new Set([...Object.keys(stored), ...Object.keys(asked)])) {
    const a = JSON.stringify(stored[k]);
    const b = JSON.stringify(asked[k]);
    if (a !== b) out.push(`${k}: ${a ?? "(absent)"} in the directory, ${b ?? "(absent)"} now`);
  }
  return out;
}

export class RunStore {
  readonly dir: string | undefined;
  readonly attempts = new Map<string, AttemptRecord>();
  readonly learner = new Map<string, LearnerRecord>();
  readonly versions: VersionRecord[] = [];
  /** Whether the directory held a run already. */
  resumed = false;

  constructor(dir: string | undefined) {
    this.dir = dir;
  }

  private path(name: string): string {
    return join(this.dir!, name);
  }

  /**
   * Reads the directory, after checking that it holds this run (or nothing). `fingerprint` is
   * what must not change between a run and its rerun.
   */
  open(fingerprint: Record<string, unknown>, what: string): void {
    if (this.dir === undefined) return;
    const runFile = this.path("run.json");
    if (existsSync(runFile)) {
      const raw = readJsonFile(runFile) as { format?: unknown; fingerprint?: unknown };
      if (raw?.format !== RUN_FORMAT || !raw.fingerprint || typeof raw.fingerprint !== "object")
        throw new FileFormatError(runFile, undefined, "format", `not a ${RUN_FORMAT} file`);
      const diff = differences(raw.fingerprint as Record<string, unknown>, fingerprint);
      if (diff.length > 0) {
        throw new Error(
          `${this.dir} holds a different ${what} (${diff.join("; ")}): rerun with the same arguments ` +
            "to continue it, or give another directory to start a new one",
        );
      }
      this.resumed = true;
    } else {
      writeJsonAtomic(runFile, { format: RUN_FORMAT, fingerprint, created: new Date().toISOString() });
    }
    for (const name of ["attempts.jsonl", "learner.jsonl", "library.jsonl", "groups.jsonl"]) {
      // A line torn by a kill would glue onto the next append.
      repairJsonlTail(this.path(name));
    }
    for (const { value } of readJsonl(this.path("attempts.jsonl")).records) {
      const r = value as AttemptRecord;
      this.attempts.set(attemptKey(r.scope, r.epoch, r.task, r.index), r);
    }
    for (const { value } of readJsonl(this.path("learner.jsonl")).records) {
      const r = value as LearnerRecord;
      this.learner.set(r.key, r);
    }
    for (const { value, line } of readJsonl(this.path("library.jsonl")).records) {
      const r = value as VersionRecord;
      if (r.version !== this.versions.length)
        throw new FileFormatError(
          this.path("library.jsonl"),
          line,
          "version",
          `expected version ${this.versions.length}, found ${r.version}`,
        );
      this.versions.push(r);
    }
  }

  putAttempt(r: AttemptRecord): void {
    this.attempts.set(attemptKey(r.scope, r.epoch, r.task, r.index), r);
    if (this.dir !== undefined) appendJsonl(this.path("attempts.jsonl"), r);
  }

  putLearner(r: LearnerRecord): void {
    this.learner.set(r.key, r);
    if (this.dir !== undefined) appendJsonl(this.path("learner.jsonl"), r);
  }

  putVersion(r: VersionRecord): void {
    if (r.version !== this.versions.length) throw new Error(`library version ${r.version} out of order`);
    this.versions.push(r);
    if (this.dir !== undefined) appendJsonl(this.path("library.jsonl"), r);
  }

  putGroup(g: GroupSummary): void {
    if (this.dir !== undefined) appendJsonl(this.path("groups.jsonl"), g);
  }

  writeResult(name: string, value: unknown): string | undefined {
    if (this.dir === undefined) return undefined;
    const p = this.path(name);
    writeJsonAtomic(p, value);
    return p;
  }

  /** The library's lessons and whole history as of `version`. */
  stateAt(version: number): { experiences: Experience[]; history: HistoryEntry[] } {
    const history: HistoryEntry[] = [];
    for (let v = 0; v <= version; v++) history.push(...this.versions[v]!.history);
    return { experiences: this.versions[version]!.experiences, history };
  }

  /** Groups recorded as waiting that no later version resolved. */
  pendingGroups(): PendingGroup[] {
    const resolved = new Set(this.versions.flatMap((v) => v.resolved));
    const byKey = new Map<string, PendingGroup>();
    for (const v of this.versions) for (const p of v.pending) if (!resolved.has(p.key)) byKey.set(p.key, p);
    return [...byKey.values()];
  }
}
