import { describe, expect, it } from 'vitest';
import { TrainerError } from '../errors';
import { scheduleFixture } from './_reference';
import { createSchedule, warmupStepsFromRatio } from './schedule';

describe('createSchedule equals transformers.get_scheduler', () => {
  for (const c of scheduleFixture()) {
    it(`${c.name} lr=${c.lr} warmup=${c.warmup} total=${c.total}`, () => {
      const lrAt = createSchedule(c.name, { lr: c.lr, warmupSteps: c.warmup, totalSteps: c.total });
      let worst = 0;
      c.lrs.forEach((text, step) => {
        const expected = Number(text);
        const actual = lrAt(step);
        if (c.name === 'cosine') {
          // Math.cos and libm's cos may differ in the last bit
          worst = Math.max(worst, Math.abs(actual - expected) / Math.max(c.lr, 1e-300));
        } else {
          expect(actual, `step ${step}`).toBe(expected);
        }
      });
      expect(worst).toBeLessThanOrEqual(1e-15);
    });
  }

  it('Unsloth defaults: warmup 5 of 60, linear to 0', () => {
    const lrAt = createSchedule('linear', { lr: 2e-4, warmupSteps: 5, totalSteps: 60 });
    expect([lrAt(0), lrAt(1), lrAt(5), lrAt(60)]).toEqual([0, 4e-5, 2e-4, 0]);
  });

  it('validates its inputs', () => {
    expect(() => createSchedule('linear', { lr: 1e-3 })).toThrow(/needs totalSteps/);
    expect(() => createSchedule('constant', { lr: -1 })).toThrow(TrainerError);
    // @ts-expect-error: not a schedule
    expect(() => createSchedule('polynomial', { lr: 1 })).toThrow(/Unknown schedule/);
    expect(() => createSchedule('constant', { lr: 1 })(-1)).toThrow(/step/);
    expect(warmupStepsFromRatio(60, 0.1)).toBe(6);
    expect(warmupStepsFromRatio(25, 0.03)).toBe(1);
  });
});
