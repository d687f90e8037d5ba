import cliProgress from 'cli-progress';
import type { CliIo } from './io';

/**
 * A progress indicator for one counted task.
 *
 * @example
 * const progress = createProgress(io, { total: 7, label: 'quantize' });
 * progress.increment(1, 'q_proj'); progress.stop();
 */
export interface Progress {
  /** Advances by `step` (default 1); `item` names what is being worked on. */
  increment(step?: number, item?: string): void;
  /** Ends the bar (prints a final line in line mode). Safe to call twice. */
  stop(): void;
  /** How it renders: `bar` (TTY), `lines` (pipe, CI log) or `silent` (`--json`). */
  readonly mode: ProgressMode;
}

/**
 * `bar`: a redrawn cli-progress bar with ETA. `lines`: a plain line at each 10%. `silent`: nothing.
 *
 * @example
 * const mode: ProgressMode = 'lines';
 */
export type ProgressMode = 'bar' | 'lines' | 'silent';

/**
 * Options of {@link createProgress}.
 *
 * @example
 * const options: ProgressOptions = { total: 224, label: 'quantize', json: false };
 */
export interface ProgressOptions {
  total: number;
  label: string;
  /** `--json` output: progress stays silent so stdout/stderr carry only JSON. */
  json?: boolean;
  /** Force a mode; default: silent with `json`, else a bar on a TTY, else lines. */
  mode?: ProgressMode;
}

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${Math.round(seconds)}s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m}m${Math.round(seconds % 60)}s` : `${Math.floor(m / 60)}h${m % 60}m`;
}

/**
 * Progress on `io.stderr` (stdout stays clean for results): a cli-progress bar with ETA when
 * stderr is a TTY, a line every 10% when it is not (logs, CI), nothing in `--json` mode.
 *
 * @example
 * const progress = createProgress(io, { total: tensors.length, label: 'quantize' });
 * for (const name of tensors) { await work(name); progress.increment(1, name); }
 * progress.stop();
 * // lines mode: "quantize: 10/100 (10%), ETA 42s"
 */
export function createProgress(io: CliIo, options: ProgressOptions): Progress {
  const total = Math.max(0, options.total);
  const mode: ProgressMode =
    options.mode ?? (options.json ? 'silent' : io.stderr.isTTY ? 'bar' : 'lines');
  let value = 0;
  let stopped = false;

  if (mode === 'bar') {
    const bar = new cliProgress.SingleBar(
      {
        format: `${options.label} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted} | {item}`,
        stream: io.stderr as unknown as NodeJS.WritableStream,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 20,
        noTTYOutput: false,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { item: '' });
    return {
      mode,
      increment(step = 1, item = '') {
        value += step;
        bar.increment(step, { item });
      },
      stop() {
        if (stopped) return;
        stopped = true;
        bar.stop();
      },
    };
  }

  const started = Date.now();
  let lastBucket = 0;
  const line = (): string => {
    const pct = total === 0 ? 100 : Math.floor((value / total) * 100);
    const elapsed = (Date.now() - started) / 1000;
    const eta = value === 0 ? Number.NaN : (elapsed / value) * (total - value);
    return `${options.label}: ${value}/${total} (${pct}%), ${value >= total ? `done in ${formatSeconds(elapsed)}` : `ETA ${formatSeconds(eta)}`}\n`;
  };
  return {
    mode,
    increment(step = 1) {
      value += step;
      if (mode !== 'lines' || total === 0) return;
      const bucket = Math.floor((value / total) * 10);
      if (bucket > lastBucket && value < total) {
        lastBucket = bucket;
        io.stderr.write(line());
      }
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (mode === 'lines') io.stderr.write(line());
    },
  };
}
