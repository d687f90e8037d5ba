import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { describeError } from './_describe-error';
import { VERSION } from './_version';
import { runCompare } from './commands/compare';
import { runConvert } from './commands/convert';
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

function fraction(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n >= 1)
    throw new InvalidArgumentError(`expected a fraction between 0 and 1, got "${value}"`);
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
 * program.commands.map((c) => c.name()); // ['compare', 'inspect', 'quantize', 'experiment', 'eval', 'train', 'merge', 'convert']
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
      `\nExit codes: 0 ok, 1 runtime failure, 2 usage or config error, 3 input file invalid, 130 interrupted.\n${examples(
        [
          'qlora compare base/results.json ft/results.json --mmlu-subtasks mmlu_college_computer_science',
          'qlora inspect models/Llama-3.2-1B',
          'qlora quantize models/Llama-3.2-1B --out models/Llama-3.2-1B-nf4 --double-quant',
          'qlora experiment                 # the embedded default, on CPU',
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
      "Run the paper's experiment: evaluate, QLoRA-fine-tune, evaluate again, report FR / ΔA / ΔK (no --config: the embedded tiny model on CPU)",
    )
    .option(
      '--config <file>',
      'experiment JSON (schema: packages/cli/schema/experiment.schema.json); default: the built-in embedded config',
    )
    .option('--dry-run', 'validate the config and print the resolved plan; run nothing')
    .option(
      '--mix [fraction]',
      'also fine-tune with this fraction of GSM8K train mixed in (default 0.2), reported side by side',
      fraction,
    )
    .option('--n <count>', 'fine-tuning samples (overrides finetune.dataset.n)', integer)
    .option(
      '--resume',
      'continue a killed run (the default when the run directory holds the same config)',
    )
    .option('--force', 'delete a run directory that holds a different config and start again')
    .addOption(new Option('--backend <name>', "override the config's backend").choices(BACKENDS))
    .option('--run-dir <dir>', "override the config's run directory")
    .addHelpText(
      'after',
      examples([
        'qlora experiment                      # embedded default: tiny Llama, synthetic data, CPU, < 3 min',
        'qlora experiment --mix                # … and again with 20% GSM8K mixed in, side by side',
        'qlora experiment --config exp.json --dry-run',
        'qlora experiment --config exp.json    # rerun after a kill: resumes where it stopped',
      ]),
    )
    .action(async (_opts, command: Command) => {
      await runExperiment({ ...command.opts(), ...globals(command) }, io);
    });

  program
    .command('eval')
    .description(
      'Evaluate a model on HellaSwag, GSM8K and MMLU with lm-eval-identical prompts, requests and scoring',
    )
    .argument('[model-dir]', 'Hugging Face model folder (or --model)')
    .option('--model <dir>', 'Hugging Face model folder')
    .option('--adapter <dir>', 'PEFT adapter to apply')
    .option('--tasks <list>', 'comma-separated: hellaswag,gsm8k,mmlu (default: all three)', list)
    .option(
      '--limit <n>',
      'evaluate only the first N items per task (per subject for MMLU)',
      integer,
    )
    .option('--num-fewshot <n>', 'GSM8K few-shot examples (default 5)', integer)
    .option('--batch-size <n>', 'requests per batch', integer)
    .option('--max-gen-tokens <n>', 'GSM8K: maximum new tokens (default 256)', integer)
    .option('--nf4', 'quantize the projections to NF4 while loading (as the experiment does)')
    .option(
      '--w8a8',
      'int8 weights and activations on the int8 tensor cores (webgpu, NVIDIA): faster, approximate; merges --adapter',
    )
    .option(
      '--f16',
      'the projections in f16 on the f16 tensor cores (webgpu, NVIDIA; f32 sums, rows scaled by powers of two): faster, close to f32; merges --adapter',
    )
    .option('--hellaswag <file>', 'HellaSwag validation jsonl/parquet (default: the bundled set)')
    .option('--gsm8k-test <file>', 'GSM8K test jsonl/parquet (default: the bundled set)')
    .option('--gsm8k-train <file>', 'GSM8K train (few-shot pool; default: the bundled set)')
    .option('--mmlu <dir>', 'MMLU data folder (test/, dev/) or parquet (default: the bundled set)')
    .option(
      '--mmlu-subjects <list>',
      'MMLU subjects (default: the four computer-science ones)',
      list,
    )
    .option(
      '--shard <i/n>',
      'evaluate only docs with id % n == i (id: position after --limit); join with --merge',
    )
    .option(
      '--merge <dirs...>',
      'merge the --out folders of --shard runs into --out (no model needed): the files one process writes',
    )
    .addOption(
      new Option('--backend <name>', 'TensorFlow.js backend').choices(BACKENDS).default('auto'),
    )
    .option('--out <dir>', 'write results_<date>.json and samples here (default runs/eval)')
    .addHelpText(
      'after',
      examples([
        'qlora eval --model models/Llama-3.2-1B --tasks gsm8k --limit 100 --gsm8k-test data/gsm8k/test.jsonl --gsm8k-train data/gsm8k/train.jsonl --out runs/base',
        'qlora eval --model models/Llama-3.2-1B --adapter runs/ft/adapter --nf4 --tasks hellaswag --hellaswag data/hellaswag_val.jsonl',
        'qlora eval --model models/Llama-3.2-1B --shard 0/3 --out runs/s0   # … 1/3 → runs/s1, 2/3 → runs/s2',
        'qlora eval --merge runs/s0 runs/s1 runs/s2 --out runs/eval',
        'qlora eval --model models/Llama-3.2-1B --w8a8 --tasks hellaswag   # int8 tensor cores, approximate',
        'qlora eval --model models/Llama-3.2-1B --f16 --tasks hellaswag    # f16 tensor cores, close to f32',
      ]),
    )
    .action(async (model: string | undefined, _opts, command: Command) => {
      const opts = command.opts();
      await runEval({ ...opts, ...globals(command), model: opts.model ?? model }, io);
    });

  program
    .command('train')
    .description('QLoRA-fine-tune a model on Alpaca-format data and save a PEFT adapter')
    .argument('[model-dir]', 'Hugging Face model folder (or --model)')
    .option('--model <dir>', 'Hugging Face model folder')
    .requiredOption('--data <file>', 'Alpaca-format json, jsonl or parquet')
    .option('--run-dir <dir>', 'run folder: adapter, checkpoints, steps.jsonl (default runs/train)')
    .option('--out <dir>', 'alias of --run-dir')
    .option('--n <count>', 'samples drawn from the data (default 2000)', integer)
    .option('--seed <n>', 'seed of the subset, LoRA init and data order', integer)
    .addOption(new Option('--template <name>', 'prompt template').choices(['alpaca', 'unsloth']))
    .addOption(
      new Option('--preset <name>', 'hyperparameter preset')
        .choices(['unsloth', 'qlora-paper'])
        .default('unsloth'),
    )
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(['adamw', 'adamw_8bit']))
    .option('--r <n>', 'LoRA rank', integer)
    .option('--alpha <x>', 'LoRA alpha', positiveNumber)
    .option('--dropout <p>', 'LoRA dropout', positiveNumber)
    .option('--lr <x>', 'learning rate', positiveNumber)
    .option('--epochs <x>', 'epochs', positiveNumber)
    .option('--max-steps <n>', 'optimizer steps', integer)
    .option('--batch-size <n>', 'micro-batch size', integer)
    .option('--gradient-accumulation <n>', 'micro-batches per step', integer)
    .option('--max-length <n>', 'token limit per example', integer)
    .option('--warmup-steps <n>', 'linear warmup steps', integer)
    .option('--checkpoint-every <n>', 'save a resumable checkpoint every N steps', integer)
    .option(
      '--mix <fraction>',
      'replace this fraction of the samples with GSM8K train items',
      fraction,
    )
    .option('--mix-gsm8k <file>', 'GSM8K train file for --mix')
    .addOption(
      new Option('--backend <name>', 'TensorFlow.js backend').choices(BACKENDS).default('auto'),
    )
    .option(
      '--f16-base',
      "the frozen base's products on the f16 tensor cores (webgpu, NVIDIA): faster, not exact f32; LoRA and optimizer stay f32",
    )
    .option('--resume', 'continue from the newest checkpoint in the run folder (the default)')
    .addHelpText(
      'after',
      examples([
        'qlora train --model models/Llama-3.2-1B --data alpaca_data.json --n 2000 --preset unsloth --run-dir runs/ft',
        'qlora train --model models/Llama-3.2-1B --data alpaca_data.json --n 2000 --run-dir runs/ft --resume',
      ]),
    )
    .action(async (model: string | undefined, _opts, command: Command) => {
      const opts = command.opts();
      await runTrain({ ...opts, ...globals(command), model: opts.model ?? model }, io);
    });

  program
    .command('merge')
    .description('Merge a LoRA adapter into its base model and write a Hugging Face folder')
    .argument('[model-dir]', 'base model folder (or --model)')
    .option('--model <dir>', 'base model folder')
    .requiredOption('--adapter <dir>', 'PEFT adapter folder')
    .requiredOption('--out <dir>', 'output folder')
    .addOption(
      new Option('--dtype <dtype>', 'dtype of merged weights').choices(['bf16', 'f16', 'f32']),
    )
    .addOption(
      new Option('--backend <name>', 'TensorFlow.js backend').choices(BACKENDS).default('cpu'),
    )
    .addHelpText(
      'after',
      examples([
        'qlora merge --model models/Llama-3.2-1B --adapter runs/ft/adapter --out merged --dtype bf16',
      ]),
    )
    .action(async (model: string | undefined, _opts, command: Command) => {
      const opts = command.opts();
      await runMerge({ ...opts, ...globals(command), model: opts.model ?? model }, io);
    });

  program
    .command('convert')
    .description('Convert a llama2.c checkpoint and tokenizer into a Hugging Face Llama folder')
    .argument('<format>', 'source format: llama2c')
    .argument('<model-bin>', 'llama2.c checkpoint (e.g. stories15M.bin)')
    .argument('<tokenizer-bin>', 'llama2.c tokenizer.bin')
    .argument('<out>', 'output folder')
    .addHelpText(
      'after',
      examples(['qlora convert llama2c stories15M.bin tokenizer.bin models/stories15M']),
    )
    .action(
      async (
        format: string,
        bin: string,
        tokenizer: string,
        out: string,
        _opts,
        command: Command,
      ) => {
        await runConvert({ ...globals(command), format, bin, tokenizer, out }, io);
      },
    );

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
