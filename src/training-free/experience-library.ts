import { existsSync } from "node:fs";
import { basename } from "node:path";
import { z } from "zod";
import {
  FileFormatError,
  jsonFileText,
  readJsonFile,
  writeFileAtomicAsync,
  writeJsonAtomic,
  zodFileError,
} from "../io/files.ts";

/** How long a lesson may be; longer ones are rejected (not truncated: a cut lesson can say the opposite). */
export interface LessonLimits {
  maxWords: number;
  /** Characters bound a lesson that words alone do not: one 10 000-character "word" is one word. */
  maxChars: number;
}

export const MAX_EXPERIENCE_WORDS = 32;
export const MAX_EXPERIENCE_CHARS = 300;
export const DEFAULT_LESSON_LIMITS: LessonLimits = {
  maxWords: MAX_EXPERIENCE_WORDS,
  maxChars: MAX_EXPERIENCE_CHARS,
};

/**
 * Who a library belongs to: the name written as the file's `agent` and used in its warnings,
 * and the prefix of its lesson ids (`<prefix>-001`, `<prefix>-002`, …). Both may be left out: the
 * agent is then the file's own `agent` field (or the file name), the prefix the one its ids use
 * (or "L").
 */
export interface LibraryIdentity {
  agent?: string;
  idPrefix?: string;
  limits?: Partial<LessonLimits>;
}

/** The prefix used when neither the caller nor the file's ids name one. */
export const DEFAULT_ID_PREFIX = "L";

/** Options beside the identity (the limits may be given in either place). */
export interface LibraryOptions {
  limits?: Partial<LessonLimits>;
}
/** Token-set Jaccard similarity at or above which two lessons count as the same lesson. */
export const DUPLICATE_JACCARD = 0.8;

export const ExperienceSchema = z.object({
  id: z.string().min(1),
  content: z.string().min(1),
  category: z.string().default("general"),
  source_problem: z.string().default(""),
  created_at: z.string().default(""),
  success_count: z.number().default(0),
  usage_count: z.number().default(0),
  problem_type: z.string().default("general"),
});
export type Experience = z.infer<typeof ExperienceSchema>;
/** An entry as written by hand or by an older version: only `id` and `content` are required. */
export type ExperienceInput = z.input<typeof ExperienceSchema>;

/**
 * One change of a library. Only "added" and "deleted" change its size, so replaying those two
 * gives the size over time; "merged" is a proposed lesson folded into an existing one.
 */
export interface HistoryEntry {
  action: "added" | "modified" | "deleted" | "merged";
  id: string;
  problem_id: string;
  time: string;
  content?: string;
  previous?: string;
  /** "merged", or "deleted" by a rewrite that duplicated another lesson: the lesson kept instead. */
  into?: string;
}

export interface LibraryFile {
  agent: string;
  experiences: Experience[];
  history: HistoryEntry[];
}

export const OperationSchema = z.discriminatedUnion("operation", [
  z.object({ operation: z.literal("add"), content: z.string().min(1), category: z.string().optional() }),
  z.object({
    operation: z.literal("modify"),
    id: z.string().min(1),
    content: z.string().min(1),
    category: z.string().optional(),
  }),
  z.object({ operation: z.literal("delete"), id: z.string().min(1) }),
  z.object({ operation: z.literal("keep"), id: z.string().min(1) }),
]);
export type ExperienceOperation = z.infer<typeof OperationSchema>;

export interface ApplyContext {
  problemId: string;
  problemType?: string;
  now?: () => Date;
}

export interface ApplyReport {
  added: string[];
  modified: string[];
  deleted: string[];
  kept: string[];
  merged: string[];
  warnings: string[];
}

export function wordCount(text: string): number {
  return text.trim().split(/\s+/).filter(Boolean).length;
}

// Every addition is compared with every lesson of the library: each lesson's words are split
// once, not once per comparison. Bounded, and never mutated (a lesson's text is a string).
const TOKEN_SETS_MAX = 8192;
const tokenSets = new Map<string, ReadonlySet<string>>();

function tokenSet(text: string): ReadonlySet<string> {
  let set = tokenSets.get(text);
  if (set) return set;
  set = new Set(text.toLowerCase().match(/[a-z0-9]+/g) ?? []);
  if (tokenSets.size >= TOKEN_SETS_MAX) tokenSets.clear();
  tokenSets.set(text, set);
  return set;
}

