import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { describeError } from './_describe-error';
import { VERSION } from './_version';
import { runCompare } from './commands/compare';
import { runEval } from './commands/eval';
import { runExperiment } from './commands/experiment';
import { runInspect } from './commands/inspect';
import { runMerge } from './commands/merge';
import { runQuantize } from './commands/quantize';
import { runTrain } from './commands/train';
import { EXIT_CODES } from './errors';
import type { CliIo } from './io';

const BACKENDS = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'];

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer, got "${value}"`);
  return n;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0)
    throw new InvalidArgumentError(`expected a number ≥ 0, got "${value}"`);
  return n;
}

const list = (value: string): string[] =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

/**
 * Builds the `qlora` commander program with every command wired to its `run*` function over
 * `io`. Commander never calls `process.exit` (exitOverride) and writes only through `io`.
 *
 * @example
 * const program = createProgram(io);
 * program.commands.map((c) => c.name()); // ['compare', 'inspect', 'quantize', 'experiment', 'eval', 'train', 'merge']
 */
export function createProgram(io: CliIo): Command {
  const program = new Command('qlora');
  program
    .description(
      "QLoRA fine-tuning and LLM evaluation in TypeScript: compare lm-eval results as the paper's Table 2, inspect and quantize checkpoints, run experiments.",
    )
    .version(VERSION, '-V, --version', 'print the version')
    .option(
      '--json',
      'machine-readable JSON on stdout (errors as JSON on stderr, no progress bars)',
    )
    .option('--debug', 'print stack traces of errors')
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (text) => void io.stdout.write(text),
      writeErr: (text) => void io.stderr.write(text),
      // Errors are printed once, by runCli, as one line plus a hint.
      outputError: () => undefined,
      getOutHelpWidth: () => io.stdout.columns ?? 100,
      getErrHelpWidth: () => io.stderr.columns ?? 100,
    })
    .addHelpText(
      'after',
      `\nExit codes: 0 ok, 1 runtime failure, 2 usage or config error, 3 input file invalid, 4 command not available yet, 130 interrupted.\n${examples(
        [
          'qlora compare base/results.json ft/results.json --mmlu-subtasks mmlu_college_computer_science',
          'qlora inspect models/Llama-3.2-1B',
          'qlora quantize models/Llama-3.2-1B --out models/Llama-3.2-1B-nf4 --double-quant',
          'qlora experiment --config exp.json --dry-run',
        ],
      )}`,
    );

  const globals = (command: Command) => command.optsWithGlobals() as { json?: boolean };

  program
    .command('compare')
    .description(
      "Compare two lm-evaluation-harness results files as the paper's Table 2 (FR, ΔA, ΔK)",
    )
    .argument('<base>', 'results_*.json of the base model')
    .argument('<ft>', 'results_*.json of the fine-tuned model')
    .option('--markdown <file>', 'also write the Table 2 Markdown to this file')
    .option(
      '--mmlu-subtasks <list>',
      'MMLU subtasks to aggregate, comma-separated (e.g. mmlu_college_computer_science)',
      list,
    )
    .option(
      '--mmlu-task <name>',
      'MMLU task or group entry to read (default: group "mmlu", else the CS subtasks present)',
    )
    .option('--base-label <text>', 'column title of the base model', 'Base')
    .option('--ft-label <text>', 'column title of the fine-tuned model', 'Fine-tuned')
    .option(
      '--outcomes <file>',
      'per-sample outcomes JSON { base: { "<task>/<metric,filter>": "0101…" }, ft: … } for paired tests',
    )
    .option('--base-samples <dir>', 'lm-eval --log_samples folder of the base run (paired tests)')
    .option(
      '--ft-samples <dir>',
      'lm-eval --log_samples folder of the fine-tuned run (paired tests)',
    )
    .option('--report <dir>', 'write report.md, report.json and SVG charts into this folder')
    .option(
      '--loss-log <file>',
      "training log (JSONL with step and loss) for the report's loss chart",
    )
    .option('--name <text>', 'model name in the report')
    .addHelpText(
      'after',
      examples([
        'qlora compare base.json ft.json',
        'qlora compare base.json ft.json --mmlu-subtasks mmlu_college_computer_science --markdown table2.md',
        'qlora compare base.json ft.json --outcomes outcomes.json --report report/ --loss-log train-log.jsonl',
        'qlora compare base.json ft.json --json | jq .summary',
      ]),
    )
    .action(async (base: string, ft: string, _opts, command: Command) => {
      await runCompare({ ...command.opts(), ...globals(command), base, ft }, io);
    });

  program
    .command('inspect')
    .description(
      'Summarise a .safetensors file, a PEFT adapter, a Hugging Face model folder or a run folder',
    )
    .argument('<path>', 'file or folder')
    .option('--all', 'list every tensor (default: the first 20)')
    .addHelpText(
      'after',
      examples([
        'qlora inspect models/Llama-3.2-1B',
        'qlora inspect models/Llama-3.2-1B-bnb-4bit/model.safetensors',
        'qlora inspect runs/llama/adapter',
        'qlora inspect runs/llama --json',
      ]),
    )
    .action(async (path: string, _opts, command: Command) => {
      await runInspect({ ...command.opts(), ...globals(command), path }, io);
    });

  program
    .command('quantize')
    .description(
      'Quantize the linear projections of a Hugging Face Llama checkpoint to bitsandbytes 4-bit',
    )
    .argument('<model-dir>', 'Hugging Face model folder (config.json + safetensors)')
    .requiredOption('--out <dir>', 'output folder (written atomically)')
    .addOption(
      new Option('--quant-type <type>', '4-bit data type').choices(['nf4', 'fp4']).default('nf4'),
    )
    .option('--blocksize <n>', 'elements per absmax block', integer, 64)
    .option('--double-quant', 'quantize the absmax values again (QLoRA)', false)
    .addOption(
      new Option('--compute-dtype <dtype>', 'bnb_4bit_compute_dtype written to config.json')
        .choices(['bfloat16', 'float16', 'float32'])
        .default('bfloat16'),
    )
    .option('--force', 'replace an existing output folder')
    .addHelpText(
      'after',
      examples([
        'qlora quantize models/Llama-3.2-1B --out models/Llama-3.2-1B-nf4 --double-quant',
        'qlora quantize models/TinyLlama --out tiny-fp4 --quant-type fp4 --blocksize 128',
      ]),
    )
    .action(async (model: string, _opts, command: Command) => {
      await runQuantize({ ...command.opts(), ...globals(command), model }, io);
    });

  program
    .command('experiment')
    .description(
      "Run the paper's experiment: evaluate, QLoRA-fine-tune, evaluate again, report (config validation available now)",
    )
    .option(
      '--config <file>',
      'experiment JSON (schema: packages/cli/schema/experiment.schema.json)',
    )
    .option('--dry-run', 'validate the config and print the resolved plan; run nothing')
    .option('--resume', 'continue a killed run from its run directory')
    .addOption(new Option('--backend <name>', "override the config's backend").choices(BACKENDS))
    .option('--run-dir <dir>', "override the config's run directory")
    .addHelpText(
      'after',
      examples([
        'qlora experiment --config exp.json --dry-run',
        'qlora experiment --config exp.json',
        'qlora experiment --config exp.json --resume',
      ]),
    )
    .action(async (_opts, command: Command) => {
      await runExperiment({ ...command.opts(), ...globals(command) }, io);
    });

  program
    .command('eval')
    .description(
      'Evaluate a model on HellaSwag, GSM8K and MMLU with lm-eval-identical prompts (not available yet)',
    )
    .argument('<model-dir>', 'Hugging Face model folder')
    .option('--adapter <dir>', 'PEFT adapter to apply')
    .option('--tasks <list>', 'comma-separated: hellaswag,gsm8k,mmlu', list)
    .option('--limit <n>', 'evaluate only the first N items per task', integer)
    .option('--num-fewshot <n>', 'few-shot examples', integer)
    .option('--batch-size <n>', 'requests per batch', integer)
    .addOption(
      new Option('--backend <name>', 'TensorFlow.js backend').choices(BACKENDS).default('auto'),
    )
    .option('--out <dir>', 'write results_<date>.json here')
    .option('--log-samples', 'also write per-sample JSONL')
    .addHelpText(
      'after',
      examples(['qlora eval models/Llama-3.2-1B --tasks gsm8k --limit 100 --out runs/base']),
    )
    .action(async (model: string, _opts, command: Command) => {
      await runEval({ ...command.opts(), ...globals(command), model }, io);
    });

  program
    .command('train')
    .description(
      'QLoRA-fine-tune a model on Alpaca-format data and save a PEFT adapter (not available yet)',
    )
    .argument('<model-dir>', 'Hugging Face model folder')
    .requiredOption('--data <file>', 'Alpaca-format json, jsonl or parquet')
    .requiredOption('--out <dir>', 'run folder: adapter, checkpoints, loss log')
    .option('--n <count>', 'samples drawn from the data', integer)
    .option('--seed <n>', 'seed', integer)
    .addOption(new Option('--template <name>', 'prompt template').choices(['alpaca', 'unsloth']))
    .addOption(
      new Option('--preset <name>', 'hyperparameter preset')
        .choices(['unsloth', 'qlora-paper'])
        .default('unsloth'),
    )
    .option('--r <n>', 'LoRA rank', integer)
    .option('--alpha <x>', 'LoRA alpha', positiveNumber)
    .option('--dropout <p>', 'LoRA dropout', positiveNumber)
    .option('--lr <x>', 'learning rate', positiveNumber)
    .option('--epochs <x>', 'epochs', positiveNumber)
    .option('--max-steps <n>', 'optimizer steps', integer)
    .option('--batch-size <n>', 'micro-batch size', integer)
    .option('--gradient-accumulation <n>', 'micro-batches per step', integer)
    .option('--max-length <n>', 'token limit per example', integer)
    .addOption(
      new Option('--backend <name>', 'TensorFlow.js backend').choices(BACKENDS).default('auto'),
    )
    .option('--resume', 'continue from the last checkpoint in --out')
    .addHelpText(
      'after',
      examples(['qlora train models/Llama-3.2-1B --data alpaca_data.json --n 2000 --out runs/ft']),
    )
    .action(async (model: string, _opts, command: Command) => {
      await runTrain({ ...command.opts(), ...globals(command), model }, io);
    });

  program
    .command('merge')
    .description(
      'Merge a LoRA adapter into its base model and write HF safetensors (not available yet)',
    )
    .argument('<model-dir>', 'base model folder')
    .requiredOption('--adapter <dir>', 'PEFT adapter folder')
    .requiredOption('--out <dir>', 'output folder')
    .addOption(
      new Option('--dtype <dtype>', 'dtype of merged weights').choices(['bf16', 'f16', 'f32']),
    )
    .addHelpText(
      'after',
      examples(['qlora merge models/Llama-3.2-1B --adapter runs/ft/adapter --out merged']),
    )
    .action(async (model: string, _opts, command: Command) => {
      await runMerge({ ...command.opts(), ...globals(command), model }, io);
    });

  return program;
}

/**
 * Runs `qlora` with `argv` (without node and script) over `io` and returns the exit status. Any
 * error becomes one line (the package's message) plus a hint on stderr, or a JSON object with
 * `--json`; the stack trace only with `--debug` (or `QLORA_DEBUG=1`).
 *
 * @example
 * const status = await runCli(['compare', 'base.json', 'ft.json'], createNodeIo());
 * process.exitCode = status;
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const json = argv.includes('--json');
  const debug = argv.includes('--debug') || io.env.QLORA_DEBUG === '1';
  const program = createProgram(io);
  try {
    if (argv.length === 0) {
      program.outputHelp();
      return EXIT_CODES.ok;
    }
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT_CODES.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.version' ||
        error.exitCode === 0
      ) {
        return EXIT_CODES.ok;
      }
      const message = error.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
      const hint = 'Run "qlora --help" or "qlora <command> --help" for usage.';
      if (json) {
        io.stderr.write(
          `${JSON.stringify({ error: { code: error.code, message, hint, exitCode: EXIT_CODES.usage } })}\n`,
        );
      } else {
        io.stderr.write(`qlora: error: ${message}\nhint: ${hint}\n`);
      }
      return EXIT_CODES.usage;
    }
    const described = describeError(error);
    if (json) {
      io.stderr.write(
        `${JSON.stringify({ error: { code: described.code, message: described.message, hint: described.hint ?? null, exitCode: described.exitCode } })}\n`,
      );
    } else {
      io.stderr.write(`qlora: error: ${described.message}\n`);
      if (described.hint !== undefined) io.stderr.write(`hint: ${described.hint}\n`);
    }
    if (debug && error instanceof Error) {
      io.stderr.write(`${error.stack ?? ''}\n`);
      if (error.cause !== undefined)
        io.stderr.write(`caused by: ${String((error.cause as Error)?.stack ?? error.cause)}\n`);
    }
    return described.exitCode;
  }
}
