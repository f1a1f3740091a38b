/**
 * Line charts as SVG strings: axes, ticks, several series, an optional ± band and point markers.
 * Pure functions, no DOM, so the geometry is testable without a browser.
 */

export interface Point {
  x: number;
  y: number;
}

export interface ChartSeries {
  name: string;
  points: readonly Point[];
  /** Half-width of a band drawn around the line at each x (e.g. the reward std), same x values. */
  band?: readonly Point[];
  /** default: the palette colour of the series' position */
  color?: string;
  /** SVG stroke-dasharray: tells apart the series of one colour (one run's metrics) */
  dash?: string;
}

export interface ChartMarker {
  x: number;
  y: number;
  label: string;
  /** default black; the run's colour when runs are compared */
  color?: string;
}

export interface LineChartOptions {
  title: string;
  series: readonly ChartSeries[];
  xLabel?: string;
  yLabel?: string;
  markers?: readonly ChartMarker[];
  width?: number;
  height?: number;
  /** draw the legend even for one series (e.g. when runs are compared and only one has the metric) */
  legend?: boolean;
  /**
   * The y axis reaches down to this value at least: 0 for quantities that cannot be negative,
   * so a small share is drawn near the floor instead of filling the plot.
   */
  yMin?: number;
  /** y values are shares in [0, 1], labelled in percent */
  yPercent?: boolean;
  /** y values are counts: no tick between whole numbers */
  yInteger?: boolean;
}

export const PALETTE = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
];

/** Series with more points than this get no per-point circles: the line alone stays readable. */
const MAX_CIRCLES = 60;
const LEGEND_ROW = 14;

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** Points whose coordinates are both finite numbers; NaN, ±Infinity and nulls are not drawn. */
export function finitePoints(points: readonly Point[]): Point[] {
  return points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
}

export interface Range {
  min: number;
  max: number;
}

/**
 * Data range widened so that it is never empty: a single value or a constant series gets
 * ±10% of its magnitude (±1 around zero), so the point lands mid-axis instead of dividing by 0.
 */
export function paddedRange(values: readonly number[]): Range {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return { min: 0, max: 1 };
  let min = Math.min(...finite);
  let max = Math.max(...finite);
  if (min === max) {
    const pad = Math.abs(min) * 0.1 || 1;
    min -= pad;
    max += pad;
  }
  return { min, max };
}

/**
 * `range` cut or stretched to start at `floor` when every value is at or above it: a quantity
 * that cannot be negative gets an axis from 0, and a constant 0 gets 0…1 instead of −1…1.
 */
export function floorRange(range: Range, values: readonly number[], floor?: number): Range {
  if (floor === undefined) return range;
  const finite = values.filter(Number.isFinite);
  if (finite.some((v) => v < floor)) return range;
  const max = Math.max(range.max, floor);
  return { min: floor, max: max > floor ? max : floor + 1 };
}

/** Round step (1, 2 or 5 × 10^k) giving about `count` ticks over the range. */
export function niceStep(span: number, count = 5): number {
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const nice = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  return nice * mag;
}

/** Range extended outwards to whole tick steps, with the ticks themselves (exact multiples of the step). */
export function niceTicks(
  range: Range,
  count = 5,
  minStep = 0,
): { min: number; max: number; step: number; ticks: number[] } {
  const step = Math.max(minStep, niceStep(range.max - range.min, count));
  const lo = Math.floor(range.min / step + 1e-9);
  const hi = Math.ceil(range.max / step - 1e-9);
  const decimals = Math.max(0, -Math.floor(Math.log10(step)));
  // k·step in floating point gives 0.30000000000000004 or -5.6e-17 instead of 0.3 and 0
  const at = (k: number) => (decimals <= 15 ? Number((k * step).toFixed(decimals)) : k * step) || 0;
  const ticks: number[] = [];
  for (let k = lo; k <= hi; k++) ticks.push(at(k));
  return { min: at(lo), max: at(hi), step, ticks };
}

