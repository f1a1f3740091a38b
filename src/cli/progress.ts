/**
 * The one progress display of the command line: a bar on a terminal, plain lines elsewhere
 * (logs, pipes, SLURM output), so that `grep '^Step'` finds the step lines of a log file.
 */
import cliProgress from "cli-progress";

export interface Progress {
  /** Advance by `n` and show the given fields (e.g. reward, μ, σ). */
  tick(n?: number, fields?: Record<string, string | number>): void;
  /**
   * A line that should stay in the log (a decision, a warning). Without a terminal, a line that
   * starts like a step line ("Step 3/100 …") stands for the next tick, which then writes none.
   */
  log(line: string): void;
  /**
   * A recipe's own line for a step (e.g. `Step 3/100 | Loss: …`), then advance by `n`: the line
   * is the step's record, so without a terminal no second line repeats it.
   */
  logStep(line: string, n?: number, fields?: Record<string, string | number>): void;
  stop(): void;
}

export interface ProgressOptions {
  label: string;
  total: number;
  /** Defaults to whether the stream is a terminal; plain lines otherwise, so logs stay readable. */
  tty?: boolean;
  stream?: NodeJS.WriteStream | NodeJS.WritableStream;
  /** What one tick counts, the first word of a plain tick line ("Step 3/100 | …"). */
  unit?: string;
  /**
   * Start every plain line with the label: for several agents writing to one stream, where the
   * label is what tells their lines apart.
   */
  tagLines?: boolean;
  /** Fields that are shares in [0, 1], shown in percent like the commands' final lines. */
  rates?: readonly string[];
}

/** Field names the commands use for shares: success rates and accuracies. */
export const RATE_FIELDS: readonly string[] = [
  "success",
  "success_rate",
  "eval_success",
  "eval_success_rate",
  "acc",
  "accuracy",
  "eval_accuracy",
];

/** 0.375 → "37.5%", as every command's closing summary shows a share. */
export function percent(share: number): string {
  return `${fixed(100 * share, 1)}%`;
}

/** `v` with `digits` decimals; a value that rounds to zero has no sign worth showing ("0.0000", not "-0.0000"). */
export function fixed(v: number, digits: number): string {
  const text = v.toFixed(digits);
  return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text;
}

/** Seconds as "0.4s", "42s", "3m05s", "1h02m". */
export function formatDuration(seconds: number): string {
  if (seconds < 9.95) return `${Math.max(0, seconds).toFixed(1)}s`;
  const t = Math.round(seconds);
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, "0")}s`;
  return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, "0")}m`;
}

function formatValue(key: string, v: string | number, rates: readonly string[]): string {
  if (typeof v === "string") return v;
  if (rates.includes(key)) return percent(v);
  return Number.isInteger(v) ? String(v) : fixed(v, 4);
}

function formatFields(
  fields: Record<string, string | number>,
  rates: readonly string[],
  pair: (k: string, v: string) => string,
  sep: string,
): string {
  return Object.entries(fields)
    .map(([k, v]) => pair(k, formatValue(k, v, rates)))
    .join(sep);
}

/**
 * The plain line of one step: `Step 3/100 | reward: 0.4123 | success: 37.5%`, the line a log
 * holds per tick without a terminal, and the form a command's own step lines can take.
 */
export function stepLine(
  step: number,
  total: number,
  fields: Record<string, string | number> = {},
  opts: { unit?: string; rates?: readonly string[] } = {},
): string {
  const rest = formatFields(fields, opts.rates ?? RATE_FIELDS, (k, v) => `${k}: ${v}`, " | ");
  return `${opts.unit ?? "Step"} ${step}/${total}${rest ? ` | ${rest}` : ""}`;
}

/** Bars still on screen, so that an error message or an exit never lands on a bar's line. */
const active = new Set<() => void>();

/** Stops every bar still drawing (main does this before it prints an error). */
export function stopAllProgress(): void {
  for (const stop of [...active]) stop();
}

