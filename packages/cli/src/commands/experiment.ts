import { join, resolve } from 'node:path';
import { EMBEDDED_DIR } from '../_benchmarks';
import { type ExperimentOutcome, runExperimentFlow } from '../_experiment-run';
import { resolvePath } from '../_fs';
import { type ExperimentConfig, loadExperimentConfig, resolveFinetune } from '../config';
import { CliError } from '../errors';
import type { CliIo } from '../io';
import { stringifyReportJson } from '../report';

/**
 * The built-in default config of `qlora experiment` without `--config`: the embedded tiny Llama
 * and synthetic data under `assets/embedded/` (paths in it resolve against that folder).
 *
 * @example
 * EMBEDDED_CONFIG_PATH; // '…/node_modules/@qlora/cli/assets/embedded/experiment.json'
 */
export const EMBEDDED_CONFIG_PATH: string = join(EMBEDDED_DIR, 'experiment.json');

/**
 * Options of `qlora experiment`.
 *
 * @example
 * const options: ExperimentCommandOptions = { config: 'exp.json', dryRun: true };
 */
export interface ExperimentCommandOptions {
  /** Experiment JSON; default: the built-in embedded config. */
  config?: string;
  /** Validate the config and print the resolved plan; run nothing. */
  dryRun?: boolean;
  /** Accepted for clarity: a run whose directory holds the same config always resumes. */
  resume?: boolean;
  /** Delete a run directory that holds a different config, then start again. */
  force?: boolean;
  backend?: string;
  runDir?: string;
  /** Also fine-tune with this fraction of GSM8K train mixed in (`true`: 0.2). */
  mix?: boolean | number;
  /** Override `finetune.dataset.n`. */
  n?: number;
  json?: boolean;
}

/** Loads the config (or the embedded default) and applies the command-line overrides. */
async function resolveConfig(
  options: ExperimentCommandOptions,
  io: CliIo,
): Promise<ExperimentConfig> {
  const embedded = options.config === undefined;
  const config = await loadExperimentConfig(options.config ?? EMBEDDED_CONFIG_PATH, io.cwd);
  // The embedded config's run directory is relative to where the user runs the command.
  if (embedded)
    config.runDir = resolve(io.cwd, options.mix ? 'runs/embedded-mix' : 'runs/embedded');
  if (options.runDir !== undefined) config.runDir = resolvePath(io.cwd, options.runDir);
  if (options.backend !== undefined) {
    config.backend = options.backend as ExperimentConfig['backend'];
    for (const m of config.models) delete m.backend;
  }
  if (options.n !== undefined) config.finetune.dataset.n = options.n;
  if (options.mix !== undefined && options.mix !== false) {
    const fraction = options.mix === true ? (config.mix?.fraction ?? 0.2) : options.mix;
    if (!(fraction > 0 && fraction < 1)) {
      throw new CliError('USAGE', `--mix: expected a fraction in (0, 1), got ${fraction}`, {
        hint: 'e.g. --mix 0.2 replaces 20% of the fine-tuning samples with GSM8K train items.',
      });
    }
    config.mix = { ...(config.mix ?? {}), fraction };
  }
  return config;
}

/**
 * `qlora experiment [--config exp.json]`: the paper's whole flow. Base evaluation, QLoRA
 * fine-tuning on a seeded N-sample Alpaca subset (plus, with `--mix`, a second run with GSM8K
 * mixed in, reported side by side), fine-tuned evaluation, and `report.md` / `report.json` /
 * SVG charts, all in one run directory. Without `--config` it runs the built-in embedded
 * default (tiny Llama, synthetic data, CPU). Rerunning a killed experiment resumes it.
 * `--dry-run` validates and prints the resolved plan.
 *
 * @example
 * await runExperiment({}, io); // embedded default → runs/embedded/report.md
 * await runExperiment({ config: 'exp.json', dryRun: true }, io); // prints the resolved plan
 */
export async function runExperiment(
  options: ExperimentCommandOptions,
  io: CliIo,
): Promise<unknown> {
  const config = await resolveConfig(options, io);
  const plan = { config, finetune: resolveFinetune(config) };
  if (options.dryRun) {
    if (options.json) {
      io.stdout.write(stringifyReportJson(plan));
    } else {
      io.stdout.write(`config ${options.config ?? EMBEDDED_CONFIG_PATH} is valid.\n`);
      io.stdout.write(`models: ${config.models.map((m) => `${m.name} (${m.path})`).join(', ')}\n`);
      io.stdout.write(
        `benchmarks: ${Object.keys(config.benchmarks)
          .filter((k) => config.benchmarks[k as keyof typeof config.benchmarks] !== undefined)
          .join(', ')}\n`,
      );
      io.stdout.write(
        `fine-tune: ${config.finetune.dataset.n} samples of ${config.finetune.dataset.path}, preset ${config.finetune.preset}${config.mix ? `, and again with ${config.mix.fraction * 100}% GSM8K mixed in` : ''}\n`,
      );
      io.stdout.write(`run dir: ${config.runDir}\n\n${JSON.stringify(plan, null, 2)}\n`);
    }
    return plan;
  }
  const started = performance.now();
  const outcome: ExperimentOutcome = await runExperimentFlow(config, io, {
    ...(options.json === undefined ? {} : { json: options.json }),
    ...(options.force === undefined ? {} : { force: options.force }),
  });
  const total = (performance.now() - started) / 1000;
  if (options.json) {
    io.stdout.write(stringifyReportJson({ ...outcome, totalSeconds: total }));
  } else {
    for (const m of outcome.models) {
      const fr = m.forgettingRate === undefined ? '–' : `${(m.forgettingRate * 100).toFixed(2)}%`;
      io.stdout.write(`${m.name}: Forgetting Rate ${fr}\n`);
    }
    io.stdout.write(`wrote ${outcome.report.join(', ')} (${total.toFixed(0)} s)\n`);
  }
  return outcome;
}