/** Tick label with just enough decimals to tell neighbouring ticks `step` apart. */
export function formatTick(v: number, step = 0): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e6 || (step > 0 ? step < 1e-4 : a < 1e-4))
    return v.toExponential(Math.min(3, decimalsFor(step, a)));
  if (step <= 0) return String(Number(v.toPrecision(4)));
  return v.toFixed(Math.max(0, -Math.floor(Math.log10(step) + 1e-9)));
}

function decimalsFor(step: number, a: number): number {
  if (step <= 0) return 1;
  return Math.max(1, Math.floor(Math.log10(a)) - Math.floor(Math.log10(step)));
}

function fmt(n: number): string {
  return String(Math.round(n * 100) / 100);
}

/** Number of points a chart draws (finite points over all series); what the page reports as data-points. */
export function countDrawnPoints(series: readonly ChartSeries[]): number {
  return series.reduce((n, s) => n + finitePoints(s.points).length, 0);
}

/**
 * One line chart. Every series becomes a `<polyline class="series">` whose point list holds its
 * finite points in x order; the page counts those after load to prove the chart drew.
 */
export function lineChart(opts: LineChartOptions): string {
  const width = opts.width ?? 560;
  // a legend (several series) goes under the axis label, one row per series, so it never hides data
  const legendRows = opts.series.length > 1 || opts.legend ? opts.series.length : 0;
  const height = (opts.height ?? 300) + legendRows * LEGEND_ROW;
  const margin = { left: 64, right: 16, top: 28, bottom: 44 + legendRows * LEGEND_ROW };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const series = opts.series.map((s) => ({
    ...s,
    points: finitePoints(s.points).sort((a, b) => a.x - b.x),
  }));
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of series) {
    for (const p of s.points) {
      xs.push(p.x);
      ys.push(p.y);
    }
    for (const b of finitePoints(s.band ?? [])) {
      const center = s.points.find((p) => p.x === b.x);
      if (center) ys.push(center.y - Math.abs(b.y), center.y + Math.abs(b.y));
    }
  }
  for (const m of opts.markers ?? []) {
    if (Number.isFinite(m.x) && Number.isFinite(m.y)) {
      xs.push(m.x);
      ys.push(m.y);
    }
  }
  // steps and problem numbers are integers: no tick at 1.5
  const xr = niceTicks(paddedRange(xs), 6, xs.every(Number.isInteger) ? 1 : 0);
  const yr = niceTicks(floorRange(paddedRange(ys), ys, opts.yMin), 5, opts.yInteger ? 1 : 0);
  const yTick = (t: number) =>
    opts.yPercent ? `${formatTick(t * 100, yr.step * 100)}%` : formatTick(t, yr.step);
  const sx = (x: number) => margin.left + ((x - xr.min) / (xr.max - xr.min)) * plotW;
  const sy = (y: number) => margin.top + plotH - ((y - yr.min) / (yr.max - yr.min)) * plotH;
  const out: string[] = [];
  const total = countDrawnPoints(series);
  out.push(
    `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(opts.title)}" data-expected-points="${total}">`,
  );
  out.push(
    `<text class="title" x="${width / 2}" y="16" text-anchor="middle">${escapeXml(opts.title)}</text>`,
  );
  // grid and ticks
  for (const t of yr.ticks) {
    const y = fmt(sy(t));
    out.push(
      `<line class="grid" x1="${margin.left}" x2="${margin.left + plotW}" y1="${y}" y2="${y}"/>`,
      `<text class="tick" x="${margin.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${yTick(t)}</text>`,
    );
  }
  for (const t of xr.ticks) {
    const x = fmt(sx(t));
    out.push(
      `<line class="grid" x1="${x}" x2="${x}" y1="${margin.top}" y2="${margin.top + plotH}"/>`,
      `<text class="tick" x="${x}" y="${margin.top + plotH + 16}" text-anchor="middle">${formatTick(t, xr.step)}</text>`,
    );
  }
  out.push(
    `<rect class="frame" x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none"/>`,
  );
  if (opts.xLabel) {
    out.push(
      `<text class="label" x="${margin.left + plotW / 2}" y="${margin.top + plotH + 34}" text-anchor="middle">${escapeXml(opts.xLabel)}</text>`,
    );
  }
  if (opts.yLabel) {
    out.push(
      `<text class="label" transform="translate(14 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(opts.yLabel)}</text>`,
    );
  }
  const colorOf = (i: number) => series[i]!.color ?? PALETTE[i % PALETTE.length]!;
  series.forEach((s, i) => {
    const color = colorOf(i);
    const band = finitePoints(s.band ?? []);
    if (band.length > 0) {
      const upper: string[] = [];
      const lower: string[] = [];
      for (const p of s.points) {
        const b = band.find((q) => q.x === p.x);
        if (!b) continue;
        upper.push(`${fmt(sx(p.x))},${fmt(sy(p.y + Math.abs(b.y)))}`);
        lower.unshift(`${fmt(sx(p.x))},${fmt(sy(p.y - Math.abs(b.y)))}`);
      }
      if (upper.length > 0) {
        // a light fill and a dotted edge in the series' colour, so overlapping bands stay apart
        out.push(
          `<polygon class="band" data-series="${escapeXml(s.name)}" points="${[...upper, ...lower].join(" ")}" fill="${color}" fill-opacity="0.12" stroke="${color}" stroke-opacity="0.7" stroke-width="1" stroke-dasharray="2 2"/>`,
        );
      }
    }
    const pts = s.points.map((p) => `${fmt(sx(p.x))},${fmt(sy(p.y))}`).join(" ");
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : "";
    out.push(
      `<polyline class="series" data-series="${escapeXml(s.name)}" points="${pts}" fill="none" stroke="${color}" stroke-width="1.8"${dash}/>`,
    );
    if (s.points.length <= MAX_CIRCLES) {
      for (const p of s.points) {
        out.push(`<circle class="pt" cx="${fmt(sx(p.x))}" cy="${fmt(sy(p.y))}" r="2.6" fill="${color}"/>`);
      }
    }
  });
  (opts.markers ?? []).forEach((m, i) => {
    if (!Number.isFinite(m.x) || !Number.isFinite(m.y)) return;
    const x = fmt(sx(m.x));
    const y = fmt(sy(m.y));
    // labels stack downwards so that markers at the same step stay readable
    const ly = margin.top + 10 + i * 12;
    const fill = m.color ? ` fill="${m.color}"` : "";
    out.push(
      `<g class="marker"><line x1="${x}" x2="${x}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="${m.color ?? "#555"}" stroke-dasharray="4 3"/>`,
      `<circle cx="${x}" cy="${y}" r="5" fill="none" stroke="${m.color ?? "#000"}" stroke-width="1.5"/>`,
      // label on the side with room: left of the line in the right half of the plot
      sx(m.x) > margin.left + plotW / 2
        ? `<text x="${x}" y="${ly}" dx="-4" text-anchor="end" class="marker-label"${fill}>${escapeXml(m.label)}</text></g>`
        : `<text x="${x}" y="${ly}" dx="4" class="marker-label"${fill}>${escapeXml(m.label)}</text></g>`,
    );
  });
  if (legendRows > 0) {
    series.forEach((s, i) => {
      const y = margin.top + plotH + 44 + i * LEGEND_ROW;
      const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : "";
      out.push(
        `<g class="legend"><line x1="${margin.left}" x2="${margin.left + 16}" y1="${y}" y2="${y}" stroke="${colorOf(i)}" stroke-width="2.5"${dash}/>`,
        `<text x="${margin.left + 20}" y="${y}" dominant-baseline="middle">${escapeXml(s.name)}</text></g>`,
      );
    });
  }
  if (total === 0) {
    out.push(
      `<text class="empty" x="${margin.left + plotW / 2}" y="${margin.top + plotH / 2}" text-anchor="middle">no data</text>`,
    );
  }
  out.push("</svg>");
  return out.join("\n");
}
