import cliProgress from "cli-progress";

export interface Progress {
  /** Advance by `n` and show the given fields (e.g. reward, μ, σ). */
  tick(n?: number, fields?: Record<string, string | number>): void;
  /** A line that should stay in the log (a decision, a warning). */
  log(line: string): void;
  stop(): void;
}

export interface ProgressOptions {
  label: string;
  total: number;
  /** Defaults to whether stdout is a terminal; plain lines otherwise, so logs stay readable. */
  tty?: boolean;
  stream?: NodeJS.WriteStream | NodeJS.WritableStream;
}

function formatFields(fields: Record<string, string | number>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === "number" ? (Number.isInteger(v) ? v : v.toFixed(4)) : v}`)
    .join(" ");
}

/** A progress bar on a terminal, one plain line per tick elsewhere (CI, pipes, files). */
export function createProgress(opts: ProgressOptions): Progress {
  const stream = (opts.stream ?? process.stdout) as NodeJS.WriteStream;
  const tty = opts.tty ?? Boolean(stream.isTTY);
  let done = 0;
  if (!tty) {
    return {
      tick(n = 1, fields = {}) {
        done += n;
        stream.write(`[${opts.label}] ${done}/${opts.total} ${formatFields(fields)}\n`);
      },
      log(line) {
        stream.write(`[${opts.label}] ${line}\n`);
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: `${opts.label} [{bar}] {value}/{total} {eta_formatted} {fields}`,
      stream,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(opts.total, 0, { fields: "" });
  return {
    tick(n = 1, fields = {}) {
      done += n;
      bar.update(done, { fields: formatFields(fields) });
    },
    log(line) {
      // Writing above the bar keeps the message in scrollback instead of being overdrawn.
      stream.write(`\r\x1b[K${line}\n`);
      bar.render();
    },
    stop() {
      bar.stop();
    },
  };
}
