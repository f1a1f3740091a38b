/**
 * Page assembly: one self-contained HTML file (inline CSS, inline SVG, a small inline script),
 * so the report opens from disk with no network. Every string that came from a run file goes
 * through `escapeHtml`.
 */
import {
  BEST_MEASURE,
  bestStep,
  type ChartSpec,
  constantValue,
  parametricCharts,
  trainingFreeCharts,
} from "./charts.ts";
import type { AgentRun, LibraryRun, ParametricRun, RunData, TrainingFreeRun } from "./load.ts";
import { type ChartSeries, escapeXml, formatTick, lineChart } from "./svg.ts";
import { theoriesFoundHtml } from "./theories.ts";

export const escapeHtml = escapeXml;

function fmtNum(v: unknown): string {
  if (typeof v !== "number") return escapeHtml(v === undefined || v === null ? "—" : String(v));
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(4)));
}

function table(head: readonly string[], rows: readonly (readonly string[])[], cls = ""): string {
  const th = head.length
    ? `<thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}</tr></thead>`
    : "";
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("\n");
  return `<table class="${cls}">${th}<tbody>${body}</tbody></table>`;
}

/** Nested configuration as dotted keys, so any shape prints as a two-column table. */
export function flatten(value: unknown, prefix = "", out: [string, string][] = []): [string, string][] {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.push([
      prefix || "(value)",
      typeof value === "string" ? value : (JSON.stringify(value) ?? "undefined"),
    ]);
  }
  return out;
}

function configTable(config: unknown): string {
  const rows = flatten(config).map(([k, v]) => [escapeHtml(k), `<code>${escapeHtml(v)}</code>`]);
  return rows.length === 0 ? "<p>none recorded</p>" : table(["setting", "value"], rows, "config");
}

function problemsSection(runs: readonly RunData[]): string {
  const rows: string[][] = [];
  for (const r of runs) {
    for (const p of r.problems)
      rows.push([escapeHtml(r.name), `<code>${escapeHtml(p.file)}</code>`, escapeHtml(p.reason)]);
  }
  if (rows.length === 0) return "";
  return `<section id="missing"><h2>Missing or unreadable</h2><p>The report was built from what could be read; these files were skipped.</p>${table(["run", "file", "why"], rows, "missing")}</section>`;
}

function valueText(value: number, percent: boolean | undefined): string {
  return percent ? `${formatTick(value * 100, 0.1)}%` : formatTick(value);
}

/**
 * What a series that never moves says instead of a line: "0 throughout", "0.5 ± 0.41
 * throughout" (with its band), "0.9 at GRPO step 4" (one point); undefined when it moves.
 */
function constantText(s: ChartSeries, c: ChartSpec): string | undefined {
  const value = constantValue(s.points);
  if (value === undefined) return undefined;
  const band = s.band ? constantValue(s.band) : undefined;
  if (s.band && band === undefined) return undefined;
  const text = valueText(value, c.yPercent) + (band ? ` ± ${valueText(Math.abs(band), c.yPercent)}` : "");
  const xs = s.points.filter((p) => Number.isFinite(p.y)).map((p) => p.x);
  return xs.length === 1 ? `${text} at ${c.xLabel} ${xs[0]}` : `${text} throughout`;
}

/**
 * One chart; a chart whose every series is constant is a line of text instead ("0 throughout"),
 * and in a chart that does move, a constant series says so in the legend.
 */
function chartHtml(c: ChartSpec): string {
  const constants = c.series.map((s) => constantText(s, c));
  if (constants.every((v) => v !== undefined)) {
    const xs = c.series.flatMap((s) => s.points.map((p) => p.x)).filter(Number.isFinite);
    const axis = c.xLabel.replace(/\s*\(.*\)$/, "");
    const span = new Set(xs).size > 1 ? ` (${axis} ${Math.min(...xs)}–${Math.max(...xs)})` : "";
    const rows = c.series.map(
      (s, i) =>
        `<li><span class="swatch" style="background:${s.color ?? "#000"}"></span>${c.series.length > 1 ? `${escapeHtml(s.name)}: ` : ""}${constants[i]}</li>`,
    );
    return `<figure class="flat" data-title="${escapeHtml(c.title)}"><figcaption>${escapeHtml(c.title)}${span}</figcaption><ul>${rows.join("")}</ul></figure>`;
  }
  const series = c.series.map((s, i) =>
    constants[i] === undefined ? s : { ...s, name: `${s.name} (${constants[i]})` },
  );
  return `<figure>${lineChart({ ...c, series })}</figure>`;
}

