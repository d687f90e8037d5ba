import {
  appendFileSync,
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { TrainerError } from '../errors';
import type { JsonValue } from './checkpoint';

/**
 * One line of the step log: any JSON object; `step` orders lines and lets a resume drop steps
 * that are redone.
 *
 * @example
 * ```ts
 * const record: StepRecord = { step: 12, loss: 1.234, lr: 2e-4, grad_norm: 0.87, tokens: 4096 };
 * ```
 */
export type StepRecord = { step: number } & { [key: string]: JsonValue };

/**
 * Appends one JSON line to a JSONL step log with a single `appendFileSync` (one write of the
 * whole line, so a crash can only truncate the last line); with `fsync: true` the line is on disk
 * when the call returns (slower: one fsync per line).
 *
 * @example
 * ```ts
 * appendStepLog('runs/alpaca/steps.jsonl', { step: 1, loss: 1.9 }, { fsync: true });
 * ```
 */
export function appendStepLog(
  path: string,
  record: StepRecord,
  options: { fsync?: boolean } = {},
): void {
  const line = `${JSON.stringify(record)}\n`;
  if (!options.fsync) {
    appendFileSync(path, line);
    return;
  }
  const fd = openSync(path, 'a');
  try {
    writeSync(fd, line);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * What {@link readStepLog} found.
 *
 * @example
 * ```ts
 * const { records, truncatedTail } = readStepLog('runs/alpaca/steps.jsonl');
 * ```
 */
export interface StepLogContents {
  records: StepRecord[];
  /** The bytes after the last newline (a line cut by a crash), or '' if the file ends cleanly. */
  truncatedTail: string;
}

/**
 * Reads a JSONL step log. A last line without its newline is a write cut short by a crash: it is
 * not parsed, it is returned as `truncatedTail`. A malformed complete line throws `E_RUN_LOG`
 * (that is corruption, not a crash). A missing file reads as empty.
 *
 * @example
 * ```ts
 * readStepLog('steps.jsonl'); // { records: [{ step: 1, loss: 1.9 }], truncatedTail: '{"step":2,"lo' }
 * ```
 */
export function readStepLog(path: string): StepLogContents {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return { records: [], truncatedTail: '' };
    throw error;
  }
  const end = text.lastIndexOf('\n');
  const truncatedTail = text.slice(end + 1);
  const records: StepRecord[] = [];
  const lines = end < 0 ? [] : text.slice(0, end).split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (cause) {
      throw new TrainerError(
        'E_RUN_LOG',
        `Step log ${path} line ${i + 1}: expected a JSON object, got ${JSON.stringify(line.slice(0, 40))}. The file is corrupt beyond a cut last line.`,
        { cause },
      );
    }
    if (
      value === null ||
      typeof value !== 'object' ||
      typeof (value as { step?: unknown }).step !== 'number'
    ) {
      throw new TrainerError(
        'E_RUN_LOG',
        `Step log ${path} line ${i + 1}: expected an object with a numeric "step", got ${line.slice(0, 40)}.`,
      );
    }
    records.push(value as StepRecord);
  });
  return { records, truncatedTail };
}

/**
 * Prepares a step log for a resume: drops a truncated last line and every record with
 * `step > lastStep` (steps that will be redone after the checkpoint), rewriting the file
 * atomically (temp file, fsync, rename). Returns the records kept.
 *
 * @example
 * ```ts
 * const kept = repairStepLog('runs/alpaca/steps.jsonl', checkpoint.step);
 * ```
 */
export function repairStepLog(path: string, lastStep = Number.POSITIVE_INFINITY): StepRecord[] {
  const { records, truncatedTail } = readStepLog(path);
  const kept = records.filter((r) => r.step <= lastStep);
  if (truncatedTail === '' && kept.length === records.length) return kept;
  const temp = `${path}.tmp-${process.pid}`;
  const fd = openSync(temp, 'w');
  try {
    writeSync(fd, kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
  return kept;
}
