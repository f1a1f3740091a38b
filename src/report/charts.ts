/**
 * What the report plots: one chart per group of related metrics, with readable titles, axes
 * with units, and runs compared side by side. When runs are compared each run keeps one colour
 * on every chart, and the metrics of one run in one chart differ by their dash pattern.
 */
import type { AgentRun, ParametricRun, TrainingFreeRun } from "./load.ts";
import { type ChartMarker, type ChartSeries, PALETTE, type Point } from "./svg.ts";

export interface ChartSpec {
  title: string;
  series: ChartSeries[];
  markers: ChartMarker[];
  xLabel: string;
  /** the quantity and its unit */
  yLabel: string;
  legend?: boolean;
  /** 0 for quantities that cannot be negative */
  yMin?: number;
  yPercent?: boolean;
  /** counts: ticks at whole numbers only */
  yInteger?: boolean;
}

/** Line styles that tell apart the metrics of one run (solid first). */
export const DASHES = ["", "6 3", "2 2", "8 3 2 3", "1 3"] as const;

/** The colour of run `i` on every chart of a comparison. */
export const runColor = (i: number): string => PALETTE[i % PALETTE.length]!;

interface MetricGroup {
  title: string;
  match: (key: string) => boolean;
  yLabel: string;
  nonNegative?: boolean;
  /** shares in [0, 1], labelled in percent */
  percent?: boolean;
  /** counts (tokens, groups, the phase): ticks at whole numbers */
  integer?: boolean;
  /** draw the best-evaluation marker on this chart */
  best?: boolean;
  /** whether the chart says anything for this run, e.g. only when the option behind it was on */
  shownFor?: (run: ParametricRun, series: readonly (readonly Point[])[]) => boolean;
}

const is =
  (...keys: string[]) =>
  (k: string) =>
    keys.includes(k);

/** Readable names of the metrics the trainers log, for legends and titles. */
export const METRIC_NAMES: Readonly<Record<string, string>> = {
  reward: "reward",
  reward_std: "reward std within groups",
  success_rate: "training success",
  eval_success_rate: "held-out success",
  eval_reward: "held-out reward",
  accuracy: "accuracy",
  "eval/accuracy": "held-out accuracy",
  "eval/success_rate": "held-out success",
  kl: "KL",
  entropy: "entropy",
  "clip_ratio/low_mean": "clipped below 1 − ε",
  "clip_ratio/high_mean": "clipped above 1 + ε",
  loss: "total loss",
  policy_loss: "policy loss",
  grad_norm: "gradient norm",
  trainable_tokens_ratio: "trained share",
  trainable_tokens: "trained tokens",
  completion_tokens: "completion tokens",
  "completions/mean_length": "mean length",
  "completions/clipped_ratio": "cut by the length limit",
  frac_reward_zero_std: "groups with equal rewards",
  dropped_groups: "dropped groups",
  step_time: "step time",
  phase: "curriculum phase",
};

/** A metric's readable name: the table above, a reward component by its name, else the key. */
export function metricName(key: string): string {
  const known = METRIC_NAMES[key];
  if (known) return known;
  const component = /^rewards\/(.+)\/(mean|std)$/.exec(key);
  if (component) return `${component[1]} (${component[2]})`;
  return key.replace(/[_/]+/g, " ").trim();
}

/** A chart title from a metric key no group knows: "my_custom_metric" → "My custom metric". */
function titleOf(key: string): string {
  const name = metricName(key);
  return name.charAt(0).toUpperCase() + name.slice(1);
}

function varies(series: readonly (readonly Point[])[]): boolean {
  return series.some((points) => points.some((p) => p.y !== points[0]?.y));
}

/** Whether a run's recorded configuration turned `option` on (trainer config, or nested under trainer). */
function optionOn(config: unknown, option: string): boolean {
  const c = config as Record<string, unknown> | undefined;
  const value = c?.[option] ?? (c?.trainer as Record<string, unknown> | undefined)?.[option];
  return value !== undefined && value !== null && value !== false;
}