/** The charts in a grid, then the metrics that never moved as short notes, out of the grid's rows. */
function chartsHtml(charts: readonly ChartSpec[]): string {
  const html = charts.map(chartHtml);
  const flat = html.filter((h) => h.startsWith('<figure class="flat"'));
  const drawn = html.filter((h) => !h.startsWith('<figure class="flat"'));
  return (
    `<div class="charts">${drawn.join("\n")}</div>` +
    (flat.length > 0 ? `<div class="flat-charts">${flat.join("\n")}</div>` : "")
  );
}

function parametricDetails(r: RunData, p: ParametricRun): string {
  const parts: string[] = [`<h3>${escapeHtml(r.name)}</h3>`];
  const summary: string[][] = [["steps logged", fmtNum(p.steps)]];
  const step = bestStep(p);
  if (step !== undefined) summary.push([`best ${BEST_MEASURE} at step`, fmtNum(step)]);
  for (const [label, meta] of [
    ["best_model", p.best],
    ["final", p.final],
  ] as const) {
    if (!meta) continue;
    summary.push([
      label,
      `step ${fmtNum(meta.step)}, accuracy ${fmtNum(meta.accuracy ?? meta.success_rate)}, reward ${fmtNum(meta.reward)}`,
    ]);
  }
  if (p.checkpoints.length > 0)
    summary.push(["checkpoints", escapeHtml(p.checkpoints.map((c) => c.name).join(", "))]);
  parts.push(table([], summary, "summary"));
  if (p.samples.length > 0) {
    parts.push("<h4>Sample completions</h4>");
    parts.push(
      table(
        ["step", "group", "best reward", "best completion", "worst reward", "worst completion"],
        p.samples.map((s) => [
          fmtNum(s.step),
          fmtNum(s.groupSize),
          fmtNum(s.best.reward),
          `<pre>${escapeHtml(s.best.text)}</pre>`,
          fmtNum(s.worst.reward),
          `<pre>${escapeHtml(s.worst.text)}</pre>`,
        ]),
        "samples",
      ),
    );
  }
  parts.push(theoriesFoundHtml(p.theories));
  parts.push(`<details><summary>Configuration</summary>${configTable(p.config)}</details>`);
  return parts.join("\n");
}

function usageTable(tf: TrainingFreeRun): string {
  const per = tf.runSummary?.usage?.perAgent;
  if (!per || Object.keys(per).length === 0)
    return "<p>No usage recorded (grpo_training/run_summary.json).</p>";
  const rows = Object.values(per).map((s) => [
    escapeHtml(s.agent),
    escapeHtml(s.model),
    fmtNum(s.calls),
    fmtNum(s.promptTokens),
    fmtNum(s.completionTokens),
    fmtNum(s.promptTokens + s.completionTokens),
    `$${(s.costUSD ?? 0).toFixed(4)}`,
  ]);
  const t = tf.runSummary!.usage.total;
  if (t) {
    rows.push([
      "<b>total</b>",
      "",
      fmtNum(t.calls),
      fmtNum(t.promptTokens),
      fmtNum(t.completionTokens),
      fmtNum(t.promptTokens + t.completionTokens),
      `$${(t.costUSD ?? 0).toFixed(4)}`,
    ]);
  }
  return table(
    ["agent", "model", "calls", "prompt tokens", "completion tokens", "tokens", "cost"],
    rows,
    "usage",
  );
}

function evalTable(ev: Record<string, unknown>): string {
  type Acc = { meanAtK?: number; passAtK?: number; problems?: number };
  type Arm = { perGenerator?: Record<string, Acc>; overall?: Acc };
  const w = (ev.with_experiences ?? {}) as Arm;
  const wo = (ev.without_experiences ?? {}) as Arm;
  const k = fmtNum(ev.k);
  const names = [...new Set([...Object.keys(w.perGenerator ?? {}), ...Object.keys(wo.perGenerator ?? {})])];
  const row = (label: string, a?: Acc, b?: Acc) => [
    escapeHtml(label),
    fmtNum(a?.meanAtK),
    fmtNum(b?.meanAtK),
    fmtNum(a?.passAtK),
    fmtNum(b?.passAtK),
    fmtNum(a?.problems ?? b?.problems),
  ];
  const rows = names.map((n) => row(n, w.perGenerator?.[n], wo.perGenerator?.[n]));
  rows.push(row("overall", w.overall, wo.overall));
  const delta = ev.delta as { meanAtK?: number; passAtK?: number } | undefined;
  return (
    table(
      ["", `Mean@${k} with`, `Mean@${k} without`, `Pass@${k} with`, `Pass@${k} without`, "problems"],
      rows,
      "eval",
    ) + (delta ? `<p>Δ Mean@${k} = ${fmtNum(delta.meanAtK)}, Δ Pass@${k} = ${fmtNum(delta.passAtK)}</p>` : "")
  );
}

