/**
 * Headless Chromium driven from its own command line: one launch dumps the DOM after the page
 * ran its scripts, another writes a screenshot. Each launch gets a fresh profile directory.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

export const CHROMIUM = "/usr/bin/chromium";

export const chromiumMissing = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is not installed (apt-get install -y chromium); skipping the browser checks`;

function run(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const profile = mkdtempSync(join(tmpdir(), "grpo-report-chromium-"));
  const base = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    `--user-data-dir=${profile}`,
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=5000",
  ];
  return new Promise((resolve, reject) => {
    execFile(
      CHROMIUM,
      [...base, ...args],
      { timeout: 30_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        rmSync(profile, { recursive: true, force: true });
        if (err) reject(new Error(`chromium failed: ${err.message}\n${stderr}`));
        else resolve({ stdout, stderr });
      },
    );
  });
}

export async function dumpDom(htmlPath: string): Promise<string> {
  return (await run(["--dump-dom", pathToFileURL(htmlPath).href])).stdout;
}

/**
 * Headless Chromium on a loaded machine now and then exits 0 without writing the screenshot;
 * one more launch is tried before that counts as a failure, which then carries its log.
 */
export async function screenshot(htmlPath: string, pngPath: string): Promise<void> {
  let log = "";
  for (let attempt = 0; attempt < 2; attempt++) {
    log = (await run([`--screenshot=${pngPath}`, "--window-size=1280,2000", pathToFileURL(htmlPath).href]))
      .stderr;
    if (existsSync(pngPath)) return;
  }
  throw new Error(`chromium exited twice without writing ${pngPath}; its last log:\n${log.slice(-2000)}`);
}

export interface PageCheck {
  ready: boolean;
  errors: string;
  /** data-points written by the page on each chart, in document order */
  chartPoints: number[];
  /** what the generator expected each chart to hold */
  expectedPoints: number[];
}

function decode(text: string): string {
  return text
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, "&");
}

/** What the page reported about itself in the dumped DOM. */
export function inspectDom(dom: string): PageCheck {
  const tags = [...dom.matchAll(/<svg [^>]*class="chart"[^>]*>/g)].map((m) => m[0]);
  const attr = (tag: string, name: string) => {
    const m = new RegExp(`\\s${name}="(\\d+)"`).exec(tag);
    return m ? Number(m[1]) : Number.NaN;
  };
  const errors = /<pre id="report-errors">([\s\S]*?)<\/pre>/.exec(dom);
  return {
    ready: /<body[^>]*data-ready="1"/.test(dom),
    errors: errors ? decode(errors[1]!).trim() : "(no #report-errors element)",
    chartPoints: tags.map((t) => attr(t, "data-points")),
    expectedPoints: tags.map((t) => attr(t, "data-expected-points")),
  };
}
