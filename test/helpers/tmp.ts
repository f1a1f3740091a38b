import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";

/**
 * A maker of temporary directories that are all removed when the test file ends. Call it at a
 * file's top level (it registers the clean-up there); `name` adds to the prefix, for debugging.
 */
export function tempDirs(prefix: string): (name?: string) => string {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  return (name = "") => {
    const d = mkdtempSync(join(tmpdir(), `${prefix}${name}`));
    dirs.push(d);
    return d;
  };
}