/** Known history keys in reading order; a key goes to the first group that matches it. */
export const METRIC_GROUPS: readonly MetricGroup[] = [
  { title: "Reward: mean, band ± std within groups", match: is("reward"), yLabel: "reward" },
  {
    title: "Success rate",
    match: is("success_rate", "accuracy", "eval_success_rate", "eval/accuracy", "eval/success_rate"),
    yLabel: "share of samples",
    nonNegative: true,
    percent: true,
    best: true,
  },
  { title: "Held-out evaluation", match: (k) => /^eval[/_]/.test(k), yLabel: "reward", best: true },
  {
    title: "Reward components",
    match: (k) => /^rewards\/.+\/mean$/.test(k),
    yLabel: "reward (mean over completions)",
  },
  { title: "KL to the reference", match: is("kl"), yLabel: "KL (nats per token)", nonNegative: true },
  { title: "Entropy", match: is("entropy"), yLabel: "entropy (nats per token)", nonNegative: true },
  {
    title: "Clipped importance ratios",
    match: (k) => k.startsWith("clip_ratio"),
    yLabel: "share of tokens",
    nonNegative: true,
    percent: true,
  },
  { title: "Loss", match: is("loss", "policy_loss"), yLabel: "loss" },
  { title: "Gradient norm", match: is("grad_norm"), yLabel: "L2 norm", nonNegative: true },
  {
    title: "Trained share of the completion tokens",
    match: is("trainable_tokens_ratio"),
    yLabel: "share of tokens",
    nonNegative: true,
    percent: true,
  },
  {
    title: "Tokens per step",
    match: is("trainable_tokens", "completion_tokens"),
    yLabel: "tokens",
    nonNegative: true,
    integer: true,
  },
  {
    title: "Completion length",
    match: is("completions/mean_length"),
    yLabel: "tokens",
    nonNegative: true,
  },
  {
    title: "Truncated completions",
    match: (k) => k.startsWith("completions/"),
    yLabel: "share of completions",
    nonNegative: true,
    percent: true,
  },
  {
    title: "Groups with equal rewards (no signal)",
    match: is("frac_reward_zero_std"),
    yLabel: "share of groups",
    nonNegative: true,
    percent: true,
  },
  {
    title: "Groups dropped by dynamic sampling",
    match: is("dropped_groups"),
    yLabel: "groups",
    nonNegative: true,
    integer: true,
  },
  {
    title: "Reward std within groups",
    match: (k) => k === "reward_std" || /^rewards\/.+\/std$/.test(k),
    yLabel: "reward std",
    nonNegative: true,
  },
  { title: "Step time", match: is("step_time"), yLabel: "seconds", nonNegative: true },
  {
    title: "Curriculum phase",
    match: is("phase"),
    yLabel: "phase",
    nonNegative: true,
    integer: true,
    // without --use-curriculum the phase is the task's fixed one: nothing to plot
    shownFor: (run, series) => optionOn(run.config, "curriculum") || varies(series),
  },
];

function groupKeys(keys: readonly string[]): { group: MetricGroup; keys: string[] }[] {
  const out = METRIC_GROUPS.map((group) => ({ group, keys: [] as string[] }));
  const rest: { group: MetricGroup; keys: string[] }[] = [];
  for (const key of keys) {
    const slot = out.find((g) => g.group.match(key));
    if (slot) slot.keys.push(key);
    else rest.push({ group: { title: titleOf(key), match: is(key), yLabel: key }, keys: [key] });
  }
  return [...out.filter((g) => g.keys.length > 0), ...rest];
}

/** Step of the best evaluation: best_model's metadata, else training_stats' best, else none. */
export function bestStep(p: ParametricRun): number | undefined {
  const fromMeta = p.best?.step;
  if (typeof fromMeta === "number") return fromMeta;
  const best = p.trainingStats?.best as { step?: unknown } | null | undefined;
  if (best && typeof best.step === "number") return best.step;
  return undefined;
}

/** What best_model/ was chosen by: the trainers keep the highest held-out success rate. */
export const BEST_MEASURE = "held-out success";

