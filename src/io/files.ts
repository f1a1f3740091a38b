import { randomBytes } from "node:crypto";
import {
  appendFileSync,
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { open, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { z } from "zod";

/**
 * Write a whole file so that a reader never sees a half-written version: the bytes go to a
 * temp file in the same directory (same filesystem, so rename is atomic) and are fsynced first.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    writeFileSync(tmp, data);
    const fd = openSync(tmp, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    if (existsSync(tmp)) unlinkSync(tmp);
    throw err;
  }
}

/**
 * writeFileAtomic off the event loop: the write, fsync and rename run on libuv's thread pool,
 * so a pipeline with many requests in flight keeps answering them while a file is synced.
 * Callers that write one path from several places must serialise their calls (see
 * ExperienceLibrary.saveAsync); two concurrent calls may land in either order.
 */
export async function writeFileAtomicAsync(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    await writeFile(tmp, data);
    const fh = await open(tmp, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** The text of a JSON file as the project writes it: indented, with a final newline. */
export function jsonFileText(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, jsonFileText(value));
}

/**
 * Append one complete JSONL record. A single appendFileSync of a line under PIPE_BUF-sized
 * writes is not guaranteed atomic for large lines, so readers tolerate a torn last line
 * (see readJsonl) rather than relying on the OS.
 */
export function appendJsonl(path: string, record: unknown): void {
  appendLine(path, `${JSON.stringify(record)}\n`);
}

function appendLine(path: string, line: string): void {
  try {
    appendFileSync(path, line);
  } catch (err) {
    // The directory is made on the first append only: a run appends thousands of records.
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    mkdirSync(dirname(path), { recursive: true });
    appendFileSync(path, line);
  }
}

/** Per file, its inode and size as this process's last appendJsonlWhole left it: ending in a whole line. */
const leftWhole = new Map<string, { ino: number; size: number }>();

/**
 * appendJsonl after cutting a torn tail a killed writer left (repairJsonlTail), for writers that
 * do not hold a file from one open to their last append. The tail is read only when the file is
 * not as this process's last append to it left it (another writer appended, an append failed
 * midway, the file was replaced): a run appending thousands of records pays one stat for each
 * instead of opening and reading the file's end.
 */
export function appendJsonlWhole(path: string, record: unknown): void {
  const line = `${JSON.stringify(record)}\n`;
  let before = statSync(path, { throwIfNoEntry: false });
  const known = leftWhole.get(path);
  leftWhole.delete(path);
  if (before && !(known?.ino === before.ino && known.size === before.size) && repairJsonlTail(path))
    before = statSync(path);
  appendLine(path, line);
  leftWhole.set(path, {
    ino: before?.ino ?? statSync(path).ino,
    size: (before?.size ?? 0) + Buffer.byteLength(line),
  });
}

export interface JsonlLine {
  line: number;
  value: unknown;
}

export class FileFormatError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly field: string | undefined,
    message: string,
  ) {
    super(`${file}${line !== undefined ? `:${line}` : ""}${field ? ` (field ${field})` : ""}: ${message}`);
    this.name = "FileFormatError";
  }
}

/**
 * Parse a JSON file. A missing file or text that is not JSON is a FileFormatError naming the
 * file; `missing` replaces "file not found" with advice on how to create it.
 */
export function readJsonFile(path: string, opts: { missing?: string } = {}): unknown {
  if (!existsSync(path))
    throw new FileFormatError(path, undefined, undefined, opts.missing ?? "file not found");
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new FileFormatError(path, undefined, undefined, `invalid JSON: ${(err as Error).message}`);
  }
}

/**
 * The error for a value of `file` that failed a zod schema, from its first issue: the field is
 * the issue's path (under `prefix`), with the key itself for an unknown field, "(root)" for the
 * whole value; `hint` follows an unknown-field message (where to look up the valid ones).
 */
export function zodFileError(
  file: string,
  error: z.ZodError,
  opts: { prefix?: string; hint?: string } = {},
): FileFormatError {
  const issue = error.issues[0]!;
  const keys = issue.code === "unrecognized_keys" ? issue.keys : [];
  const path = [
    ...(opts.prefix ? [opts.prefix] : []),
    ...issue.path.map(String),
    ...(keys.length === 1 ? keys : []),
  ];
  const message =
    issue.code === "unrecognized_keys"
      ? `unknown field${keys.length > 1 ? `s ${keys.join(", ")}` : ""}${opts.hint ? ` (${opts.hint})` : ""}`
      : issue.message;
  return new FileFormatError(file, undefined, path.join(".") || "(root)", message);
}

/** A JSON file validated by a zod schema; every failure names the file (and the field). */
export function readJsonChecked<T>(path: string, schema: z.ZodType<T>, opts: { missing?: string } = {}): T {
  const parsed = schema.safeParse(readJsonFile(path, opts));
  if (!parsed.success) throw zodFileError(path, parsed.error);
  return parsed.data;
}

/**
 * Read a JSONL file. A last line without its newline that does not parse is a write torn by
 * a killed process: it is reported through `torn` and skipped. Any other bad line is an error
 * naming the file and line.
 */
export function readJsonl(path: string): { records: JsonlLine[]; torn: boolean } {
  if (!existsSync(path)) return { records: [], torn: false };
  const text = readFileSync(path, "utf8");
  const lines = text.split("\n");
  const endsClean = text.endsWith("\n") || text.length === 0;
  const records: JsonlLine[] = [];
  let torn = false;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    if (raw.trim() === "") continue;
    try {
      records.push({ line: i + 1, value: JSON.parse(raw) });
    } catch (err) {
      if (i === lines.length - 1 && !endsClean) {
        torn = true;
        continue;
      }
      throw new FileFormatError(path, i + 1, undefined, `invalid JSON: ${(err as Error).message}`);
    }
  }
  return { records, torn };
}

/**
 * Drop a torn trailing line (left by a killed writer) so that the next append starts on a
 * fresh line instead of gluing onto the fragment.
 */
export function repairJsonlTail(path: string): boolean {
  if (!existsSync(path)) return false;
  // Writers call this before every append: look at the last byte only, read the file only to cut.
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return false;
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    if (last[0] === 0x0a) return false;
  } finally {
    closeSync(fd);
  }
  const text = readFileSync(path, "utf8");
  if (text.length === 0 || text.endsWith("\n")) return false;
  const cut = text.lastIndexOf("\n") + 1;
  writeFileAtomic(path, text.slice(0, cut));
  return true;
}
