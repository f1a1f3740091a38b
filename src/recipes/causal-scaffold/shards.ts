/**
 * Spreading a training-free run over a cluster's nodes: shard i of N solves its block of the
 * problems in a working directory of its own (grpo_training/shards/<i>-of-<N>/), so that no two
 * processes write one file, and a merge folds the shards back into the main working directory:
 * rollout and critic caches line by line (the last line of a problem wins, the problem keeps the
 * position of its first line: the seed's JSONL layout), libraries by replaying each shard's
 * operations, usage records by copying them.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { readJsonFile, writeJsonAtomic } from "../../io/files.ts";
import { mergeJsonl } from "../../io/jsonl-merge.ts";
import {
  type ApplyReport,
  ExperienceLibrary,
  type ExperienceOperation,
} from "../../training-free/experience-library.ts";
import { LIBRARY_OWNERS, libraryIdentity, libraryPath } from "./libraries.ts";
import { cacheDir, usageDir } from "./paths.ts";
import { rebuildRunSummary } from "./usage-log.ts";

/** Shard `index` (1-based) of `count`. */
export interface Shard {
  index: number;
  count: number;
}

export function shardName(s: Shard): string {
  return `${s.index}-of-${s.count}`;
}

export function shardsDir(workdir: string): string {
  return join(workdir, "grpo_training", "shards");
}

export function shardWorkdir(workdir: string, s: Shard): string {
  return join(shardsDir(workdir), shardName(s));
}

/** Shard `s`'s contiguous block of `items`; the blocks of 1..count cover them once, in order. */
export function shardSlice<T>(items: readonly T[], s: Shard): T[] {
  const n = items.length;
  return items.slice(Math.floor(((s.index - 1) * n) / s.count), Math.floor((s.index * n) / s.count));
}

const SEED_FILE = "shard.json";
const MERGED_FILE = "merged.json";

interface ShardSeed {
  shard: string;
  /** history length of each main library when the shard copied it: its own operations follow */
  libraryHistory: Record<string, number>;
}

/**
 * The shard's working directory, made on first use with a copy of the main libraries (so the
 * shard starts from what was learned so far) and a note of how long their histories were.
 * A rerun of the shard finds it and resumes there.
 */
export function prepareShardWorkdir(workdir: string, s: Shard): string {
  const dir = shardWorkdir(workdir, s);
  const seedPath = join(dir, "grpo_training", SEED_FILE);
  if (existsSync(seedPath)) return dir;
  const libraryHistory: Record<string, number> = {};
  for (const owner of LIBRARY_OWNERS) {
    const from = libraryPath(workdir, owner);
    if (!existsSync(from)) continue;
    const lib = ExperienceLibrary.load(from, libraryIdentity(owner));
    mkdirSync(join(dir, "data", "grpo_experiences"), { recursive: true });
    copyFileSync(from, libraryPath(dir, owner));
    libraryHistory[owner] = lib.operationHistory().length;
  }
  writeJsonAtomic(seedPath, { shard: shardName(s), libraryHistory } satisfies ShardSeed);
  return dir;
}

/** What was replayed of each shard library: how many history entries, and its ids → the main ids. */
type MergedState = Record<string, { replayed: number; ids: Record<string, string> }>;

export interface ShardMergeReport {
  shards: string[];
  /** merged JSONL files (relative to the working directory) and their problem count */
  files: { file: string; keys: number; torn: string[] }[];
  /** per library: the operations replayed from the shards */
  libraries: { owner: string; added: number; modified: number; deleted: number; kept: number }[];
  warnings: string[];
  usageRecords: number;
}

/** The shards found under the working directory, in shard order: all of `count`, or every one there. */
export function findShards(workdir: string, count?: number): Shard[] {
  const dir = shardsDir(workdir);
  const found = existsSync(dir)
    ? readdirSync(dir)
        .map((n) => /^(\d+)-of-(\d+)$/.exec(n))
        .filter((m): m is RegExpExecArray => m !== null && statSync(join(dir, m[0])).isDirectory())
        .map((m) => ({ index: Number(m[1]), count: Number(m[2]) }))
    : [];
  const counts = count === undefined ? [...new Set(found.map((s) => s.count))] : [count];
  const out: Shard[] = [];
  for (const n of counts.sort((a, b) => a - b)) {
    const missing: number[] = [];
    for (let i = 1; i <= n; i++) {
      if (found.some((s) => s.index === i && s.count === n)) out.push({ index: i, count: n });
      else missing.push(i);
    }
    if (missing.length > 0) {
      throw new Error(
        `${dir}: shard${missing.length > 1 ? "s" : ""} ${missing.map((i) => `${i}/${n}`).join(", ")} ` +
          "never ran (no directory); run them (--shard i/N) before merging",
      );
    }
  }
  if (out.length === 0) throw new Error(`${dir}: no shard directories (<i>-of-<N>) to merge`);
  return out;
}

function jsonlFiles(root: string, dir: string, out: Set<string>): void {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) jsonlFiles(root, p, out);
    else if (name.endsWith(".jsonl")) out.add(relative(root, p));
  }
}