export function jaccard(a: string, b: string): number {
  const sa = tokenSet(a);
  const sb = tokenSet(b);
  if (sa.size === 0 && sb.size === 0) return 1;
  let inter = 0;
  for (const t of sa) if (sb.has(t)) inter++;
  return inter / (sa.size + sb.size - inter);
}

/** Lessons as a prompt shows them, one `[id] lesson` per line; `ifEmpty` when there are none. */
export function renderLessons(entries: readonly Experience[], ifEmpty = ""): string {
  if (entries.length === 0) return ifEmpty;
  return entries.map((e) => `[${e.id}] ${e.content}`).join("\n");
}

/**
 * One agent's experience library backed by a JSON file. Mutations happen in memory through
 * `apply`; `save` writes the file atomically so a killed process leaves the previous version.
 * Each file has a single writer (its agent), which is what lets several agents learn at once.
 */
export class ExperienceLibrary {
  private experiences: Experience[];
  private history: HistoryEntry[];

  readonly agent: string;
  readonly idPrefix: string;
  readonly limits: LessonLimits;

  private constructor(
    /** Where `save` writes; undefined for a library kept in memory only. */
    readonly path: string | undefined,
    identity: { agent: string; idPrefix: string; limits: LessonLimits },
    data: { experiences: Experience[]; history: HistoryEntry[] },
  ) {
    this.agent = identity.agent;
    this.idPrefix = identity.idPrefix;
    this.limits = identity.limits;
    this.experiences = data.experiences;
    this.history = data.history;
  }

  /** An empty library that `save` writes to `path` (or that stays in memory when `path` is undefined). */
  static empty(
    path: string | undefined,
    identity: LibraryIdentity = {},
    opts: LibraryOptions = {},
  ): ExperienceLibrary {
    return new ExperienceLibrary(path, resolveIdentity(identity, opts, path, undefined, []), {
      experiences: [],
      history: [],
    });
  }

  /** A library kept in memory only (tests, evaluations of a given list of lessons). */
  static inMemory(
    identity: LibraryIdentity = {},
    experiences: readonly ExperienceInput[] = [],
  ): ExperienceLibrary {
    const list = experiences.map((e, i) => {
      const parsed = ExperienceSchema.safeParse(e);
      if (!parsed.success) throw zodFileError("(in memory)", parsed.error, { prefix: `experiences[${i}]` });
      return parsed.data;
    });
    checkUniqueIds(list, "(in memory)");
    return new ExperienceLibrary(undefined, resolveIdentity(identity, {}, undefined, undefined, list), {
      experiences: list,
      history: [],
    });
  }

  /**
   * Accepts the file this class writes ({agent, experiences, history}), a bare list of entries,
   * or an object keyed by id; a missing file is an empty library. This is all a deployed agent
   * needs: `ExperienceLibrary.load(path).render()` is the text for its prompt.
   */
  static load(path: string, identity: LibraryIdentity = {}, opts: LibraryOptions = {}): ExperienceLibrary {
    if (!existsSync(path)) return ExperienceLibrary.empty(path, identity, opts);
    const raw = readJsonFile(path);
    let list: unknown[];
    let history: HistoryEntry[] = [];
    let fileAgent: string | undefined;
    if (Array.isArray(raw)) list = raw;
    else if (
      raw &&
      typeof raw === "object" &&
      Array.isArray((raw as { experiences?: unknown }).experiences)
    ) {
      list = (raw as { experiences: unknown[] }).experiences;
      const h = (raw as { history?: unknown }).history;
      if (Array.isArray(h)) history = h as HistoryEntry[];
      const a = (raw as { agent?: unknown }).agent;
      if (typeof a === "string" && a !== "") fileAgent = a;
    } else if (raw && typeof raw === "object") {
      list = Object.entries(raw as Record<string, unknown>).map(([id, v]) => {
        if (!v || typeof v !== "object") return v;
        const inner = (v as { id?: unknown }).id;
        if (inner !== undefined && inner !== id)
          throw new FileFormatError(
            path,
            undefined,
            `${id}.id`,
            `id ${JSON.stringify(inner)} differs from its key`,
          );
        return { ...(v as object), id };
      });
    } else {
      throw new FileFormatError(path, undefined, undefined, "expected an object or a list of experiences");
    }
    const experiences = list.map((item, i) => {
      const parsed = ExperienceSchema.safeParse(item);
      if (!parsed.success) throw zodFileError(path, parsed.error, { prefix: `experiences[${i}]` });
      return parsed.data;
    });
    checkUniqueIds(experiences, path);
    return new ExperienceLibrary(path, resolveIdentity(identity, opts, path, fileAgent, experiences), {
      experiences,
      history,
    });
  }

