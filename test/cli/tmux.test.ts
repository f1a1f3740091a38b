/**
 * What a person sees in a real terminal: commands run in a tmux pane (a terminal emulator with
 * scrolling, cursor saves and line wrapping), and the test reads the final screen back.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { tempDirs } from "../helpers/tmp.ts";

const root = join(import.meta.dirname, "..", "..");
const tmp = tempDirs("grpo-tmux-");
const PROMPT = "PROMPT>";
const socket = `grpo-test-${process.pid}`;

const tmuxMissing =
  spawnSync("tmux", ["-V"]).status === 0
    ? false
    : "tmux is not installed (apt-get install -y tmux); skipping the terminal checks";

function tmux(...args: string[]): string {
  const r = spawnSync("tmux", ["-L", socket, ...args], { encoding: "utf8", timeout: 180_000 });
  if (r.status !== 0) throw new Error(`tmux ${args.join(" ")}: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

after(() => {
  if (!tmuxMissing) spawnSync("tmux", ["-L", socket, "kill-server"]);
});

let sessions = 0;

/**
 * Runs `grpo <args>` at a shell prompt in a fresh pane of `width` × `height`, waits for the
 * prompt to come back, and returns the screen with wrapped lines joined, trailing blanks cut.
 */
function screenAfter(args: string[], width: number, height: number): string[] {
  const name = `s${++sessions}`;
  tmux(
    "new-session",
    "-d",
    "-s",
    name,
    "-x",
    String(width),
    "-y",
    String(height),
    "-c",
    root,
    `env PS1='${PROMPT} ' bash --norc --noprofile`,
  );
  const cli = [process.execPath, "--import", "tsx", "src/cli/main.ts", ...args].join(" ");
  tmux("send-keys", "-t", name, "-l", `${cli}; tmux -L ${socket} wait-for -S ${name}-done`);
  tmux("send-keys", "-t", name, "Enter");
  tmux("wait-for", `${name}-done`);
  let lines: string[] = [];
  for (let i = 0; i < 50; i++) {
    lines = tmux("capture-pane", "-p", "-J", "-t", name)
      .split("\n")
      .map((l) => l.trimEnd());
    while (lines.length > 0 && lines.at(-1) === "") lines.pop();
    if (lines.at(-1) === PROMPT) break;
    spawnSync("sleep", ["0.1"]);
  }
  tmux("kill-session", "-t", name);
  return lines;
}

function lastIndex(lines: readonly string[], test: (l: string) => boolean): number {
  for (let i = lines.length - 1; i >= 0; i--) if (test(lines[i]!)) return i;
  return -1;
}

/** The lines from the last `done:` line to the end: the closing summary, then the prompt. */
function ending(lines: string[]): string[] {
  const at = lastIndex(lines, (l) => l.startsWith("done: "));
  assert.ok(at >= 0, `no done: line on the screen:\n${lines.join("\n")}`);
  return lines.slice(at);
}

describe("in a terminal", { skip: tmuxMissing }, () => {
  test("grpo demo: the step lines scroll above the bar; the summary and the prompt come after them", () => {
    const lines = screenAfter(["demo", "--max-steps", "30"], 70, 12);
    const end = ending(lines);
    assert.match(end[0]!, /^done: 30 GRPO steps in \d+(\.\d)?s$/, lines.join("\n"));
    assert.match(end[1]!, /^ {2}reward \d\.\d\d → \d\.\d\d \(mean of the first and last 5 steps\)$/);
    assert.deepEqual(end.slice(2), [PROMPT], "the prompt follows the summary, on its own line");
    const target = lastIndex(lines, (l) => l.startsWith("target 48: "));
    assert.ok(target >= 0 && target < lines.length - end.length, "the results come before the summary");
    assert.match(lines[target]!, /^target 48: (\d ){5}\d \(sum \d+, reward \d\.\d\d\)$/);
    assert.equal(
      lines.filter((l) => l.startsWith("done: ")).length,
      1,
      "written once, not over old log lines",
    );
    assert.ok(
      lines.some((l) => /^Step 30\/30 \| reward: /.test(l)),
      "the last step line stays in the log",
    );
  });

  test("grpo train theory: a short run ends with its closing lines intact and the prompt after them", () => {
    const out = join(tmp(), "theory");
    const lines = screenAfter(
      [
        "train",
        "theory",
        "--max-steps",
        "4",
        "--num-generations",
        "2",
        "--sft-steps",
        "0",
        "--eval-samples",
        "2",
        "--eval-interval",
        "1",
        "--output-dir",
        out,
      ],
      80,
      8,
    );
    const end = ending(lines);
    assert.equal(end.at(-1), PROMPT, lines.join("\n"));
    // the closing lines: the done line, then indented summary lines, nothing from the old log
    for (const l of end.slice(1, -1)) assert.match(l, /^ {2}\S/, `a summary line: ${l}`);
    assert.ok(
      end.some((l) => l.includes(out)),
      `the closing lines say where the results are:\n${end.join("\n")}`,
    );
  });

  test("a refused run: the whole message, then the prompt", () => {
    const out = tmp();
    writeFileSync(join(out, "history.jsonl"), '{"step":1}\n');
    const lines = screenAfter(["train", "theory", "--output-dir", out], 50, 10);
    assert.deepEqual(lines.slice(-2), [
      `grpo: ${out}/history.jsonl exists: pass --resume to continue that run, or choose another --output-dir`,
      PROMPT,
    ]);
  });
});