process.once("exit", stopAllProgress);

/** A progress bar on a terminal, one plain line per tick elsewhere (CI, pipes, files). */
export function createProgress(opts: ProgressOptions): Progress {
  const stream = (opts.stream ?? process.stdout) as NodeJS.WriteStream;
  const tty = opts.tty ?? Boolean(stream.isTTY);
  const rates = opts.rates ?? RATE_FIELDS;
  const unit = opts.unit ?? "Step";
  const tag = (line: string) => (opts.tagLines ? `${opts.label}: ${line}` : line);
  let done = 0;
  if (!tty) {
    // whether the command wrote its own line for the coming step (e.g. the seed's "Step 3/100 | …")
    let stepLogged = false;
    const write = (line: string) => stream.write(`${tag(line)}\n`);
    return {
      tick(n = 1, fields = {}) {
        done += n;
        if (!stepLogged) write(stepLine(done, opts.total, fields, { unit, rates }));
        stepLogged = false;
      },
      log(line) {
        write(line);
        if (line.startsWith(`${unit} `)) stepLogged = true;
      },
      logStep(line, n = 1) {
        write(line);
        done += n;
        stepLogged = false;
      },
      stop() {},
    };
  }

  let bar: cliProgress.SingleBar | undefined;
  let fieldsText = "";
  const columns = () => stream.columns || 80;
  const format = (options: cliProgress.Options, params: cliProgress.Params): string => {
    const elapsed = (Date.now() - params.startTime) / 1000;
    const eta = params.eta as unknown;
    const time =
      params.value >= params.total
        ? `took ${formatDuration(elapsed)}`
        : typeof eta === "number" && Number.isFinite(eta) && params.value > 0
          ? `ETA ${formatDuration(eta)}`
          : "ETA …";
    const text =
      `${opts.label} [${cliProgress.Format.BarFormat(params.progress, options)}] ` +
      `${params.value}/${params.total} ${time}${fieldsText ? ` ${fieldsText}` : ""}`;
    // One column short of the width: a line that fills the row would wrap on some terminals.
    return text.slice(0, Math.max(1, columns() - 1));
  };
  const stop = () => {
    if (!bar) return;
    const b = bar;
    bar = undefined;
    active.delete(stop);
    // cli-progress's stop returns the cursor to where the bar started (ESC 8); once log lines
    // have scrolled the screen that row holds old log text. Saving the position on the bar's
    // own row first makes the restore a no-op, so what follows starts on the next line.
    stream.write("\x1b7");
    b.stop();
  };
  const start = () => {
    bar = new cliProgress.SingleBar(
      {
        format,
        stream,
        barsize: 20,
        // the terminal keeps wrapping long lines (format cuts the bar's own line to the width),
        // so an error printed after an interrupted run is never cut at the screen edge
        linewrap: true,
        forceRedraw: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    // Starting at the first tick's value keeps a resumed run's first jump out of the ETA.
    bar.start(opts.total, done, {});
    active.add(stop);
  };
  const advance = (n: number, fields: Record<string, string | number>) => {
    done += n;
    if (Object.keys(fields).length > 0) fieldsText = formatFields(fields, rates, (k, v) => `${k}=${v}`, " ");
    // The bar appears with the first tick: a run refused before any step leaves no empty bar.
    if (!bar) {
      if (opts.total > 0) start();
    } else bar.update(done);
  };
  const log = (line: string) => {
    if (!bar) {
      stream.write(`${tag(line)}\n`);
      return;
    }
    // Writing over the bar's row and redrawing the bar below keeps the line in scrollback.
    stream.write(`\r\x1b[K${tag(line)}\n`);
    bar.render();
  };
  return {
    tick(n = 1, fields = {}) {
      advance(n, fields);
    },
    log,
    logStep(line, n = 1, fields = {}) {
      log(line);
      advance(n, fields);
    },
    stop,
  };
}
