/**
 * Library operations as a learner writes them. Two vocabularies are in use: the seed's
 * (add / modify / delete / keep) and youtu-agent's (ADD / UPDATE / DELETE / NONE); both are read,
 * case-insensitively, into the library's own (UPDATE is modify; NONE is no operation).
 */
import { extractJsonValue } from "../llm/json-text.ts";
import { type ExperienceOperation, OperationSchema } from "./experience-library.ts";

export interface ParsedOperations {
  ops: ExperienceOperation[];
  warnings: string[];
}

const ALIASES: Record<string, string> = {
  add: "add",
  modify: "modify",
  update: "modify",
  delete: "delete",
  remove: "delete",
  keep: "keep",
  none: "none",
};

/**
 * One entry in the library's vocabulary; `null` for NONE (a decision to change nothing), or a
 * string saying why the entry is unusable.
 */
function normalise(item: unknown): ExperienceOperation | null | string {
  if (!item || typeof item !== "object" || Array.isArray(item)) return "(item): expected an object";
  const raw = item as Record<string, unknown>;
  const name = typeof raw.operation === "string" ? ALIASES[raw.operation.trim().toLowerCase()] : undefined;
  if (name === "none") return null;
  const candidate: Record<string, unknown> = { ...raw, operation: name ?? raw.operation };
  // youtu-agent's ADD carries `"id": null`; an absent id is what the schema expects there.
  if (candidate.id === null) delete candidate.id;
  if (candidate.content === undefined && typeof raw.experience === "string")
    candidate.content = raw.experience;
  delete candidate.experience;
  const parsed = OperationSchema.safeParse(candidate);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  return `${issue.path.join(".") || "(item)"}: ${issue.message}`;
}

/**
 * Operations from a learner's reply. The reply must hold a JSON list (else this throws, so that
 * the client asks again); single malformed entries are dropped with a warning instead of failing
 * all of them.
 */
export function parseOperations(text: string): ParsedOperations {
  const raw = extractJsonValue(text, "array");
  if (!Array.isArray(raw)) throw new Error("experience extraction: reply holds no JSON list of operations");
  const ops: ExperienceOperation[] = [];
  const warnings: string[] = [];
  raw.forEach((item, i) => {
    const op = normalise(item);
    if (op === null) return;
    if (typeof op === "string") warnings.push(`operation [${i}] ignored: ${op}`);
    else ops.push(op);
  });
  return { ops, warnings };
}

/**
 * A batch's merged operations with youtu-agent's precedence made certain: a DELETE of an id
 * removes every other operation on that id (it says the lesson is wrong, which no rewrite
 * repairs), and of several rewrites of one id the last stands.
 */
export function resolveConflicts(ops: readonly ExperienceOperation[]): ExperienceOperation[] {
  const deleted = new Set(ops.filter((o) => o.operation === "delete").map((o) => (o as { id: string }).id));
  const lastModify = new Map<string, number>();
  ops.forEach((o, i) => {
    if (o.operation === "modify") lastModify.set(o.id, i);
  });
  const seenDelete = new Set<string>();
  const out: ExperienceOperation[] = [];
  ops.forEach((o, i) => {
    if (o.operation === "add") out.push(o);
    else if (o.operation === "delete") {
      if (!seenDelete.has(o.id)) out.push(o);
      seenDelete.add(o.id);
    } else if (!deleted.has(o.id) && (o.operation !== "modify" || lastModify.get(o.id) === i)) out.push(o);
  });
  return out;
}
