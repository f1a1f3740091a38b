import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  createProgress,
  fixed,
  formatDuration,
  percent,
  stepLine,
  stopAllProgress,
} from "../../src/cli/progress.ts";
import { change, reportCommand, shareChange, summaryLines } from "../../src/cli/summary.ts";

/** A stream that records what is written; `tty` makes it look like a terminal of `columns`. */
function sink(tty: boolean, columns = 60) {
  const chunks: string[] = [];
  const stream = {
    isTTY: tty,
    columns,
    write(chunk: string) {
      chunks.push(String(chunk));
      return true;
    },
  } as unknown as NodeJS.WriteStream;
  return { stream, text: () => chunks.join("") };
}

const ESC = "\x1b";

describe("progress without a terminal", () => {
  test("log lines carry no prefix; ticks are Step lines with rates in percent", () => {
    const out = sink(false);
    const p = createProgress({ label: "grpo train theory", total: 3, stream: out.stream });
    p.log("backend wasm");
    p.tick(1, { reward: 0.25, success: 0.375, loss: -0.00001 });
    p.tick(2, { reward: 0.5, acc: 1, note: "x" });
    p.stop();
    assert.equal(
      out.text(),
      "backend wasm\n" +
        "Step 1/3 | reward: 0.2500 | success: 37.5% | loss: 0.0000\n" +
        "Step 3/3 | reward: 0.5000 | acc: 100.0% | note: x\n",
    );
    assert.deepEqual(
      out
        .text()
        .split("\n")
        .filter((l) => l.startsWith("Step")).length,
      2,
    );
  });

  test("a recipe's own step line is written once, not followed by a tick line", () => {
    const out = sink(false);
    const p = createProgress({ label: "grpo train email", total: 2, stream: out.stream });
    p.logStep("Step 1/2 | Loss: 0.5", 1, { reward: 0.1 });
    p.logStep("Step 2/2 | Loss: 0.4", 1, { reward: 0.2 });
    p.stop();
    assert.equal(out.text(), "Step 1/2 | Loss: 0.5\nStep 2/2 | Loss: 0.4\n");
  });

  test("a command's own Step line followed by a tick is not repeated; other lines do not count", () => {
    const out = sink(false);
    const p = createProgress({ label: "grpo train email", total: 2, stream: out.stream });
    p.log("Step 1/2 | Loss: 0.5000 | Acc: 25.0%");
    p.tick(1, { reward: 0.1 });
    p.log("Eval reward: 0.3");
    p.tick(1, { reward: 0.2 });
    assert.equal(
      out.text(),
      "Step 1/2 | Loss: 0.5000 | Acc: 25.0%\nEval reward: 0.3\nStep 2/2 | reward: 0.2000\n",
    );
  });

  test("several agents on one stream: every line starts with the agent, ticks count problems", () => {
    const out = sink(false);
    const p = createProgress({
      label: "generator_2",
      total: 4,
      stream: out.stream,
      unit: "Problem",
      tagLines: true,
    });
    p.tick(1, { μ: 0.5, learn: "yes" });
    p.log("warning: lesson too long");
    assert.equal(
      out.text(),
      "generator_2: Problem 1/4 | μ: 0.5000 | learn: yes\ngenerator_2: warning: lesson too long\n",
    );
  });
});

describe("progress on a terminal", () => {
  test("a run refused before its first step draws no bar at all", () => {
    const out = sink(true);
    const p = createProgress({ label: "grpo train theory", total: 100, stream: out.stream });
    p.log("warm start: 0 steps");
    p.stop();
    assert.equal(out.text(), "warm start: 0 steps\n");
  });

  test("the bar is labelled, fits the width, and its teardown stays on the bar's row", () => {
    const out = sink(true, 50);
    const p = createProgress({ label: "grpo train theory", total: 4, stream: out.stream });
    p.tick(1, { reward: 0.39151, success: 0.25 });
    p.log("New best success: 25.0% (step 1)");
    p.tick(1, { reward: 0.4, success: 0.5 });
    p.stop();
    const text = out.text();
    // every drawn bar row (between cursor moves) is at most columns − 1 wide
    const rows = text
      .split(/\r|\n|\x1b\[[0-9;]*[A-Za-z]|\x1b[78]/)
      .filter((r) => r.startsWith("grpo train theory ["));
    assert.ok(rows.length > 0, "the bar was drawn");
    for (const r of rows) assert.ok(r.length <= 49, `${r.length} > 49: ${r}`);
    const wide = sink(true, 200);
    const q = createProgress({ label: "t", total: 4, stream: wide.stream });
    q.tick(1, { success: 0.25 });
    q.stop();
    assert.match(wide.text(), /1\/4 ETA \S+ success=25\.0%/);
    assert.ok(
      text.includes("\r\x1b[KNew best success: 25.0% (step 1)\n"),
      "log line written over the bar's row",
    );
    // the final restore (ESC 8) comes right after a save on the current row (ESC 7)
    const restore = text.lastIndexOf(`${ESC}8`);
    assert.ok(restore > 0, "cli-progress restores the cursor");
    assert.ok(
      text.lastIndexOf(`${ESC}7`) > text.indexOf("New best success"),
      "position saved after the log scrolled",
    );
    assert.doesNotMatch(text, /\x1b\[\?7l/, "line wrapping is never switched off");
    assert.ok(text.endsWith("\n"), "what follows starts on a new line");
  });

  test("a completed bar says how long it took; stopAllProgress ends a bar left running", () => {
    const out = sink(true, 200);
    const p = createProgress({ label: "demo", total: 2, stream: out.stream });
    p.tick(2);
    stopAllProgress();
    assert.match(out.text(), /2\/2 took \d+\.\ds/);
    const before = out.text().length;
    p.stop();
    assert.equal(out.text().length, before, "a stopped bar writes nothing more");
  });
});

describe("numbers and summaries", () => {
  test("shares in percent, no negative zero, durations", () => {
    assert.equal(percent(0.375), "37.5%");
    assert.equal(percent(-0.00001), "0.0%");
    assert.equal(fixed(-0.00001, 4), "0.0000");
    assert.equal(fixed(-0.5, 1), "-0.5");
    assert.equal(formatDuration(0.42), "0.4s");
    assert.equal(formatDuration(42), "42s");
    assert.equal(formatDuration(185), "3m05s");
    assert.equal(formatDuration(3720), "1h02m");
    assert.equal(stepLine(3, 10, { success: 0.5 }), "Step 3/10 | success: 50.0%");
  });

  test("a summary: what ran, what changed, where the results are, the command to see them", () => {
    assert.deepEqual(
      summaryLines({
        done: "100 GRPO steps in 2m05s",
        changes: [change("reward", 0.27, 0.41), shareChange("held-out success", 0, 0.125)],
        results: "outputs/grpo_theory",
        next: [reportCommand("outputs/grpo_theory")],
      }),
      [
        "done: 100 GRPO steps in 2m05s",
        "  reward 0.270 → 0.410",
        "  held-out success 0.0% → 12.5%",
        "  results in outputs/grpo_theory",
        "  see them: npx grpo report outputs/grpo_theory",
      ],
    );
    assert.equal(reportCommand("my runs/a"), "npx grpo report 'my runs/a'");
  });
});