  entries(): readonly Experience[] {
    return this.experiences;
  }

  operationHistory(): readonly HistoryEntry[] {
    return this.history;
  }

  get(id: string): Experience | undefined {
    return this.experiences.find((e) => e.id === id);
  }

  /**
   * The lessons as text for a prompt, one `[id] lesson` per line (`extra` ones after them, e.g.
   * a shared library's); the empty string when there are none, so that a prompt built as
   * `base + render()` is unchanged by an empty library.
   */
  render(extra: readonly Experience[] = []): string {
    return renderLessons([...this.experiences, ...extra]);
  }

  /** Numbered list for a prompt; a placeholder sentence when empty so the prompt stays readable. */
  formatForPrompt(extra: readonly Experience[] = []): string {
    return renderLessons([...this.experiences, ...extra], "(none yet)");
  }

  markUsed(): void {
    for (const e of this.experiences) e.usage_count += 1;
  }

  nextId(): string {
    const prefix = this.idPrefix;
    const re = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}-(\\d+)$`);
    let max = 0;
    for (const e of this.experiences) {
      const m = re.exec(e.id);
      if (m) max = Math.max(max, Number(m[1]));
    }
    // Deleted ids are never reused: history entries must keep pointing at one lesson.
    for (const h of this.history) {
      const m = re.exec(h.id);
      if (m) max = Math.max(max, Number(m[1]));
    }
    return `${prefix}-${String(max + 1).padStart(3, "0")}`;
  }

  private duplicateOf(content: string, exceptId?: string): Experience | undefined {
    return this.experiences.find(
      (e) => e.id !== exceptId && jaccard(e.content, content) >= DUPLICATE_JACCARD,
    );
  }

  apply(ops: readonly ExperienceOperation[], ctx: ApplyContext): ApplyReport {
    const now = () => (ctx.now ? ctx.now() : new Date()).toISOString();
    const report: ApplyReport = { added: [], modified: [], deleted: [], kept: [], merged: [], warnings: [] };
    const record = (entry: Omit<HistoryEntry, "problem_id" | "time">) =>
      this.history.push({ ...entry, problem_id: ctx.problemId, time: now() });
    for (const op of ops) {
      if (op.operation === "add" || op.operation === "modify") {
        const content = op.content.trim().replace(/\s+/g, " ");
        const tooLong = this.lengthProblem(content);
        if (tooLong) {
          report.warnings.push(
            `${this.agent}: ${op.operation} on problem ${ctx.problemId} rejected, lesson has ${tooLong}: "${content.slice(0, 60)}…"`,
          );
          continue;
        }
        if (op.operation === "add") {
          const dup = this.duplicateOf(content);
          if (dup) {
            dup.success_count += 1;
            report.merged.push(dup.id);
            record({ action: "merged", id: dup.id, into: dup.id, content });
            continue;
          }
          const id = this.nextId();
          this.experiences.push({
            id,
            content,
            category: op.category ?? "general",
            source_problem: ctx.problemId,
            created_at: now(),
            success_count: 0,
            usage_count: 0,
            problem_type: ctx.problemType ?? "general",
          });
          report.added.push(id);
          record({ action: "added", id, content });
          continue;
        }
        const target = this.get(op.id);
        if (!target) {
          report.warnings.push(`${this.agent}: modify of unknown experience id ${op.id} ignored`);
          continue;
        }
        const dup = this.duplicateOf(content, target.id);
        if (dup) {
          // The rewrite now says what another lesson says: keep one of them.
          this.experiences = this.experiences.filter((e) => e.id !== target.id);
          dup.success_count += 1;
          report.merged.push(target.id);
          record({ action: "deleted", id: target.id, into: dup.id, previous: target.content, content });
          continue;
        }
        const previous = target.content;
        target.content = content;
        if (op.category) target.category = op.category;
        report.modified.push(target.id);
        record({ action: "modified", id: target.id, previous, content });
        continue;
      }
      const target = this.get(op.id);
      if (!target) {
        report.warnings.push(`${this.agent}: ${op.operation} of unknown experience id ${op.id} ignored`);
        continue;
      }
      if (op.operation === "delete") {
        this.experiences = this.experiences.filter((e) => e.id !== op.id);
        report.deleted.push(op.id);
        record({ action: "deleted", id: op.id, previous: target.content });
      } else {
        target.success_count += 1;
        report.kept.push(op.id);
      }
    }
    return report;
  }

  /** Why `content` is too long for this library, or undefined when it fits. */
  lengthProblem(content: string): string | undefined {
    const words = wordCount(content);
    if (words > this.limits.maxWords) return `${words} words (max ${this.limits.maxWords})`;
    if (content.length > this.limits.maxChars)
      return `${content.length} characters (max ${this.limits.maxChars})`;
    return undefined;
  }

  /**
   * Replaces the lessons and history with a recorded state (a run resuming from its last
   * library version). Copies, so that the caller's record is not changed by later updates.
   */
  restore(state: { experiences: readonly Experience[]; history: readonly HistoryEntry[] }): void {
    this.experiences = state.experiences.map((e) => ({ ...e }));
    this.history = state.history.map((h) => ({ ...h }));
  }

  /** A deep copy of the lessons and history as they are now. */
  snapshot(): { experiences: Experience[]; history: HistoryEntry[] } {
    return {
      experiences: this.experiences.map((e) => ({ ...e })),
      history: this.history.map((h) => ({ ...h })),
    };
  }

  toJSON(): LibraryFile {
    return { agent: this.agent, experiences: this.experiences, history: this.history };
  }

  save(): void {
    writeJsonAtomic(this.requirePath(), this.toJSON());
  }

  private requirePath(): string {
    if (this.path === undefined) throw new Error(`experience library ${this.agent} has no file to save to`);
    return this.path;
  }

  private pendingSave: Promise<void> = Promise.resolve();
  /** A save waiting for the one in progress; it writes the library as it is when it starts. */
  private queuedSave: Promise<void> | undefined;

  /**
   * Saves the library without blocking the event loop. Saves run one at a time and the file
   * always ends with the newest state; the promise settles once a snapshot holding every change
   * made before this call is on disk. Calls made while a save waits share it, so a burst of
   * updates costs one more write, not one write (and fsync) each.
   */
  saveAsync(): Promise<void> {
    const path = this.requirePath();
    if (this.queuedSave) return this.queuedSave;
    const next = this.pendingSave.then(() => {
      this.queuedSave = undefined;
      return writeFileAtomicAsync(path, jsonFileText(this.toJSON()));
    });
    this.queuedSave = next;
    // A failed save rejects its own callers; the chain goes on for later ones.
    this.pendingSave = next.catch(() => {});
    return next;
  }
}

/** Two lessons under one id: every operation on that id would be ambiguous. */
function checkUniqueIds(list: readonly Experience[], file: string): void {
  const seen = new Map<string, number>();
  list.forEach((e, i) => {
    const first = seen.get(e.id);
    if (first !== undefined)
      throw new FileFormatError(
        file,
        undefined,
        `experiences[${i}].id`,
        `duplicate id ${e.id} (also experiences[${first}])`,
      );
    seen.set(e.id, i);
  });
}

/** The prefix most of `list`'s ids (`PREFIX-NNN`) share, if any. */
function prefixOfIds(list: readonly Experience[]): string | undefined {
  const counts = new Map<string, number>();
  for (const e of list) {
    const m = /^(.+)-\d+$/.exec(e.id);
    if (m) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
  }
  let best: string | undefined;
  for (const [p, n] of counts) if (best === undefined || n > counts.get(best)!) best = p;
  return best;
}

function resolveIdentity(
  identity: LibraryIdentity,
  opts: LibraryOptions,
  path: string | undefined,
  fileAgent: string | undefined,
  list: readonly Experience[],
): { agent: string; idPrefix: string; limits: LessonLimits } {
  const limits = { ...DEFAULT_LESSON_LIMITS, ...identity.limits, ...opts.limits };
  for (const [name, v] of Object.entries(limits)) {
    if (!Number.isInteger(v) || v < 1)
      throw new RangeError(`ExperienceLibrary: limits.${name} must be an integer ≥ 1, got ${v}`);
  }
  const fromPath = path === undefined ? undefined : basename(path).replace(/(_experiences)?\.json$/, "");
  return {
    agent: identity.agent ?? fileAgent ?? fromPath ?? "library",
    idPrefix: identity.idPrefix ?? prefixOfIds(list) ?? DEFAULT_ID_PREFIX,
    limits,
  };
}