/** Charts of the parametric runs' history: one chart per metric group, runs overlaid. */
export function parametricCharts(runs: readonly { name: string; data: ParametricRun }[]): ChartSpec[] {
  const keys: string[] = [];
  for (const r of runs) for (const k of r.data.series.keys()) if (!keys.includes(k)) keys.push(k);
  const several = runs.length > 1;
  const charts: ChartSpec[] = [];
  for (const { group, keys: gk } of groupKeys(keys)) {
    const series: ChartSeries[] = [];
    const markers: ChartMarker[] = [];
    runs.forEach((r, ri) => {
      const own = gk.flatMap((key) => {
        const points = r.data.series.get(key);
        return points ? [{ key, points }] : [];
      });
      if (own.length === 0) return;
      if (
        group.shownFor &&
        !group.shownFor(
          r.data,
          own.map((o) => o.points),
        )
      )
        return;
      for (const { key, points } of own) {
        const ki = gk.indexOf(key);
        const name = several ? (gk.length > 1 ? `${r.name}: ${metricName(key)}` : r.name) : metricName(key);
        const band = key === "reward" ? r.data.series.get("reward_std") : undefined;
        series.push({
          name,
          points,
          band,
          color: several ? runColor(ri) : runColor(ki),
          dash: several ? DASHES[ki % DASHES.length] || undefined : undefined,
        });
        if (group.best && key.startsWith("eval")) {
          const step = bestStep(r.data);
          const at = step === undefined ? undefined : points.find((p) => p.x === step);
          if (at) {
            markers.push({
              x: at.x,
              y: at.y,
              label: `${several ? `${r.name}: ` : ""}best by ${BEST_MEASURE} @${at.x}`,
              ...(several ? { color: runColor(ri) } : {}),
            });
          }
        }
      }
    });
    if (series.length === 0) continue;
    charts.push({
      title: group.title,
      series,
      markers,
      legend: several || series.length > 1,
      xLabel: "GRPO step",
      yLabel: group.yLabel,
      ...(group.nonNegative ? { yMin: 0 } : {}),
      ...(group.percent ? { yPercent: true } : {}),
      ...(group.integer ? { yInteger: true } : {}),
    });
  }
  return charts;
}

function perProblem(agent: AgentRun, field: "mean" | "std" | "correct"): Point[] {
  return agent.problems.map((p, i) => ({ x: i + 1, y: p[field] }));
}

/** Charts of training-free runs: μ ± σ per problem and correctness per agent, library growth. */
export function trainingFreeCharts(runs: readonly { name: string; data: TrainingFreeRun }[]): ChartSpec[] {
  const several = runs.length > 1;
  const agents: string[] = [];
  for (const r of runs) for (const a of r.data.agents) if (!agents.includes(a.agent)) agents.push(a.agent);
  const charts: ChartSpec[] = [];
  for (const agent of agents) {
    const series: ChartSeries[] = [];
    runs.forEach((r, ri) => {
      const a = r.data.agents.find((x) => x.agent === agent);
      if (!a) return;
      series.push({
        name: several ? r.name : "μ (band: σ)",
        points: perProblem(a, "mean"),
        band: perProblem(a, "std"),
        color: runColor(ri),
      });
    });
    charts.push({
      title: `${agent}: reward μ ± σ per problem`,
      series,
      legend: several,
      markers: [],
      xLabel: "problem (order in the cache file)",
      yLabel: "r_total (weighted reward, 0 to 1)",
      yMin: 0,
    });
  }
  /** Several runs: colour by run, dash by agent (or library); one run: a colour per agent. */
  const style = (ri: number, i: number) =>
    several ? { color: runColor(ri), dash: DASHES[i % DASHES.length] || undefined } : { color: runColor(i) };
  const correct: ChartSeries[] = [];
  runs.forEach((r, ri) => {
    for (const a of r.data.agents) {
      correct.push({
        name: several ? `${r.name}: ${a.agent}` : a.agent,
        points: perProblem(a, "correct"),
        ...style(ri, agents.indexOf(a.agent)),
      });
    }
  });
  if (correct.length > 0) {
    charts.push({
      title: "Correct rollouts per problem",
      series: correct,
      markers: [],
      legend: true,
      xLabel: "problem (order in the cache file)",
      yLabel: "share of rollouts",
      yMin: 0,
      yPercent: true,
    });
  }
  const owners: string[] = [];
  for (const r of runs) for (const l of r.data.libraries) if (!owners.includes(l.owner)) owners.push(l.owner);
  const sizes: ChartSeries[] = [];
  runs.forEach((r, ri) => {
    for (const l of r.data.libraries) {
      if (l.sizeOverTime.length === 0) continue;
      sizes.push({
        name: several ? `${r.name}: ${l.owner}` : l.owner,
        points: l.sizeOverTime,
        ...style(ri, owners.indexOf(l.owner)),
      });
    }
  });
  if (sizes.length > 0) {
    charts.push({
      title: "Experience library size",
      series: sizes,
      markers: [],
      legend: true,
      xLabel: "problems that changed the library",
      yLabel: "lessons",
      yMin: 0,
      yInteger: true,
    });
  }
  return charts;
}

/** The one value of a series that never changes (NaN-free), else undefined. */
export function constantValue(points: readonly Point[]): number | undefined {
  const ys = points.map((p) => p.y).filter(Number.isFinite);
  if (ys.length === 0) return undefined;
  const lo = Math.min(...ys);
  const hi = Math.max(...ys);
  return hi - lo <= 1e-12 * Math.max(1, Math.abs(hi)) ? ys[0] : undefined;
}
