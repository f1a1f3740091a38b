import { existsSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeFileAtomic } from "../io/files.ts";
import { renderReport } from "./html.ts";
import { loadRun, type RunData, runNames } from "./load.ts";

export { renderReport } from "./html.ts";
export { loadRun, type RunData } from "./load.ts";
export { lineChart } from "./svg.ts";

export interface ReportOptions {
  /** output file; default `<run>/report.html` for one run, `./report.html` for several */
  out?: string;
  title?: string;
  now?: () => Date;
}

export function defaultReportPath(dirs: readonly string[]): string {
  return dirs.length === 1 ? join(resolve(dirs[0]!), "report.html") : resolve("report.html");
}

/** Read every run, render one page, write it atomically; returns the path and what was read. */
export function writeReport(
  dirs: readonly string[],
  opts: ReportOptions = {},
): { path: string; runs: RunData[] } {
  if (dirs.length === 0) throw new Error("report: give at least one run directory");
  // A typo must not become an empty report in a new folder.
  for (const d of dirs) {
    if (!existsSync(d)) throw new Error(`report: ${d} does not exist`);
    if (!statSync(d).isDirectory()) throw new Error(`report: ${d} is not a directory`);
  }
  const names = runNames(dirs);
  const runs = dirs.map((d, i) => loadRun(d, names[i]));
  const path = resolve(opts.out ?? defaultReportPath(dirs));
  writeFileAtomic(
    path,
    renderReport(runs, { title: opts.title, generatedAt: (opts.now ?? (() => new Date()))() }),
  );
  return { path, runs };
}

/**
 * Size and mtime of every file under the runs (a few levels deep, skipping the report itself),
 * as one string: it changes exactly when a trainer appends or rewrites something.
 */
export function runSignature(dirs: readonly string[], skip: string): string {
  const parts: string[] = [];
  const walk = (dir: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      if (p === skip || n.startsWith(".")) continue;
      try {
        const st = statSync(p);
        if (st.isDirectory()) {
          if (depth < 4) walk(p, depth + 1);
        } else parts.push(`${p}:${st.size}:${st.mtimeMs}`);
      } catch {
        // removed between readdir and stat: the next poll sees the new state
      }
    }
  };
  for (const d of dirs) if (existsSync(d)) walk(resolve(d), 0);
  return parts.join("|");
}

export interface WatchOptions extends ReportOptions {
  intervalMs?: number;
  /** quiet time after a change before re-rendering, so a burst of writes renders once */
  debounceMs?: number;
  onRender?: (path: string) => void;
  onError?: (err: unknown) => void;
  signal?: AbortSignal;
}

/**
 * Re-render whenever the run files change. Polling rather than fs.watch: it behaves the same on
 * every filesystem (network mounts included) and for files created after the watch starts.
 * Resolves when the signal aborts.
 */
export function watchReport(dirs: readonly string[], opts: WatchOptions = {}): Promise<void> {
  const interval = opts.intervalMs ?? 1000;
  const debounce = opts.debounceMs ?? 500;
  const out = resolve(opts.out ?? defaultReportPath(dirs));
  const render = () => {
    try {
      opts.onRender?.(writeReport(dirs, { ...opts, out }).path);
    } catch (err) {
      opts.onError?.(err);
    }
  };
  return new Promise((done) => {
    if (opts.signal?.aborted) return done();
    render();
    let last = runSignature(dirs, out);
    let changedAt: number | undefined;
    const timer = setInterval(
      () => {
        const sig = runSignature(dirs, out);
        if (sig !== last) {
          last = sig;
          changedAt = Date.now();
        } else if (changedAt !== undefined && Date.now() - changedAt >= debounce) {
          changedAt = undefined;
          render();
        }
      },
      Math.min(interval, Math.max(10, debounce)),
    );
    opts.signal?.addEventListener("abort", () => {
      clearInterval(timer);
      done();
    });
  });
}
