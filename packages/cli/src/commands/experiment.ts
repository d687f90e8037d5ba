import { loadExperimentConfig, resolveFinetune } from '../config';
import { CliError } from '../errors';
import type { CliIo } from '../io';
import { stringifyReportJson } from '../report';
import { notAvailable } from './_not-available';

/**
 * Options of `qlora experiment`.
 *
 * @example
 * const options: ExperimentCommandOptions = { config: 'exp.json', dryRun: true };
 */
export interface ExperimentCommandOptions {
  config?: string;
  /** Validate the config and print the resolved plan; run nothing. */
  dryRun?: boolean;
  resume?: boolean;
  backend?: string;
  runDir?: string;
  json?: boolean;
}

/**
 * `qlora experiment --config exp.json`: the paper's whole flow (base eval, QLoRA fine-tune,
 * eval again, report). The config is validated now (exit 2 on errors, every problem listed);
 * `--dry-run` prints the resolved config and hyperparameters. Running the flow needs
 * @qlora/trainer: until then it throws `NOT_AVAILABLE` (exit 4) after validation.
 *
 * @example
 * await runExperiment({ config: 'exp.json', dryRun: true }, io);
 * // prints the config with defaults filled in and paths resolved against exp.json's folder
 */
export async function runExperiment(
  options: ExperimentCommandOptions,
  io: CliIo,
): Promise<unknown> {
  if (options.config === undefined) {
    if (options.dryRun) {
      throw new CliError(
        'USAGE',
        'qlora experiment --dry-run: expected --config <file>, got none',
        {
          hint: 'Pass --config exp.json (see packages/cli/schema/experiment.schema.json).',
        },
      );
    }
    throw notAvailable(
      'experiment (embedded default)',
      '@qlora/trainer and the embedded tiny model',
    );
  }
  const config = await loadExperimentConfig(options.config, io.cwd);
  if (options.backend !== undefined) config.backend = options.backend as typeof config.backend;
  if (options.runDir !== undefined) config.runDir = options.runDir;
  const plan = { config, finetune: resolveFinetune(config) };
  if (!options.dryRun) throw notAvailable('experiment', '@qlora/trainer');
  if (options.json) {
    io.stdout.write(stringifyReportJson(plan));
  } else {
    io.stdout.write(`config ${options.config} is valid.\n`);
    io.stdout.write(`models: ${config.models.map((m) => `${m.name} (${m.path})`).join(', ')}\n`);
    io.stdout.write(
      `benchmarks: ${Object.keys(config.benchmarks)
        .filter((k) => config.benchmarks[k as keyof typeof config.benchmarks] !== undefined)
        .join(', ')}\n`,
    );
    io.stdout.write(
      `fine-tune: ${config.finetune.dataset.n} samples of ${config.finetune.dataset.path}, preset ${config.finetune.preset}\n`,
    );
    io.stdout.write(`run dir: ${config.runDir}\n\n${JSON.stringify(plan, null, 2)}\n`);
  }
  return plan;
}
