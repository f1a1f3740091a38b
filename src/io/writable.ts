/**
 * Whether a run can write where it was told to, checked before any work: a warm start or a paid
 * LLM call spent on a run whose results cannot be saved is lost.
 */
import { existsSync, mkdirSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Makes `dir` (and missing parents) and proves it takes a file, or throws an error naming the
 * directory, `flag` (the option that chose it) and what is in the way. Parents are made one
 * level at a time: a recursive mkdir under /proc never returns on Node 20.
 */
export function assertWritableDir(dir: string, flag: string): void {
  const target = resolve(dir);
  const fail = (why: string): never => {
    throw new Error(`${flag} ${dir}: ${why}; choose another ${flag}`);
  };
  const missing: string[] = [];
  let at = target;
  while (!existsSync(at)) {
    missing.unshift(at);
    const up = dirname(at);
    if (up === at) break;
    at = up;
  }
  if (existsSync(at) && !statSync(at).isDirectory())
    fail(at === target ? "is a file, not a directory" : `${at} is a file, not a directory`);
  for (const d of missing) {
    try {
      mkdirSync(d);
    } catch (err) {
      fail(`cannot be created (${reason(err)})`);
    }
  }
  const probe = join(target, `.write-check-${process.pid}`);
  try {
    writeFileSync(probe, "");
    unlinkSync(probe);
  } catch (err) {
    fail(`is not writable (${reason(err)})`);
  }
}
