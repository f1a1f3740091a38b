import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { writeReport } from "../../src/report/index.ts";
import { chromiumMissing, dumpDom, inspectDom, screenshot } from "./chromium.ts";
import {
  realTheoryRun,
  tempDir,
  writeBrokenRun,
  writeParametricRun,
  writeTrainingFreeRun,
} from "./fixtures.ts";

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Render, load in the browser, screenshot beside the report; returns what the page said. */
async function renderAndOpen(dirs: string[], out?: string) {
  const { path } = writeReport(dirs, { out });
  const png = path.replace(/\.html$/, ".png");
  const [dom] = await Promise.all([dumpDom(path), screenshot(path, png)]);
  const page = inspectDom(dom);
  const bytes = readFileSync(png);
  assert.ok(statSync(png).size > 1000, `${png} is too small to be a screenshot`);
  assert.deepEqual(bytes.subarray(0, 8), PNG_SIGNATURE, `${png} is not a PNG`);
  return { path, page, png };
}

function assertDrawn(page: ReturnType<typeof inspectDom>, minCharts: number): void {
  assert.ok(page.ready, "page finished loading");
  assert.equal(page.errors, "", "no errors in the page");
  assert.ok(
    page.chartPoints.length >= minCharts,
    `${page.chartPoints.length} charts, expected ≥ ${minCharts}`,
  );
  assert.ok(
    page.chartPoints.every((n) => n > 0),
    `every chart drew points: ${page.chartPoints.join(",")}`,
  );
  assert.deepEqual(page.chartPoints, page.expectedPoints, "the browser parsed every point written");
}

test("browser: real parametric run, training-free run, comparison and a broken run", {
  skip: chromiumMissing,
}, async () => {
  const root = tempDir("browser");
  const theory = await realTheoryRun(join(root, "grpo_theory"));
  const tf = writeTrainingFreeRun(join(root, "tf_work"), 5);
  const tfNoExp = writeTrainingFreeRun(join(root, "tf_work_b"), 5, -0.2);
  const synthetic = writeParametricRun(join(root, "synthetic"), 8);
  const broken = writeBrokenRun(join(root, "broken"));

  const [p, t, tfCmp, cmp, b] = await Promise.all([
    renderAndOpen([theory]),
    renderAndOpen([tf]),
    renderAndOpen([tf, tfNoExp], join(root, "tf_compare.html")),
    renderAndOpen([synthetic, theory], join(root, "synthetic", "compare.html")),
    renderAndOpen([broken]),
  ]);

  // reward, success, eval, KL, entropy, loss, grad norm, tokens, length, reward std, step time
  // drawn; what never moves in 4 steps (clip ratios, truncation, …) as "… throughout" notes
  assertDrawn(p.page, 8);
  const theoryHtml = readFileSync(p.path, "utf8");
  assert.match(theoryHtml, /best by held-out success @\d/);
  assert.doesNotMatch(theoryHtml, /Curriculum phase/, "no curriculum in the quick recipe");

  // a per-agent chart whose μ and σ never move is a "μ ± σ throughout" note
  assertDrawn(t.page, 3);
  assert.match(readFileSync(t.path, "utf8"), /A\/B evaluation/);

  assertDrawn(tfCmp.page, 3);
  const tfCmpHtml = readFileSync(tfCmp.path, "utf8");
  assert.match(tfCmpHtml, /data-series="tf_work_b"/);
  assert.match(tfCmpHtml, />tf_work: generator_1</);

  assertDrawn(cmp.page, 8);
  const cmpHtml = readFileSync(cmp.path, "utf8");
  assert.match(cmpHtml, /data-series="synthetic"/);
  assert.match(cmpHtml, /data-series="grpo_theory"/);

  assertDrawn(b.page, 1);
  assert.match(readFileSync(b.path, "utf8"), /Missing or unreadable/);

  // keep the theory screenshot where a person can look at it after a run of the suite
  writeFileSync(join(root, "screenshots.txt"), [p.png, t.png, tfCmp.png, cmp.png, b.png].join("\n"));
});

test("browser: the page's own error capture reports a script error", { skip: chromiumMissing }, async () => {
  const dir = writeParametricRun(join(tempDir("err"), "run"), 2);
  const { path } = writeReport([dir]);
  // a page error injected after the capture script must show up in #report-errors
  const html = readFileSync(path, "utf8").replace(
    "</body>",
    "<script>console.error('boom-42')</script></body>",
  );
  writeFileSync(path, html);
  const page = inspectDom(await dumpDom(path));
  assert.match(page.errors, /console\.error: boom-42/);
});
