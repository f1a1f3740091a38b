/**
 * Exclusive lock files naming their holder. A lock is a small JSON file created in one step
 * (written under a temporary name, then hard-linked into place, which fails when the lock
 * exists), so a reader never sees a half-written lock. A lock whose process is gone (killed,
 * crashed) is stale and taken over; a live holder is named in the refusal.
 */
import { randomBytes } from "node:crypto";
import {
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { hostname } from "node:os";
import { basename, dirname, join } from "node:path";

export interface LockHolder {
  pid: number;
  host: string;
  /** What the holder is doing, e.g. `grpo generator --id 1`. */
  command: string;
  started_at: string;
  /** The process's start time in clock ticks since boot (Linux), so a reused pid is not mistaken for the holder. */
  proc_start?: string;
  /** Tells this lock apart from a later one of the same process. */
  token: string;
}

export class LockHeldError extends Error {
  constructor(
    readonly path: string,
    readonly holder: LockHolder | undefined,
    message: string,
  ) {
    super(message);
    this.name = "LockHeldError";
  }
}

export interface HeldLock {
  readonly path: string;
  readonly holder: LockHolder;
  /** Removes the lock if it is still this one; safe to call twice. */
  release(): void;
}

/** A lock file whose content cannot be read is taken over once it is this old (written by no version of this module). */
const UNREADABLE_STALE_MS = 10_000;

/** Field 22 of /proc/<pid>/stat: start time in clock ticks; undefined off Linux. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is parenthesised and may hold spaces: count from its end.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19];
  } catch {
    return undefined;
  }
}

/** Whether the process exists (on this host); with `procStart`, whether it is that same process. */
export function processAlive(pid: number, procStart?: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (procStart === undefined) return true;
  const now = processStartTime(pid);
  return now === undefined || now === procStart;
}

function readHolder(path: string): LockHolder | undefined {
  try {
    const v = JSON.parse(readFileSync(path, "utf8")) as LockHolder;
    return typeof v?.pid === "number" && typeof v.token === "string" ? v : undefined;
  } catch {
    return undefined;
  }
}

function describeHolder(h: LockHolder): string {
  return `process ${h.pid}${h.host !== hostname() ? ` on ${h.host}` : ""} (${h.command}, since ${h.started_at})`;
}

type Staleness = { stale: true } | { stale: false; why: string };

function staleness(path: string, holder: LockHolder | undefined): Staleness {
  if (!holder) {
    try {
      const age = Date.now() - statSync(path).mtimeMs;
      return age > UNREADABLE_STALE_MS ? { stale: true } : { stale: false, why: "an unreadable lock file" };
    } catch {
      return { stale: true };
    }
  }
  // Another machine's process cannot be checked from here: only its owner can clear the lock.
  if (holder.host !== hostname()) return { stale: false, why: describeHolder(holder) };
  return processAlive(holder.pid, holder.proc_start)
    ? { stale: false, why: describeHolder(holder) }
    : { stale: true };
}

/**
 * Moves a stale lock aside and removes it. Renaming first means that of two processes taking
 * over the same stale lock only one succeeds; the moved file is checked to be the stale one,
 * and put back if a live lock was created in between.
 */
function takeOver(path: string, stale: LockHolder | undefined): void {
  const aside = `${path}.stale.${process.pid}.${randomBytes(4).toString("hex")}`;
  try {
    renameSync(path, aside);
  } catch {
    return; // someone else moved it first; the caller tries again
  }
  const moved = readHolder(aside);
  if (moved && stale && moved.token !== stale.token) {
    try {
      linkSync(aside, path);
    } catch {
      // the path was taken meanwhile: the caller's next attempt sees that holder
    }
  }
  unlinkSync(aside);
}

export interface LockOptions {
  command: string;
  /** Keep trying this long (ms) while the lock is held by a live process; 0 refuses at once. */
  waitMs?: number;
  /** Ends the message of a refusal, e.g. how to wait for the holder. */
  advice?: string;
}

/**
 * Takes the lock at `path` or throws LockHeldError naming the process that holds it. The
 * directory is created; a failure to write it (read-only, not a directory) throws as is.
 */
export function acquireLock(path: string, opts: LockOptions): HeldLock {
  mkdirSync(dirname(path), { recursive: true });
  const holder: LockHolder = {
    pid: process.pid,
    host: hostname(),
    command: opts.command,
    started_at: new Date().toISOString(),
    token: randomBytes(8).toString("hex"),
  };
  const procStart = processStartTime(process.pid);
  if (procStart !== undefined) holder.proc_start = procStart;
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${holder.token.slice(0, 8)}.tmp`);
  writeFileSync(tmp, `${JSON.stringify(holder)}\n`);
  const deadline = Date.now() + (opts.waitMs ?? 0);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  try {
    for (;;) {
      try {
        linkSync(tmp, path);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      const current = readHolder(path);
      const s = staleness(path, current);
      if (s.stale) {
        takeOver(path, current);
        continue;
      }
      if (Date.now() >= deadline) {
        throw new LockHeldError(
          path,
          current,
          `${path} is held by ${s.why}${opts.advice ? `; ${opts.advice}` : ""}`,
        );
      }
      Atomics.wait(pause, 0, 0, 5);
    }
  } finally {
    unlinkSync(tmp);
  }
  let released = false;
  return {
    path,
    holder,
    release() {
      if (released) return;
      released = true;
      if (readHolder(path)?.token === holder.token) unlinkSync(path);
    },
  };
}

/** Runs `fn` holding the lock at `path`, waiting up to `waitMs` for it. */
export function withLock<T>(path: string, opts: LockOptions, fn: () => T): T {
  const lock = acquireLock(path, opts);
  try {
    return fn();
  } finally {
    lock.release();
  }
}

const TEMP_NAME = /^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/**
 * Removes the temporary files of atomic writes (see writeFileAtomic) left in `dir` by processes
 * that no longer run, e.g. one killed in the middle of saving a library. Returns what it removed.
 */
export function sweepStaleTemps(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    const m = TEMP_NAME.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    try {
      unlinkSync(join(dir, name));
      removed.push(join(dir, name));
    } catch {
      // gone already
    }
  }
  return removed;
}