function libraryHtml(l: LibraryRun): string {
  const entries = l.entries.length
    ? table(
        ["id", "lesson", "category", "from problem"],
        l.entries.map((e) => [
          `<code>${escapeHtml(e.id)}</code>`,
          escapeHtml(e.content),
          escapeHtml(e.category),
          escapeHtml(e.source_problem),
        ]),
        "library",
      )
    : "<p>empty</p>";
  const history = l.history.length
    ? table(
        ["time", "problem", "action", "id", "content / previous"],
        l.history.map((h) => [
          escapeHtml(h.time),
          escapeHtml(h.problem_id),
          `<span class="op op-${escapeHtml(h.action)}">${escapeHtml(h.action)}</span>`,
          `<code>${escapeHtml(h.id)}</code>`,
          escapeHtml(h.content ?? "") + (h.previous ? `<br><s>${escapeHtml(h.previous)}</s>` : ""),
        ]),
        "history",
      )
    : "<p>no operations</p>";
  return `<h4>${escapeHtml(l.owner)} (${l.entries.length} experiences)</h4>${entries}<details><summary>Operation history (${l.history.length})</summary>${history}</details>`;
}

function agentSummary(a: AgentRun): string[] {
  const n = a.problems.length;
  const avg = (f: (p: AgentRun["problems"][number]) => number) =>
    n === 0 ? Number.NaN : a.problems.reduce((s, p) => s + f(p), 0) / n;
  const causes = Object.entries(a.failures.byCause)
    .sort((x, y) => y[1] - x[1])
    .map(([k, v]) => `${escapeHtml(k)} ${fmtNum(v)}`)
    .join(", ");
  return [
    escapeHtml(a.agent),
    fmtNum(n),
    fmtNum(a.problems.reduce((s, p) => s + p.rollouts, 0)),
    fmtNum(avg((p) => p.mean)),
    fmtNum(avg((p) => p.std)),
    fmtNum(avg((p) => p.correct)),
    fmtNum(a.failures.problems),
    causes === "" ? "none" : causes,
  ];
}

function trainingFreeDetails(r: RunData, tf: TrainingFreeRun): string {
  const parts = [`<h3>${escapeHtml(r.name)}</h3>`];
  parts.push(
    table(
      [
        "agent",
        "complete problems",
        "rollouts",
        "mean μ",
        "mean σ",
        "correct",
        "failed problems",
        "failures by cause",
      ],
      tf.agents.map(agentSummary),
      "agents",
    ),
  );
  if (tf.agents.some((a) => a.failures.problems > 0)) {
    parts.push(
      "<p>Failed rollouts and fusions are not results: the statistics above leave their problems out, and rerunning the command redoes exactly those parts.</p>",
    );
  }
  parts.push("<h4>Tokens and cost</h4>", usageTable(tf));
  if (tf.evalResult) parts.push("<h4>A/B evaluation (grpo tf-eval)</h4>", evalTable(tf.evalResult));
  parts.push(`<h4>Experience libraries</h4>${tf.libraries.map(libraryHtml).join("\n")}`);
  return parts.join("\n");
}

