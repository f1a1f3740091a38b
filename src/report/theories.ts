/**
 * The "Theories found" table of a theory run: every distinct valid theory its policy sampled
 * (theories.json, written by the trainer from the recipe's archive), how often, from which step,
 * and whether the warm start had shown it. A high success rate made of one theory repeated is a
 * collapse; this table is where that shows.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { errorText } from "../llm/messages.ts";
import { ARCHIVE_FILE, type ArchiveState, archiveStateSchema } from "../recipes/theory/archive.ts";
import { coreClass } from "../recipes/theory/canonical.ts";
import { parseTheory } from "../recipes/theory/fields.ts";
import { escapeXml } from "./svg.ts";

/** Rows shown; the rest are counted, and all are in theories.json. */
const MAX_ROWS = 200;

/** The run's theories.json, undefined when it has none; a bad one is reported through `problem`. */
export function loadTheoriesFound(
  dir: string,
  problem: (file: string, reason: string) => void,
): ArchiveState | undefined {
  const path = join(dir, ARCHIVE_FILE);
  if (!existsSync(path)) return undefined;
  try {
    const parsed = archiveStateSchema.safeParse(JSON.parse(readFileSync(path, "utf8")));
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0]!;
    problem(ARCHIVE_FILE, `field ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  } catch (err) {
    problem(ARCHIVE_FILE, `invalid JSON: ${errorText(err)}`);
  }
  return undefined;
}

/** A theory's chiral core; a line theories.json holds that is no theory counts as its own. */
function coreOf(theory: string): string {
  try {
    return coreClass(parseTheory(theory));
  } catch {
    return theory;
  }
}

const pct = (x: number) => `${Number((100 * x).toPrecision(2))}%`;

export function theoriesFoundHtml(a: ArchiveState | undefined): string {
  if (!a) return "";
  const novel = a.theories.filter((t) => !t.in_demonstrations).length;
  const demonstrated = Object.keys(a.demonstrations).length;
  const cores = new Set(a.theories.map((t) => coreOf(t.theory))).size;
  const grammar = a.valid_in_grammar
    ? `; ${pct(a.theories.length / a.valid_in_grammar)} of the ${a.valid_in_grammar} the grammar allows`
    : "";
  const rows = a.theories
    .slice(0, MAX_ROWS)
    .map(
      (t) =>
        `<tr><td><code>${escapeXml(t.theory)}</code></td><td>${t.samples}</td><td>${t.eval_samples}</td><td>${t.first_step}</td><td>${t.in_demonstrations ? "yes" : "no"}</td></tr>`,
    );
  const more = a.theories.length - rows.length;
  return [
    "<h4>Theories found</h4>",
    `<p>${a.theories.length} distinct valid (anomaly-free, non-trivial) theories, ${novel} of them not among the demonstrations (which held ${demonstrated})${grammar}; ${cores} distinct chiral cores (what is left without vector-like pairs and neutral singlets), the stricter count. One row per theory: neither the order of its fields nor the relabellings 3 ↔ 3̄ and Y → −Y make another.</p>`,
    `<table class="theories"><thead><tr><th>theory (hypercharge × 6)</th><th>training samples</th><th>evaluation samples</th><th>first step</th><th>demonstrated</th></tr></thead><tbody>${rows.join("")}</tbody></table>`,
    more > 0 ? `<p>${more} more, sampled less often, in <code>${ARCHIVE_FILE}</code>.</p>` : "",
  ].join("\n");
}
