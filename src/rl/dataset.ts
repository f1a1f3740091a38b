/**
 * Datasets in TRL's layout for GRPOTrainer: every row has a `prompt` — a text, or chat messages
 * ({role, content, …}) rendered by the model's chat template — and any other columns, which
 * reach the reward functions unchanged. Rows come as an array, or from a JSON Lines file (one
 * row per line) or a file holding one JSON array.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { Rng } from "../core/rng.ts";
import { FileFormatError, readJsonFile, readJsonl, zodFileError } from "../io/files.ts";

/** One chat message of a prompt; fields a template reads beside role and content pass through. */
export interface PromptMessage {
  role: string;
  content: string;
  [field: string]: unknown;
}

/** A text prompt (encoded as it is), or a conversation (rendered with the chat template). */
export type Prompt = string | PromptMessage[];

export interface DatasetRow {
  prompt: Prompt;
  [column: string]: unknown;
}

const messageSchema = z.looseObject({ role: z.string().min(1), content: z.string() });
const rowSchema = z.looseObject({
  prompt: z.union([z.string(), z.array(messageSchema).min(1, "a conversation needs at least one message")]),
});

/** Rows as given in code, checked like a file's: the error names the row and the field. */
export function checkDataset(rows: readonly unknown[], name = "dataset"): DatasetRow[] {
  if (!Array.isArray(rows)) throw new Error(`${name}: expected an array of rows`);
  if (rows.length === 0) throw new Error(`${name}: no rows`);
  return rows.map((row, i) => {
    const parsed = rowSchema.safeParse(row);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = issue.path.map(String).join(".") || "(row)";
      throw new Error(`${name}: row ${i} (field ${field}): ${issue.message}`);
    }
    return parsed.data as DatasetRow;
  });
}

/**
 * A dataset file: `.jsonl` (one row per line) or `.json` (an array of rows). A bad row is an
 * error naming the file, the line (JSON Lines) or the index, and the field.
 */
export function loadDataset(path: string): DatasetRow[] {
  if (path.endsWith(".jsonl")) {
    readFileSync(path); // a missing file fails here with the path in the message
    const { records, torn } = readJsonl(path);
    if (torn) throw new FileFormatError(path, undefined, undefined, "the last line is not valid JSON");
    if (records.length === 0) throw new FileFormatError(path, undefined, undefined, "no rows");
    return records.map((r) => {
      const parsed = rowSchema.safeParse(r.value);
      if (!parsed.success) {
        const e = zodFileError(path, parsed.error);
        throw new FileFormatError(path, r.line, e.field, e.message.slice(e.message.lastIndexOf(": ") + 2));
      }
      return parsed.data as DatasetRow;
    });
  }
  const value = readJsonFile(path);
  if (!Array.isArray(value))
    throw new FileFormatError(path, undefined, undefined, "expected a JSON array of rows (or a .jsonl file)");
  if (value.length === 0) throw new FileFormatError(path, undefined, undefined, "no rows");
  return value.map((row, i) => {
    const parsed = rowSchema.safeParse(row);
    if (!parsed.success) throw zodFileError(path, parsed.error, { prefix: String(i) });
    return parsed.data as DatasetRow;
  });
}

/**
 * The order rows are visited in: epoch after epoch, each a permutation of all rows (drawn from
 * the seed and the epoch number) or the file order. Position n is a pure function of n,
 * so a resumed run continues exactly where it stopped.
 */
export class DatasetOrder {
  private epochOrder: number[] = [];
  private epoch = -1;

  constructor(
    readonly size: number,
    /** the seed of the permutations; null: the file order every epoch. */
    private readonly shuffleSeed: number | null,
  ) {
    if (!(Number.isInteger(size) && size > 0))
      throw new Error(`dataset order: size must be ≥ 1, got ${size}`);
  }

  /** The row index at position n (0, 1, 2, … across epochs). */
  at(n: number): number {
    const epoch = Math.floor(n / this.size);
    if (epoch !== this.epoch) {
      this.epoch = epoch;
      this.epochOrder = Array.from({ length: this.size }, (_, i) => i);
      if (this.shuffleSeed !== null) {
        const rng = new Rng(this.shuffleSeed + 7919 * epoch);
        for (let i = this.size - 1; i > 0; i--) {
          const j = Math.floor(rng.next() * (i + 1));
          [this.epochOrder[i], this.epochOrder[j]] = [this.epochOrder[j]!, this.epochOrder[i]!];
        }
      }
    }
    return this.epochOrder[n - epoch * this.size]!;
  }
}
