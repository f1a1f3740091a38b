/**
 * Merging JSONL files that several processes wrote for disjoint or overlapping keys, by the
 * rule every resumable log of the project follows: the last line of a key wins, and the key
 * keeps the position of its first line.
 */
import { existsSync, readFileSync } from "node:fs";
import { FileFormatError, writeFileAtomic } from "./files.ts";

export interface JsonlMergeResult {
  /** keys in the merged file */
  keys: number;
  /** lines read over all sources (a torn last line not counted) */
  lines: number;
  /** sources whose last line was torn by a killed writer and skipped */
  torn: string[];
}

/**
 * Merges `sources` in order (missing ones are skipped) into `target`, written atomically; the
 * winning lines are copied byte for byte. `key` names a record; a line without one is an error
 * naming its file and line, as is a bad line other than a torn last one.
 */
export function mergeJsonl(
  sources: readonly string[],
  target: string,
  key: (record: unknown) => string | undefined,
): JsonlMergeResult {
  const merged = new Map<string, string>();
  const torn: string[] = [];
  let lines = 0;
  for (const source of sources) {
    if (!existsSync(source)) continue;
    const text = readFileSync(source, "utf8");
    const rows = text.split("\n");
    rows.forEach((raw, i) => {
      if (raw.trim() === "") return;
      let record: unknown;
      try {
        record = JSON.parse(raw);
      } catch (err) {
        if (i === rows.length - 1 && !text.endsWith("\n")) {
          torn.push(source);
          return;
        }
        throw new FileFormatError(source, i + 1, undefined, `invalid JSON: ${(err as Error).message}`);
      }
      const k = key(record);
      if (k === undefined) throw new FileFormatError(source, i + 1, undefined, "no key in this line");
      lines++;
      // Map.set keeps an existing key where it is: the first position, the last value.
      merged.set(k, raw);
    });
  }
  writeFileAtomic(target, [...merged.values()].map((l) => `${l}\n`).join(""));
  return { keys: merged.size, lines, torn };
}