const CSS = `
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:1.5em;margin:0 0 4px}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
.meta{color:#666;font-size:.9em}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,460px),1fr));gap:12px}
figure{margin:0;border:1px solid #e3e3e3;border-radius:4px;padding:4px;background:#fcfcfc;min-width:0}
svg.chart{font-size:11px;display:block;width:100%;height:auto}
.flat-charts{display:flex;flex-wrap:wrap;gap:12px;margin-top:12px}
figure.flat{padding:8px 12px}
figure.flat figcaption{font-size:13px;font-weight:600}
figure.flat ul{list-style:none;margin:6px 0 0;padding:0}
.swatch{display:inline-block;width:14px;height:4px;margin-right:6px;vertical-align:middle}
svg.chart .title{font-size:13px;font-weight:600}
svg.chart .grid{stroke:#e6e6e6;stroke-width:1}
svg.chart .frame{stroke:#999}
svg.chart .tick{fill:#555}
svg.chart .empty{fill:#999;font-size:14px}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}
td pre{white-space:pre-wrap;max-width:60ch;margin:0;font-size:.9em}
table{max-width:100%}
#missing{background:#fff6e5;border:1px solid #f0c36d;padding:4px 12px;border-radius:4px}
.op-added{color:#2a7d2a}.op-deleted{color:#b22}.op-modified{color:#a66b00}
#report-errors{color:#b22}
#report-errors:empty{display:none}
`;

/**
 * Runs first in <head>: page errors and console.error go into #report-errors, where a headless
 * browser's DOM dump shows them. After load, each chart gets data-points = the number of points
 * the browser actually parsed in its polylines.
 */
const SCRIPT = `
(function(){
  var pending=[];
  function record(msg){
    var el=document.getElementById('report-errors');
    if(el){el.textContent+=msg+'\\n';}else{pending.push(msg);}
  }
  window.onerror=function(msg,src,line,col){record('error: '+msg+' ('+src+':'+line+':'+col+')');};
  window.addEventListener('unhandledrejection',function(e){record('unhandled rejection: '+e.reason);});
  window.addEventListener('error',function(e){
    if(e.target&&e.target!==window){record('resource failed: '+(e.target.src||e.target.href||e.target.tagName));}
  },true);
  var orig=console.error;
  console.error=function(){record('console.error: '+Array.prototype.join.call(arguments,' '));return orig.apply(console,arguments);};
  document.addEventListener('DOMContentLoaded',function(){
    var el=document.getElementById('report-errors');
    if(el&&pending.length){el.textContent+=pending.join('\\n')+'\\n';pending=[];}
    var charts=document.querySelectorAll('svg.chart');
    for(var i=0;i<charts.length;i++){
      var n=0,lines=charts[i].querySelectorAll('polyline.series');
      for(var j=0;j<lines.length;j++){n+=lines[j].points.numberOfItems;}
      charts[i].setAttribute('data-points',String(n));
    }
    document.body.setAttribute('data-charts',String(charts.length));
    document.body.setAttribute('data-ready','1');
  });
})();
`;

export interface RenderOptions {
  title?: string;
  /** time shown in the header; passed in so tests get stable output */
  generatedAt?: Date;
}

/** The whole report page for one or several runs (several: the same charts, runs overlaid). */
export function renderReport(runs: readonly RunData[], opts: RenderOptions = {}): string {
  const title = opts.title ?? `GRPO report: ${runs.map((r) => r.name).join(" vs ")}`;
  const body: string[] = [];
  body.push(`<h1>${escapeHtml(title)}</h1>`);
  body.push(
    `<p class="meta">${runs.map((r) => `<code>${escapeHtml(r.dir)}</code>`).join(" · ")}${opts.generatedAt ? ` — generated ${escapeHtml(opts.generatedAt.toISOString())}` : ""}</p>`,
  );
  body.push(problemsSection(runs));
  const parametric = runs
    .filter((r) => r.parametric)
    .map((r) => ({ name: r.name, data: r.parametric!, run: r }));
  const trainingFree = runs
    .filter((r) => r.trainingFree)
    .map((r) => ({ name: r.name, data: r.trainingFree!, run: r }));
  if (parametric.length > 0) {
    body.push(`<section id="parametric"><h2>Training curves</h2>${chartsHtml(parametricCharts(parametric))}`);
    body.push(`<h2>Runs</h2>${parametric.map((p) => parametricDetails(p.run, p.data)).join("\n")}</section>`);
  }
  if (trainingFree.length > 0) {
    body.push(
      `<section id="training-free"><h2>Training-free GRPO</h2>${chartsHtml(trainingFreeCharts(trainingFree))}`,
    );
    body.push(trainingFree.map((t) => trainingFreeDetails(t.run, t.data)).join("\n"), "</section>");
  }
  if (parametric.length === 0 && trainingFree.length === 0) body.push("<p>Nothing to plot yet.</p>");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<script>${SCRIPT}</script>
<style>${CSS}</style>
</head>
<body>
<pre id="report-errors"></pre>
${body.join("\n")}
</body>
</html>
`;
}
