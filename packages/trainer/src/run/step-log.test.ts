import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TrainerError } from '../errors';
import { appendStepLog, readStepLog, repairStepLog } from './step-log';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qlora-log-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('JSONL step log', () => {
  it('appends one line per step (with and without fsync) and reads them back', () => {
    const path = join(dir, 'steps.jsonl');
    expect(readStepLog(path)).toEqual({ records: [], truncatedTail: '' });
    appendStepLog(path, { step: 1, loss: 1.5, lr: 4e-5 });
    appendStepLog(path, { step: 2, loss: 1.25, lr: 8e-5 }, { fsync: true });
    expect(readFileSync(path, 'utf8')).toBe(
      '{"step":1,"loss":1.5,"lr":0.00004}\n{"step":2,"loss":1.25,"lr":0.00008}\n',
    );
    expect(readStepLog(path).records.map((r) => r.step)).toEqual([1, 2]);
  });

  it('tolerates a truncated last line, rejects a corrupt middle line', () => {
    const path = join(dir, 'steps.jsonl');
    for (let s = 1; s <= 3; s++) appendStepLog(path, { step: s, loss: 2 - s / 10 });
    appendFileSync(path, '{"step":4,"lo'); // a crash mid-write
    const { records, truncatedTail } = readStepLog(path);
    expect(records.map((r) => r.step)).toEqual([1, 2, 3]);
    expect(truncatedTail).toBe('{"step":4,"lo');
    writeFileSync(path, '{"step":1}\n{"step":2,\n{"step":3}\n');
    expect(() => readStepLog(path)).toThrow(TrainerError);
    expect(() => readStepLog(path)).toThrow(/line 2/);
  });

  it('repairs for a resume: drops the cut line and steps after the checkpoint', () => {
    const path = join(dir, 'steps.jsonl');
    for (let s = 1; s <= 5; s++) appendStepLog(path, { step: s });
    appendFileSync(path, '{"step":6');
    expect(repairStepLog(path, 3).map((r) => r.step)).toEqual([1, 2, 3]);
    appendStepLog(path, { step: 4, resumed: true });
    expect(readStepLog(path)).toEqual({
      records: [{ step: 1 }, { step: 2 }, { step: 3 }, { step: 4, resumed: true }],
      truncatedTail: '',
    });
  });
});