/** A cache line's key: its problem, and for a critic line also the generator it fused. */
function cacheKey(record: unknown): string | undefined {
  const r = record as { problem_id?: unknown; generator_id?: unknown } | null;
  if (!r || typeof r.problem_id !== "string") return undefined;
  return r.generator_id === undefined ? r.problem_id : `${r.problem_id}\u0000${String(r.generator_id)}`;
}

/** Replays a shard library's own operations onto the main one; ids the shard made are mapped. */
function replayLibrary(
  main: ExperienceLibrary,
  shard: ExperienceLibrary,
  from: number,
  ids: Record<string, string>,
): ApplyReport[] {
  const reports: ApplyReport[] = [];
  const to = (id: string) => ids[id] ?? id;
  for (const h of shard.operationHistory().slice(from)) {
    let op: ExperienceOperation;
    if (h.action === "added") {
      if (!h.content) continue;
      const category = shard.get(h.id)?.category;
      op = { operation: "add", content: h.content, ...(category ? { category } : {}) };
    } else if (h.action === "modified") {
      if (!h.content) continue;
      op = { operation: "modify", id: to(h.id), content: h.content };
    } else if (h.action === "deleted") op = { operation: "delete", id: to(h.id) };
    else op = { operation: "keep", id: to(h.id) };
    const report = main.apply([op], { problemId: h.problem_id, now: () => new Date(h.time || Date.now()) });
    if (h.action === "added") {
      const id = report.added[0] ?? report.merged[0];
      if (id) ids[h.id] = id;
    }
    reports.push(report);
  }
  return reports;
}

/**
 * Folds every shard of the working directory (or the `count` shards of one array) into it.
 * Running it again gives the same files: caches are merged by key, and each library remembers
 * how much of each shard it has replayed.
 */
export function mergeShards(workdir: string, count?: number): ShardMergeReport {
  const shards = findShards(workdir, count);
  const dirs = shards.map((s) => shardWorkdir(workdir, s));
  const report: ShardMergeReport = {
    shards: shards.map(shardName),
    files: [],
    libraries: [],
    warnings: [],
    usageRecords: 0,
  };

  const files = new Set<string>();
  for (const d of dirs) jsonlFiles(d, cacheDir(d), files);
  for (const file of [...files].sort()) {
    const r = mergeJsonl(
      [join(workdir, file), ...dirs.map((d) => join(d, file))],
      join(workdir, file),
      cacheKey,
    );
    report.files.push({ file, keys: r.keys, torn: r.torn.map((t) => relative(workdir, t)) });
  }

  const mergedPath = join(shardsDir(workdir), MERGED_FILE);
  const merged = (existsSync(mergedPath) ? readJsonFile(mergedPath) : {}) as MergedState;
  for (const owner of LIBRARY_OWNERS) {
    const main = ExperienceLibrary.load(libraryPath(workdir, owner), libraryIdentity(owner));
    const counts = { owner, added: 0, modified: 0, deleted: 0, kept: 0 };
    let changed = false;
    shards.forEach((s, i) => {
      const path = libraryPath(dirs[i]!, owner);
      if (!existsSync(path)) return;
      const seedPath = join(dirs[i]!, "grpo_training", SEED_FILE);
      const seed = (existsSync(seedPath) ? readJsonFile(seedPath) : { libraryHistory: {} }) as ShardSeed;
      const key = `${shardName(s)}/${owner}`;
      const state = merged[key] ?? { replayed: seed.libraryHistory[owner] ?? 0, ids: {} };
      const shardLib = ExperienceLibrary.load(path, libraryIdentity(owner));
      for (const r of replayLibrary(main, shardLib, state.replayed, state.ids)) {
        counts.added += r.added.length;
        counts.modified += r.modified.length;
        counts.deleted += r.deleted.length;
        counts.kept += r.kept.length + r.merged.length;
        report.warnings.push(...r.warnings.map((w) => `${shardName(s)}: ${w}`));
        changed = true;
      }
      merged[key] = { replayed: shardLib.operationHistory().length, ids: state.ids };
    });
    if (changed) main.save();
    if (changed || existsSync(libraryPath(workdir, owner))) report.libraries.push(counts);
  }
  // After the libraries: a merge killed in between replays again, which the duplicate check absorbs.
  writeJsonAtomic(mergedPath, merged);

  shards.forEach((s, i) => {
    const from = usageDir(dirs[i]!);
    if (!existsSync(from)) return;
    // a process's log (.jsonl, appended as calls finish) or a whole-run record of earlier versions (.json)
    for (const name of readdirSync(from).filter((n) => /\.jsonl?$/.test(n) && !n.startsWith("."))) {
      // the name starts with the time (the summary's run order); the shard goes before the extension
      const to = join(usageDir(workdir), name.replace(/(\.jsonl?)$/, `-shard-${shardName(s)}$1`));
      if (existsSync(to)) continue;
      mkdirSync(usageDir(workdir), { recursive: true });
      copyFileSync(join(from, name), to);
      report.usageRecords++;
    }
  });
  rebuildRunSummary(workdir);
  return report;
}
