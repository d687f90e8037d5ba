import { MetricsError } from '@qlora/metrics';
import { Nf4Error } from '@qlora/nf4';
import { SafetensorsError } from '@qlora/safetensors';
import { CliError, EXIT_CODES } from './errors';

/** An error reduced to what the user sees: one message line (or a block), a hint, an exit status. */
export interface DescribedError {
  code: string;
  message: string;
  hint: string | undefined;
  exitCode: number;
}

/** Maps any thrown value to an exit status and a hint; library errors keep their own message. */
export function describeError(error: unknown): DescribedError {
  if (error instanceof CliError) {
    return { code: error.code, message: error.message, hint: error.hint, exitCode: error.exitCode };
  }
  if (error instanceof MetricsError) {
    const input = ['LM_EVAL_SCHEMA', 'JSON_SYNTAX', 'MISSING_TASK', 'MISSING_METRIC'].includes(
      error.code,
    );
    return {
      code: error.code,
      message: error.message,
      hint: error.code.startsWith('MISSING')
        ? 'Both results files need the same tasks and metrics; pick MMLU subjects with --mmlu-subtasks.'
        : input
          ? 'Pass results_<date>.json files written by lm-evaluation-harness 0.4.x.'
          : undefined,
      exitCode: input ? EXIT_CODES.inputInvalid : EXIT_CODES.runtime,
    };
  }
  if (error instanceof SafetensorsError) {
    return {
      code: error.code,
      message: error.message,
      hint:
        error.code === 'IO'
          ? 'Check the path and that the file is readable.'
          : 'The file is not a valid safetensors file (truncated download?).',
      exitCode: error.code === 'INVALID_TENSOR' ? EXIT_CODES.runtime : EXIT_CODES.inputInvalid,
    };
  }
  if (error instanceof Nf4Error) {
    const input = error.code === 'INVALID_CHECKPOINT' || error.code === 'NON_FINITE';
    return {
      code: error.code,
      message: error.message,
      hint: input
        ? 'The checkpoint holds values or 4-bit tensors that cannot be used as they are.'
        : undefined,
      exitCode: input ? EXIT_CODES.inputInvalid : EXIT_CODES.runtime,
    };
  }
  // Errors of the runtime packages (imported lazily, so recognised by name and code).
  const named = error as { name?: string; code?: unknown; message?: string } | undefined;
  if (named?.code === 'E_ABORTED') {
    return {
      code: 'E_ABORTED',
      message: named.message ?? 'aborted',
      hint: 'Run the same command again to resume where it stopped.',
      exitCode: EXIT_CODES.interrupted,
    };
  }
  if (
    named?.name === 'TrainerError' &&
    (named.code === 'E_SEQUENCE_TOO_LONG' || named.code === 'E_OUT_OF_MEMORY')
  ) {
    const memory = named.code === 'E_OUT_OF_MEMORY';
    return {
      code: named.code,
      message: named.message ?? String(error),
      hint: memory
        ? 'Lower the batch size or the sequence length named above: qlora train --batch-size / --max-length (finetune.batchSize / finetune.maxLength), qlora eval --batch-size (evalBatchSize); or use --backend wasm.'
        : 'The model has fewer positions than asked for: lower qlora train --max-length (finetune.maxLength) to at most its max_position_embeddings, or qlora eval --max-gen-tokens (benchmarks.gsm8k.maxGenTokens).',
      exitCode: EXIT_CODES.usage,
    };
  }
  if (named?.name === 'TrainerError' && named.code === 'E_TRAIN_CONFIG') {
    return {
      code: named.code,
      message: named.message ?? String(error),
      hint: 'Check the fine-tuning settings; examples longer than --max-length (finetune.maxLength) are dropped.',
      exitCode: EXIT_CODES.usage,
    };
  }
  if (named?.name === 'DatasetsError' && typeof named.code === 'string') {
    const usage = named.code === 'INVALID_ARGUMENT';
    return {
      code: named.code,
      message: named.message ?? String(error),
      hint: usage ? undefined : 'Check the data file (path, format and fields).',
      exitCode: usage ? EXIT_CODES.usage : EXIT_CODES.inputInvalid,
    };
  }
  if (named?.name === 'LoraError' && (named.code === 'E_IO' || named.code === 'E_ADAPTER_CONFIG')) {
    return {
      code: named.code,
      message: named.message ?? String(error),
      hint: 'Point --adapter at a PEFT folder (adapter_config.json + adapter_model.safetensors).',
      exitCode: EXIT_CODES.inputInvalid,
    };
  }
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  if (errno === 'ENOENT' || errno === 'EACCES' || errno === 'EISDIR') {
    return {
      code: errno,
      message: (error as Error).message,
      hint: 'Check the path.',
      exitCode: EXIT_CODES.inputInvalid,
    };
  }
  return {
    code: 'UNEXPECTED',
    message: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    hint: 'Unexpected error: rerun with --debug for the stack trace and report it.',
    exitCode: EXIT_CODES.runtime,
  };
}
